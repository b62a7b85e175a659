"""Helpers for the gate tests: the committed CPU baseline, and copies of it with a change injected."""

from __future__ import annotations

import copy
import fnmatch
import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


HISTORY_MACHINE = "vm-amd-epyc-x2"      # the machine with the longest committed asv history (four commits)
# The committed files the tests read, named: a run the user keeps into the same folders (`spikeflops keep`,
# even committed) is never taken for the history the tests pin
HISTORY_ASV_COMMITS = ("f4f2f355", "338f7809", "7ebdefd0", "77ab5194")
HISTORY_PYTEST_BENCHMARK = ("0001_f1fff506675b_baseline.json", "0002_f1fff506675b_baseline.json")


def committed_asv_runs() -> list[Path]:
    """The committed asv runs of one machine, oldest first: real files the gate's tests pair and edit."""
    folder = RESULTS / "asv" / HISTORY_MACHINE
    runs = [p for p in folder.glob("*.json") if p.name.split("-", 1)[0] in HISTORY_ASV_COMMITS]
    assert len(runs) == len(HISTORY_ASV_COMMITS), f"the committed history in {folder} is incomplete: {runs}"
    return sorted(runs, key=lambda p: json.loads(p.read_text()).get("date", 0))


def committed_pytest_benchmark_runs() -> list[Path]:
    runs = sorted(p for p in (RESULTS / "pytest-benchmark").glob("*/*/*.json") if p.name in HISTORY_PYTEST_BENCHMARK)
    assert len(runs) == len(HISTORY_PYTEST_BENCHMARK), runs
    return runs


def scale_asv(src: Path, dst: Path, pattern: str, factor: float = 1.0, add: float = 0.0) -> Path:
    """Copy an asv results file with every value (and raw sample) of matching benchmarks scaled."""
    data = json.loads(src.read_text())
    cols = data["result_columns"]
    ri, si = cols.index("result"), cols.index("samples")
    hit = False
    for name, row in data["results"].items():
        if not fnmatch.fnmatchcase(name, pattern):
            continue
        hit = True
        row[ri] = [_scale(v, factor, add) for v in row[ri]]
        if len(row) > si and row[si]:
            row[si] = [None if s is None else [_scale(x, factor, add) for x in s] for s in row[si]]
    assert hit, f"no benchmark matches {pattern}"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if (src.parent.parent / "benchmarks.json").exists() and not (dst.parent.parent / "benchmarks.json").exists():
        (dst.parent.parent / "benchmarks.json").write_text((src.parent.parent / "benchmarks.json").read_text())
    dst.write_text(json.dumps(data))
    return dst


def scale_pytest_benchmark(src: Path, dst: Path, test: str, key: str, factor: float = 1.0,
                           add: float = 0.0) -> Path:
    """Copy a pytest-benchmark file with one metric scaled: key 'time' (stats and raw data) or a metric of extra_info."""
    data = json.loads(src.read_text())
    hit = False
    for bench in data["benchmarks"]:
        if bench["name"].split("[")[0] != test:
            continue
        hit = True
        if key == "time":
            stats = bench["stats"]
            for k in ("min", "max", "mean", "median", "q1", "q3"):
                stats[k] = _scale(stats[k], factor, add)
            stats["data"] = [_scale(x, factor, add) for x in stats["data"]]
        else:
            extra = bench["extra_info"]
            extra["metrics"][key] = _scale(extra["metrics"][key], factor, add)
            if key in (extra.get("samples") or {}):
                extra["samples"][key] = [_scale(v, factor, add) for v in extra["samples"][key]]
    assert hit, f"no benchmark {test}"
    dst.write_text(json.dumps(data))
    return dst


def _scale(v, factor, add):
    if v is None or (isinstance(v, float) and v != v):
        return v
    out = v * factor + add
    return type(v)(out) if isinstance(v, int) and float(out).is_integer() else out


def cli(*args) -> subprocess.CompletedProcess:
    """``spikeflops ARGS`` in this process (the same ``main`` the console script calls), its exit status and
    output captured as a CompletedProcess: a fresh interpreter per call cost a second each and proved nothing
    more (tests/test_registry.py starts the real command line once)."""
    import contextlib
    import io

    from spikeflops.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = [str(a) for a in args]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:               # argparse's own refusals
            code = exc.code if isinstance(exc.code, int) else 2
    return subprocess.CompletedProcess(["spikeflops", *argv], code, out.getvalue(), err.getvalue())


def gate(*args) -> subprocess.CompletedProcess:
    return cli("gate", *args)


def copy_json(src: Path, dst: Path, edit=None) -> Path:
    data = json.loads(src.read_text())
    if edit:
        edit(data)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(copy.deepcopy(data)))
    return dst


def committed_copy(path: str, dest: Path) -> Path:
    """``path`` (a folder of the repository) as the last commit holds it, written under ``dest``: what is
    committed, never a run the user has put beside it since."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD", path], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / path
