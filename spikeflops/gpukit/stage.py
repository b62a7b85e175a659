"""One kit stage, in a process of its own: ``python -m spikeflops.gpukit.stage NAME --plan P --partial F``.

Everything it learns goes to the partial file at once, one JSON object a line ({"entry": ...} per
measured row, {"facts": ...}, {"tests": ...}, {"left_out": ...}, {"file": ...}), so a stage killed at
its budget (or a GeNN CUDA error that ends the process) keeps every line written before.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from workloads.errors import SpikeflopsError

from . import plan as kit_plan
from ..progress import say

ROOT = Path(__file__).resolve().parents[2]


class Partial:
    """The stage's line-per-fact output file, flushed after every line."""

    def __init__(self, path: Path):
        self._f = open(path, "a", encoding="utf-8")

    def write(self, **item) -> None:
        self._f.write(json.dumps(item, default=str, allow_nan=True) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


def _facts(plan: str, out: Partial) -> None:
    import torch

    from workloads.hardware import (as_dict, gpu_power_limit_watts, machine_facts, machine_name,
                                    measure_matmul_peak, peak_for)

    facts = machine_facts()
    out.write(facts=facts, machine_name=machine_name())
    device = torch.device("cuda" if plan == "gpu" else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    peaks = {"dtype": str(dtype).replace("torch.", ""), "datasheet": as_dict(peak_for(device, dtype))}
    if device.type == "cuda":
        peaks["power_limit_watts"] = gpu_power_limit_watts(device)
        measured = measure_matmul_peak(device, dtype)
    else:                                   # a rehearsal: small squares, the CPU's ceiling is not the point
        measured = measure_matmul_peak(device, dtype, sizes=(256, 512), repeats=3)
    peaks["measured"] = as_dict(measured)
    out.write(peaks=peaks)
    say(f"    measured {peaks['dtype']} matmul peak: {measured.flops_per_s / 1e12:.2f} TFLOP/s")


def _rows(name: str, plan: str, earlier: list[dict], out: Partial) -> None:
    from workloads.registry import case_id, why_not_runnable

    from ..run import measure_rows

    profile_name, rows = kit_plan.stage_rows(name, plan, earlier)
    profile = kit_plan.effort(plan, profile_name)
    runnable, left_out = [], []
    for row in rows:
        why = why_not_runnable(row, profile)
        if why:
            left_out.append(f"{row.family} {case_id(row)}: {why}")
        else:
            runnable.append(row)
    if left_out:
        out.write(left_out=left_out)
    if not rows:
        raise SpikeflopsError(f"stage {name}: the {profile_name} profile has no row for it")
    if runnable:
        measure_rows(runnable, profile, progress=say, on_entry=lambda e: out.write(entry=e))


class _Outcomes:
    """A pytest plugin that counts outcomes (and the reasons for skips) for the stage's one line."""

    def __init__(self):
        self.counts = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
        self.skip_reasons: dict[str, int] = {}

    def pytest_runtest_logreport(self, report):
        if report.when == "call" and report.passed:
            self.counts["passed"] += 1
        elif report.failed:
            self.counts["failed" if report.when == "call" else "error"] += 1
        elif report.skipped and report.when in ("setup", "call"):
            self.counts["skipped"] += 1
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            self.skip_reasons[reason] = self.skip_reasons.get(reason, 0) + 1


def _tests(plan: str, out_dir: Path, out: Partial) -> None:
    import pytest

    outcomes = _Outcomes()
    device = "cuda" if plan == "gpu" else "cpu"
    code = pytest.main(["-m", "gpu", "--device", device, "-q", "-p", "no:cacheprovider",
                        f"--junitxml={out_dir / 'gpu-tests.xml'}", str(ROOT / "tests" / "test_gpu.py")],
                       plugins=[outcomes])
    out.write(tests={**outcomes.counts, "exit_code": int(code), "skip_reasons": outcomes.skip_reasons})
    out.write(file="gpu-tests.xml")


def _harnesses(plan: str, out_dir: Path, out: Partial) -> None:
    """pytest-benchmark, then asv, on the same few cases (a case regex), each into the kit's folder."""
    env = {**os.environ, "SPIKEFLOPS_CASES": kit_plan.HARNESS_CASES[plan],
           "SPIKEFLOPS_PROFILE": kit_plan.HARNESS_PROFILE[plan]}
    device = "cuda" if plan == "gpu" else "cpu"
    pb_json = out_dir / "pytest-benchmark.json"
    say("    pytest-benchmark ...")
    proc = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "benchmarks" / "test_pytest_benchmark.py"),
                           "--benchmark-only", "--device", device, "-q", "-p", "no:cacheprovider",
                           f"--benchmark-json={pb_json}"], env=env, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0 or not pb_json.exists():
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["(no output)"]
        raise SpikeflopsError(f"pytest-benchmark exited {proc.returncode}: {tail[0]}")
    out.write(file=pb_json.name)
    try:
        import asv  # noqa: F401 - carried as a wheel to a bare GPU machine
    except ImportError:
        out.write(skipped="asv: not installed (carry its wheel: docs/gpu-kit.md)")
        return
    from ..gitrepo import git_commit

    head, _ = git_commit(ROOT)
    if head is None:
        out.write(skipped="asv: this copy is not a git checkout, and asv records a commit of its history "
                          "(carry .git with the tree)")
        return
    say("    asv ...")
    with tempfile.TemporaryDirectory(prefix="spikeflops-kit-asv-") as tmp:
        tmp = Path(tmp)
        conf = json.loads((ROOT / "asv.conf.json").read_text())
        conf.update(repo=str(ROOT), benchmark_dir=str(ROOT / "benchmarks"), results_dir=str(tmp / "results"),
                    env_dir=str(tmp / "env"), html_dir=str(tmp / "html"))
        (tmp / "asv.conf.json").write_text(json.dumps(conf))
        env["ASV_MACHINE_FILE"] = str(tmp / "machine.json")       # the user's own machine file is left alone
        cli = [sys.executable, "-m", "spikeflops.cli"]
        machine = subprocess.run(cli + ["info", "--register-asv-machine"], env=env, cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout.strip()
        env["HOME"] = str(tmp)                 # asv reads ~/.asv-machine.json
        shutil.copy(tmp / "machine.json", tmp / ".asv-machine.json")
        proc = subprocess.run([sys.executable, "-m", "asv", "run", "--config", str(tmp / "asv.conf.json"),
                               "--python=same", "--record-samples", "--machine", machine,
                               "--set-commit-hash", head, "--show-stderr"],
                              env=env, cwd=ROOT, capture_output=True, text=True)
        found = sorted((tmp / "results" / machine).glob("*.json"))
        found = [f for f in found if f.name != "machine.json"]
        if proc.returncode != 0 or not found:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["(no output)"]
            raise SpikeflopsError(f"asv exited {proc.returncode} with no results: {tail[0]}")
        shutil.copy(found[0], out_dir / "asv.json")
    out.write(file="asv.json", asv_machine=machine)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="spikeflops.gpukit.stage")
    p.add_argument("name", choices=kit_plan.STAGE_NAMES)
    p.add_argument("--plan", choices=kit_plan.PLANS, required=True)
    p.add_argument("--partial", required=True, type=Path)
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--earlier", type=Path, default=None, help="the kit's results so far (JSON)")
    p.add_argument("--parent-pid", type=int, default=None, help="end with this process (the kit), even on SIGKILL")
    args = p.parse_args(argv)
    if args.parent_pid:
        from workloads.isolate import die_with_parent

        die_with_parent(args.parent_pid)
    out = Partial(args.partial)
    stage = kit_plan.stage_named(args.name)
    try:
        if stage.kind == "facts":
            _facts(args.plan, out)
        elif stage.kind == "rows":
            earlier = json.loads(args.earlier.read_text())["results"] if args.earlier else []
            _rows(args.name, args.plan, earlier, out)
        elif stage.kind == "tests":
            _tests(args.plan, args.out_dir, out)
        else:
            _harnesses(args.plan, args.out_dir, out)
    except SpikeflopsError as exc:
        out.write(error=str(exc))
        say(f"    stage {args.name}: {exc}")
        return 2
    finally:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
