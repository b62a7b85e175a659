"""The suite's own speed, declared like any workload so that both harnesses record it and the gate judges it.

A benchmark suite that takes minutes to read its history is not one people keep running: these
families measure the CPU seconds the suite itself spends per results file (parsing, a gate's
``--history``, a report's history and step detection) on synthetic asv results made from the
registry's own case table, the CPU seconds ``spikeflops --help`` costs (no torch import), and
the CPU seconds of the test modules that decide how long ``.ci/run`` takes (SuiteTests: a benchmark
row runs one in a fresh pytest; every run of the test suite records all of them the same way,
through tests/testcosts.py, where SPIKEFLOPS_TEST_COSTS names a file).
CPU seconds, not wall time: a co-tenant on a shared runner stretches the wall clock, not the CPU
the suite needs. It measures the project, not a user's workload, so it is no part of the installed
package: the harnesses of this checkout add it (``SPIKEFLOPS_EXTRA_WORKLOADS=benchmarks.suite_costs``, set
by ``benchmarks/__init__.py`` and the root conftest). Imports nothing heavy at declaration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from workloads.metrics import Family, Metric, Value, Workload

REPEATS = 3                 # each figure is the median of three measurements, kept as its samples
TEST_REPEATS = 2            # a test module takes minutes: two runs, both kept (one sample decides nothing)
ROOT = Path(__file__).resolve().parent.parent
# five of the modules that cost .ci/run the most when they were chosen (docs/measurements.md, from
# SPIKEFLOPS_TEST_COSTS): rows of the full profile only (the test suite is minutes, and twice per row)
COSTLY_TEST_MODULES = ("tests/test_harnesses.py", "tests/test_triage.py", "tests/test_interruption.py",
                       "tests/test_gpu_kit.py", "tests/test_cli.py")
# where the test suite writes every module's costs as a SuiteTests results file (tests/testcosts.py)
COSTS_ENV_VAR = "SPIKEFLOPS_TEST_COSTS"


@dataclass(frozen=True)
class SuiteCase:
    task: str               # read, history, report, help, tests
    files: int = 0          # synthetic results files the task reads (0: none)
    device: str = "cpu"
    module: str = ""        # tests: the test module run, as pytest names it (tests/test_x.py)

    def to_dict(self) -> dict:
        return asdict(self)

    def label(self) -> str:
        return f"suite {self.task}" + (f" {self.files} files" if self.files else "") + (
            f" {self.module}" if self.module else "")


def synthetic_asv_results(folder, files: int, machine: str = "suite-bench") -> list:
    """``files`` asv results files (one commit each) of every registered family's ci cases, under
    ``folder/<machine>/``, with values that drift a little from commit to commit."""
    import json
    import random
    from pathlib import Path

    from workloads.registry import FAMILIES, all_rows

    rng = random.Random(0)
    grids = {}
    for name, family in FAMILIES.items():
        rows = [r for r in all_rows(name) if "ci" in r.profiles]
        if not rows:
            continue
        axes = [sorted({repr(v) for v in values}) for values in zip(*(r.param_values() for r in rows))]
        grids[name] = (family, axes)
    out = Path(folder) / machine
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(files):
        results = {}
        for name, (family, axes) in grids.items():
            n = 1
            for axis in axes:
                n *= len(axis)
            for m in family.metrics:
                method = m.name if m.timed else f"track_{m.name}"
                results[f"bench_{family.workload}.{name}.{method}"] = [
                    [1.0 + 0.01 * rng.random() + 0.001 * i for _ in range(n)], axes]
        data = {"version": 2, "commit_hash": f"{i:08x}" + "0" * 32, "date": 1795465980000 + 1000 * i,
                "env_name": "bench", "python": "3", "requirements": {},
                "params": {"machine": machine, "cpu": "bench", "num_cpu": "2", "arch": "x86_64"},
                "result_columns": ["result", "params"], "results": results}
        path = out / f"{i:08x}-bench.json"
        path.write_text(json.dumps(data))
        paths.append(path)
    return paths


def _cpu_per_file(task: str, files: int) -> float:
    """CPU seconds per results file of one ``task`` over ``files`` fresh synthetic files."""
    import tempfile
    import time

    with tempfile.TemporaryDirectory(prefix="spikeflops-suite-") as tmp:
        paths = synthetic_asv_results(tmp, files)
        start = time.process_time()
        if task == "read":
            from spikeflops.regress.records import load

            for p in paths:
                load(p)
        elif task == "history":
            import contextlib
            import io

            from spikeflops.regress.inputs import load_history
            from spikeflops.regress.judge import pool_history
            from spikeflops.regress.records import load

            with contextlib.redirect_stderr(io.StringIO()):
                pool_history(load_history(str(paths[0].parent), files, load(paths[-1])))
        elif task == "report":
            from spikeflops.regress.history import collect
            from spikeflops.regress.report import find_steps
            from spikeflops.regress.rules import load_config

            config = load_config(None)
            tracked = {}
            for label, per_machine in collect([tmp]).items():
                rule = config.rule_for(label.split("(", 1)[0])
                if rule is not None and rule.direction != "none":
                    tracked[label] = (rule.direction, per_machine)
            find_steps(tracked, {label: config.rule_for(label.split("(", 1)[0]).threshold for label in tracked})
        else:
            raise ValueError(f"unknown suite task {task!r}")
        return (time.process_time() - start) / files


def _reading(row, profile):
    import statistics

    from spikeflops.regress import records

    samples = []
    for _ in range(REPEATS):
        records._CACHE.clear()          # every repeat parses: the cost of a first read
        samples.append(_cpu_per_file(row.case.task, row.case.files))
    return {"cpu_per_file": Value(statistics.median(samples), tuple(samples))}


def _startup(row, profile):
    import resource
    import statistics
    import subprocess
    import sys

    import os

    # the product's own start, as a user's shell gives it: no extra workload tables of this checkout
    env = {k: v for k, v in os.environ.items() if k != "SPIKEFLOPS_EXTRA_WORKLOADS"}
    samples = []
    for _ in range(REPEATS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run([sys.executable, "-m", "spikeflops.cli", "--help"], capture_output=True, text=True,
                              env=env)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0 or "usage" not in proc.stdout:
            raise RuntimeError(f"spikeflops --help failed: {proc.stderr.strip()[-200:]}")
        samples.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return {"cpu_seconds": Value(statistics.median(samples), tuple(samples))}


def _test_module(row, profile):
    """CPU seconds (the pytest process and its children) and wall seconds of one test module in a fresh
    pytest, which must pass: a module that fails or runs nothing measured no suite cost."""
    import os
    import re
    import resource
    import statistics
    import subprocess
    import sys
    import time

    env = {k: v for k, v in os.environ.items() if k != COSTS_ENV_VAR}
    cpu, wall = [], []
    for _ in range(TEST_REPEATS):
        before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                               row.case.module], cwd=ROOT, env=env, capture_output=True, text=True)
        elapsed, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
        last = (proc.stdout.strip().splitlines() or [""])[-1]
        if proc.returncode != 0 or not re.search(r"\b[1-9]\d* passed", last):
            raise RuntimeError(f"{row.case.module}: pytest exited {proc.returncode} ({last or proc.stderr[-200:]}): "
                               "a failing module measures no suite cost")
        cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        wall.append(elapsed)
    return {"cpu_seconds": Value(statistics.median(cpu), tuple(cpu)),
            "wall_seconds": Value(statistics.median(wall), tuple(wall))}


READING = Family(
    "SuiteReading", "suite", ("task", "files"),
    (Metric("cpu_per_file", "seconds", "suite cost", "lower", "timing"),),
    "CPU seconds per results file the suite spends reading asv results (read), pooling a gate's "
    "--history (history) and a report's history and step detection (report), on synthetic files of "
    "every registered family's ci cases: the cost per commit must stay flat as history grows.",
    measure=_reading)

STARTUP = Family(
    "SuiteStartup", "suite", ("task",),
    (Metric("cpu_seconds", "seconds", "suite cost", "lower", "timing"),),
    "CPU seconds of `spikeflops --help` in a fresh process: the command line must start without torch.",
    measure=_startup)

TESTS = Family(
    "SuiteTests", "suite", ("module",),
    (Metric("cpu_seconds", "seconds", "suite cost", "lower", "timing"),
     Metric("wall_seconds", "seconds", "suite cost", "none", "timing")),
    "CPU seconds (with its children) and wall seconds of one of the test suite's costliest modules, the "
    "stages of `.ci/run` that decide its length; `.ci/run` records every module's the same way "
    "(SPIKEFLOPS_TEST_COSTS, tests/testcosts.py). Wall time is shown, never judged: a co-tenant stretches it.",
    measure=_test_module)

FAMILIES = (READING, STARTUP, TESTS)


def rows():
    for task in ("read", "history", "report"):
        yield READING.row(SuiteCase(task, 30), ("ci", "regular", "full"))
    yield STARTUP.row(SuiteCase("help"), ("ci", "regular", "full"))
    for module in COSTLY_TEST_MODULES:
        yield TESTS.row(SuiteCase("tests", module=module), ("full",))


def unavailable(row) -> str | None:
    import importlib.util

    if row.family == READING.name and importlib.util.find_spec("asv") is None:
        return "needs asv, an optional package (pip install asv, or the project's [test] extra)"
    if row.family == TESTS.name and not (ROOT / row.case.module).is_file():
        return f"{row.case.module} is not beside this copy of spikeflops (an installed package has no tests)"
    return None


WORKLOAD = Workload("suite", FAMILIES, rows, unavailable)
