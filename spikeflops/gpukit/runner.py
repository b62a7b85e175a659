"""Runs the kit's stages in order, each in a process group of its own under its time budget, and
rewrites the results after every stage: a run cut off (by a stage's budget, the whole run's, or a
kill from outside) keeps everything it measured.

The results file, ``kit.json``, is a run file (``spikeflops.results.RunFile``: the gate and the reports read it like
any run's) with a ``kit`` section: each stage's status, time, budget and what it could not do.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from workloads.load import loadavg

from ..results import RunFile
from ..results.fileio import write_json, write_text
from .stage import ROOT
from .summary import summary_markdown

KIT_SECTION = "spikeflops-kit/1"
# a stage is "ok", "incomplete", "skipped", "failed", "cut off" or "not reached" (see _judge)
MIN_STAGE_S = 5.0                    # a stage given less would only start a Python and be killed
KILL_GRACE_S = 10.0                  # after SIGTERM, before SIGKILL: a stage may write its last line


@dataclass
class StageOutcome:
    name: str
    status: str
    budget_s: float
    wall_s: float = 0.0
    reason: str = ""
    entries: list = field(default_factory=list)
    items: dict = field(default_factory=dict)      # facts, peaks, tests, files, left_out, skipped, error

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "wall_s": round(self.wall_s, 2),
                "budget_s": round(self.budget_s, 1), "reason": self.reason, "entries": len(self.entries),
                **{k: v for k, v in self.items.items() if k not in ("facts", "peaks", "machine_name")}}


def start_genn_build(source: Path, site: Path, log: Path, jobs: int):
    """pygenn from carried GeNN source, built in the background while the GPT stages use the GPU."""
    script = (f"cd {_q(source)} && {_q(sys.executable)} setup.py build_ext -j {jobs} && "
              f"{_q(sys.executable)} -m pip install -q --no-build-isolation --no-deps --no-index "
              f"--target {_q(site)} .")
    from workloads.isolate import GroupProcess

    with open(log, "w") as f:           # the build stops with the kit, even with a kit killed by SIGKILL
        return GroupProcess(["sh", "-c", script], stdout=f, stderr=subprocess.STDOUT)


def _q(path) -> str:
    import shlex

    return shlex.quote(str(path))


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the stage's process group, SIGKILL after the grace: nothing of it outlives the stage."""
    from workloads.isolate import stop_group as stop

    stop(proc, KILL_GRACE_S)


def _tee(stream, log, say) -> threading.Thread:
    def pump():
        for line in stream:
            log.write(line)
            log.flush()
            say(line.rstrip("\n"))
    t = threading.Thread(target=pump, daemon=True)
    t.start()
    return t


def _read_partial(path: Path) -> list[dict]:
    items = []
    if not path.exists():
        return items
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError:        # a line cut by the kill: everything before it stands
            continue
    return items


def run_stage(stage, plan: str, out_dir: Path, env: dict, budget_s: float, earlier: Path | None,
              log, show) -> StageOutcome:
    """``stage`` in its own process group, killed at ``budget_s``; its lines go to ``log`` and ``show``."""
    partial = out_dir / f"partial-{stage.name}.jsonl"
    partial.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "spikeflops.gpukit.stage", stage.name, "--plan", plan, "--partial", str(partial),
            "--out-dir", str(out_dir), "--parent-pid", str(os.getpid())] + (["--earlier", str(earlier)] if earlier else [])
    t0 = time.monotonic()
    from workloads.isolate import GroupProcess

    proc = GroupProcess(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pump = _tee(proc.stdout, log, show)
    cut = False
    try:
        proc.wait(timeout=budget_s)
    except subprocess.TimeoutExpired:
        cut = True
    finally:                                # also on Ctrl-C or SIGTERM of the kit itself
        if proc.poll() is None:
            stop_group(proc)
        pump.join(timeout=5)
    out = fold_partial(StageOutcome(stage.name, "ok", budget_s, wall_s=time.monotonic() - t0), partial)
    out.status, out.reason = _judge(stage, out, cut, proc.returncode)
    return out


def fold_partial(out: StageOutcome, partial: Path) -> StageOutcome:
    """The lines a stage wrote as it measured, into its outcome; the partial file is then removed (kit.json
    holds them: gate and report read that, never a partial file)."""
    for item in _read_partial(partial):
        if "entry" in item:
            out.entries.append(item["entry"])
        else:
            for key, value in item.items():
                if key in ("left_out", "skipped"):
                    out.items.setdefault(key, []).extend(value if isinstance(value, list) else [value])
                elif key == "file":
                    out.items.setdefault("files", []).append(value)
                else:
                    out.items[key] = value
    partial.unlink(missing_ok=True)
    return out


def _judge(stage, out: StageOutcome, cut: bool, code: int | None) -> tuple[str, str]:
    """A stage's status and, for anything but ok, why: a stage that measured nothing is never ok."""
    failed = [e for e in out.entries if "error" in e]
    if cut:
        return "cut off", (f"cut off at its budget of {out.budget_s:.0f} s after {len(out.entries)} "
                           f"measurement{'s' if len(out.entries) != 1 else ''}")
    if "error" in out.items:
        return "failed", out.items["error"]
    if code not in (0, None):
        return "failed", (f"its process was killed by signal {-code}" if code < 0 else
                          f"its process exited with code {code}")
    if failed:
        return "failed", f"{len(failed)} of {len(out.entries)} cases failed: {failed[0]['error']}"
    if stage.kind == "tests":
        t = out.items.get("tests") or {}
        if t.get("failed") or t.get("error"):
            return "failed", f"{t.get('failed', 0)} failed, {t.get('error', 0)} errors, {t.get('passed', 0)} passed"
        if not t.get("passed"):
            reasons = "; ".join(sorted(t.get("skip_reasons", {}))) or "no test ran"
            return "skipped", f"every test skipped ({t.get('skipped', 0)}): {reasons}"
        return "ok", f"{t['passed']} passed, {t.get('skipped', 0)} skipped"
    if stage.kind == "rows" and not out.entries:
        return "skipped", "; ".join(out.items.get("left_out", [])) or "no case measured"
    if stage.kind == "facts" and "peaks" not in out.items:
        return "failed", "no peak was measured"
    gaps = out.items.get("left_out", []) + out.items.get("skipped", [])
    if gaps:
        return "incomplete", "; ".join(gaps)
    return "ok", ""


def child_env(site: Path | None) -> dict:
    path = [str(site)] if site else []
    path += [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), "PYTHONUNBUFFERED": "1"}


def importable(name: str, site: Path | None) -> bool:
    if site and str(site) not in sys.path:
        sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    return importlib.util.find_spec(name) is not None


def run_kit(plan: str, out_dir: Path, stages: list, budget_s: float, site: Path | None, commit: str | None,
            dirty: bool, installed: list[str], genn_build=None, say=print, time_scale: float = 1.0,
            stage_budgets: dict[str, float] | None = None) -> int:
    """Every stage in order within ``budget_s``; kit.json and kit.md rewritten after each. Exit code: 0 when
    every stage measured what it should (a rehearsal may skip what a CPU cannot do), else 1.
    ``stage_budgets`` replaces the plan's budget of the stages it names (seconds, before ``time_scale``)."""
    stage_budgets = stage_budgets or {}

    def planned(stage) -> float:
        return stage_budgets.get(stage.name, stage.budget(plan))

    started, t0 = time.time(), time.monotonic()
    deadline = t0 + budget_s
    env = child_env(site)
    # filled in as the stages end (machine facts, entries, peaks), and saved after each
    results = RunFile(
        profile=f"kit-{plan}", machine_name=None, machine={}, commit=commit, dirty=dirty,
        date=datetime.fromtimestamp(started, timezone.utc).isoformat(), wall_s=0.0,
        load={"load_before": loadavg(), "load_after": None, "cores": os.cpu_count(), "threads": None, "cpu_share": None},
        sections={"kit": {"format": KIT_SECTION, "plan": plan, "budget_s": budget_s, "wheels": installed, "peaks": None,
                          "stages": [{"name": s.name, "status": "not reached", "what": s.describe(plan),
                                      "budget_s": planned(s)} for s in stages]}}).to_dict()
    kit_json, kit_md = out_dir / "kit.json", out_dir / "kit.md"

    def save():
        results["wall_s"] = round(time.monotonic() - t0, 2)
        results["load"]["load_after"] = loadavg()
        write_json(kit_json, results)
        write_text(kit_md, summary_markdown(results))

    save()
    with open(out_dir / "kit.log", "a", encoding="utf-8") as log:
        shown = say

        def say(msg):                      # the kit's own lines go to the log too, with the run's clock
            log.write(f"[{time.monotonic() - t0:6.1f} s] {msg}\n")
            log.flush()
            shown(msg)

        for i, stage in enumerate(stages):
            left = deadline - time.monotonic()
            record = results["kit"]["stages"][i]
            if left < MIN_STAGE_S:
                record["reason"] = f"the run's budget of {budget_s:.0f} s was spent"
                continue
            budget = min(planned(stage) * time_scale, left)
            if stage.needs == "pygenn" and genn_build is not None and genn_build.poll() is None:
                # the build had the GPT stages' minutes; it may take up to half this stage's budget more
                say(f"[{i + 1}/{len(stages)}] {stage.name}: waiting for the GeNN build ...")
                w0 = time.monotonic()
                try:
                    genn_build.wait(timeout=budget / 2)
                except subprocess.TimeoutExpired:
                    pass
                budget -= time.monotonic() - w0
                left = deadline - time.monotonic()
            if stage.needs and not importable(stage.needs, site):
                record.update(status="skipped", reason=f"{stage.needs} is not installed"
                              + (" (its build from the carried source failed or is still running: genn-build.log)"
                                 if stage.needs == "pygenn" and genn_build is not None else
                                 " (carry its wheel: docs/gpu-kit.md)"))
                say(f"[{i + 1}/{len(stages)}] {stage.name}: skipped, {record['reason']}")
                save()
                continue
            say(f"[{i + 1}/{len(stages)}] {stage.name}: {stage.describe(plan)} (budget {budget:.0f} s, "
                f"{left:.0f} s of the run left)")
            building = genn_build is not None and genn_build.poll() is None
            s0 = time.monotonic()
            try:
                outcome = run_stage(stage, plan, out_dir, env, budget, kit_json if stage.kind == "rows" else None,
                                    log, shown)
            except BaseException:           # the kit itself stopped (Ctrl-C, SIGTERM): what the stage measured stays
                outcome = fold_partial(StageOutcome(stage.name, "stopped", budget, wall_s=time.monotonic() - s0),
                                       out_dir / f"partial-{stage.name}.jsonl")
                outcome.reason = f"the kit was stopped during this stage after {len(outcome.entries)} measurements"
                record.update(outcome.to_dict())
                results["results"].extend(outcome.entries)
                save()
                raise
            record.update(outcome.to_dict())
            if building:
                # a build competing for the cores is part of what this stage measured: said, not hidden
                record["background"] = "GeNN was building on the other cores"
            results["results"].extend(outcome.entries)
            if "facts" in outcome.items:
                results["machine"], results["machine_name"] = outcome.items["facts"], outcome.items.get("machine_name")
            if "peaks" in outcome.items:
                results["kit"]["peaks"] = outcome.items["peaks"]
            save()
            say(f"    {stage.name}: {outcome.status} in {outcome.wall_s:.0f} s"
                + (f" ({outcome.reason})" if outcome.reason else ""))
    if genn_build is not None and genn_build.poll() is None:
        stop_group(genn_build)
    save()
    return _exit_code(plan, results["kit"]["stages"])


def _exit_code(plan: str, stages: list[dict]) -> int:
    allowed = {"ok"} if plan == "gpu" else {"ok", "incomplete", "skipped"}
    return 0 if all(s["status"] in allowed for s in stages) else 1
