"""The registry: every metric says what it means, the import graph has no circle and nothing runs back
up, and a workload defined outside the repository is picked up by asv, pytest-benchmark and
`spikeflops run` with no edit to any of them."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workloads.metrics import DIRECTIONS, NOISE_MODELS, Metric
from workloads.registry import all_metrics

ROOT = Path(__file__).resolve().parents[1]


def test_every_metric_declares_direction_noise_unit_and_a_kind_the_gate_has_a_threshold_for():
    from spikeflops.regress.rules import load_config

    config = load_config()
    names = all_metrics()
    assert len(names) >= 51, "the registry lost metrics"
    for name, m in names:
        assert m.direction in DIRECTIONS and m.noise in NOISE_MODELS and m.unit and m.kind, name
        if m.direction != "none":
            assert m.kind in config.thresholds, f"{name}: kind {m.kind!r} has no threshold in gate.toml"
        rule = config.rule_for(name)
        assert (rule.direction, rule.noise, rule.portable) == (m.direction, m.noise, m.portable), name
    with pytest.raises(TypeError):
        Metric("x", "seconds", "time")                      # no direction, no noise model: not a metric
    with pytest.raises(ValueError, match="direction"):
        Metric("x", "seconds", "time", "sideways", "timing")


def test_a_metric_no_workload_declares_is_not_judged_and_says_why():
    from spikeflops.regress.judge import judge_pair
    from spikeflops.results.records import Measurement, ResultSet
    from spikeflops.regress.rules import load_config

    machine = {"harness": "asv", "machine": "m", "cpu": "c", "num_cpu": 2, "arch": "x", "gpu": None}

    def rs(v):
        return ResultSet("x", "asv", machine, "0" * 40, 0.0, [Measurement("Unknown.time_step", (), "s", v)])
    (verdict,) = judge_pair(rs(1.0), rs(2.0), load_config())
    assert verdict.status == "not judged" and verdict.detail == "no rule matches"


# ------------------------------------------------------------------ the import graph

def _modules() -> dict[str, Path]:
    out = {}
    for top in ("workloads", "spikeflops", "benchmarks"):
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules ``name`` imports anywhere in its file (lazy imports inside functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def test_the_import_graph_has_no_circle_and_nothing_runs_back_up():
    modules = _modules()
    known = set(modules)
    graph = {name: _imports(name, path, known) for name, path in modules.items()}
    # a circle: some module reaches itself
    for start in graph:
        seen, stack = set(), list(graph[start])
        while stack:
            m = stack.pop()
            assert m != start, f"import circle through {start}"
            if m not in seen:
                seen.add(m)
                stack.extend(graph.get(m, ()))
    # running back up: a workload importing the tool or the harness; a workload's own modules importing the
    # table or registry that lists them (only the table itself, the registry and the tool read tables)
    readers_of_tables = {"workloads.registry", "workloads.measure"}
    for name, deps in graph.items():
        if name.startswith("workloads"):
            assert not any(d.startswith(("spikeflops", "benchmarks")) for d in deps), (name, deps)
            if name not in readers_of_tables and not name.endswith(".table"):
                up = [d for d in deps if d.endswith(".table") or d in readers_of_tables]
                assert not up, f"{name} imports {up}: the table that lists it"


# ------------------------------------------------------------------ a third workload

TINY = textwrap.dedent('''
    """A tiny workload for the registry test: counts the items of a list, and times making it."""
    from dataclasses import asdict, dataclass

    from workloads.metrics import Family, Metric, Timed, Value, Workload


    @dataclass(frozen=True)
    class TinyCase:
        size: int
        device: str = "cpu"

        def to_dict(self):
            return asdict(self)


    def _count(row, profile):
        return {"items": Value(float(len(list(range(row.case.size)))))}


    COUNT = Family("TinyCount", "tiny", ("size",),
                   (Metric("items", "items", "operator count", "lower", "exact", portable=True),),
                   "Items in a list of the case's size.", measure=_count)
    STEP = Family("TinyStep", "tiny", ("size",),
                  (Metric("time_build", "seconds", "time", "lower", "timing", timed=True),),
                  "Time to build the list.", prepare=lambda row: Timed(lambda: list(range(row.case.size))),
                  rounds=lambda profile: 3)


    def rows():
        for size in (10, 1000):
            yield COUNT.row(TinyCase(size), ("ci",))
            yield STEP.row(TinyCase(size), ("ci",))


    WORKLOAD = Workload("tiny", (COUNT, STEP), rows)
''')


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "tiny_workload.py").write_text(TINY)
    env = {**os.environ, "SPIKEFLOPS_EXTRA_WORKLOADS": "tiny_workload", "SPIKEFLOPS_PROFILE": "ci",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return tmp_path, env


def _run(cmd, env, cwd=ROOT, timeout=600):
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.e2e                     # end-to-end: a real subprocess run (the e2e tier)
@pytest.mark.slow
def test_a_third_workload_defined_here_is_measured_by_run_pytest_benchmark_and_asv(tiny):
    tmp, env = tiny
    # spikeflops run, then its file gated against itself: the new metric is judged by its declaration
    run_out = tmp / "run.json"
    _run([sys.executable, "-m", "spikeflops.cli", "run", "--families", "TinyCount", "TinyStep", "--out",
          str(run_out)], env)
    entries = json.loads(run_out.read_text())["results"]
    assert {(e["family"], e["params"]["size"]) for e in entries} == {(f, s) for f in ("TinyCount", "TinyStep")
                                                                     for s in ("10", "1000")}
    assert {e["metrics"].get("items") for e in entries if e["family"] == "TinyCount"} == {10.0, 1000.0}
    verdicts = tmp / "verdicts.json"
    _run([sys.executable, "-m", "spikeflops.cli", "gate", str(run_out), str(run_out), "--out", str(verdicts)], env)
    judged = {v["label"]: (v["status"], v["rule"]) for v in json.loads(verdicts.read_text())["verdicts"]}
    assert judged["TinyCount.items(10)"] == ("unchanged", "operator count")
    assert judged["TinyStep.time_build(1000)"] == ("unchanged", "time")

    # pytest-benchmark: the harness module parametrizes the new families with no edit
    pb_out = tmp / "pb.json"
    _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
          str(ROOT / "benchmarks/test_pytest_benchmark.py"), "-k", "Tiny", "--benchmark-only",
          f"--benchmark-storage=file://{tmp / 'storage'}",
          f"--benchmark-json={pb_out}"], env)
    names = {b["name"] for b in json.loads(pb_out.read_text())["benchmarks"]}
    assert names == {"test_TinyCount[10]", "test_TinyCount[1000]", "test_TinyStep[10]", "test_TinyStep[1000]"}

    # asv: the suites module makes the new classes; their results are read under the same metric names
    asv = shutil.which("asv")
    assert asv, "asv is a test dependency"
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    conf.update(repo=str(ROOT), benchmark_dir=str(ROOT / "benchmarks"), env_dir=str(tmp / "env"),
                results_dir=str(tmp / "results"), html_dir=str(tmp / "html"))
    (tmp / "asv.conf.json").write_text(json.dumps(conf))
    env_asv = {**env, "HOME": str(tmp), "ASV_PYTHONPATH": env["PYTHONPATH"]}    # asv drops PYTHONPATH
    _run([sys.executable, "-m", "spikeflops.cli", "info", "--register-asv-machine", "tiny-machine"], env_asv)
    head = _run(["git", "rev-parse", "HEAD"], env).stdout.strip()
    _run([asv, "run", "--config", str(tmp / "asv.conf.json"), "--python=same", "--quick", "--machine", "tiny-machine",
          "--set-commit-hash", head, "-b", r"\.Tiny", "--show-stderr"], env_asv)
    from spikeflops.results.records import load

    (result,) = [p for p in (tmp / "results" / "tiny-machine").glob("*.json") if p.name != "machine.json"]
    # read where the workload is registered (as the user's gate runs), asv's case id is named by its table
    code = ("import sys; from spikeflops.results.records import load; "
            "print(sorted((m.metric, m.params, m.value) for m in load(sys.argv[1]).measurements))")
    got = _run([sys.executable, "-c", code, str(result)], env).stdout
    assert "('TinyCount.items', (('size', '10'),), 10.0)" in got and "TinyStep.time_build" in got, got
    # where it is not, the case keeps its id: the same key on both sides of a gate
    here = {(m.metric, m.params, m.value) for m in load(result).measurements if m.metric == "TinyCount.items"}
    assert here == {("TinyCount.items", (("case", "10"),), 10.0), ("TinyCount.items", (("case", "1000"),), 1000.0)}


# ------------------------------------------------------------------ the command line

def test_help_lists_every_registered_command_and_imports_no_torch():
    code = ("import sys; from spikeflops.cli import build_parser; p = build_parser(); "
            "sub = next(a for a in p._actions if a.dest == 'command'); "
            "print(','.join(sub.choices)); print(p.format_usage()); "
            "[sub.choices[c].format_help() for c in sub.choices]; print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    names, *usage, torch_loaded = proc.stdout.strip().splitlines()
    expected = {"run", "info", "gpt", "superspike", "gate", "calibrate", "compare", "bisect", "report", "dashboard", "keep",
                "error-rates", "kit"}
    assert set(names.split(",")) == expected
    assert all(name in " ".join(usage) for name in expected)
    assert torch_loaded == "False", "the command line imports torch before any command runs"


def test_the_installed_registry_lists_only_user_workloads(tmp_path):
    """The suite's own costs measure this checkout: without the checkout's harnesses the registry holds the
    GPT and SuperSpike families only, and workloads/ names nothing of the tool."""
    import os
    import re
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "SPIKEFLOPS_EXTRA_WORKLOADS"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", "from workloads.registry import FAMILIES; print(' '.join(FAMILIES))"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    families = proc.stdout.split()
    assert proc.returncode == 0 and families, proc.stderr
    assert all(f.startswith(("GPT", "SuperSpike")) for f in families), families
    named = [str(p) for p in (ROOT / "workloads").rglob("*.py")
             if re.search(r"""(import_module|WORKLOAD_TABLES)[^\n]*["']spikeflops""", p.read_text())]
    assert not named, named
