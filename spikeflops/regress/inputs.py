"""The results files a verdict reads: a file, a folder's newest, a folder's history of one machine, and a
machine's calibration, each refused in one line when it cannot be used."""

from __future__ import annotations

import sys
from pathlib import Path

from workloads.errors import SpikeflopsError


def load_results(path: str):
    """A results file as given; a folder: its newest results file by the date recorded inside it
    (asv: the commit's date; pytest-benchmark: the run's), never by file time, which a clone resets.
    Each file's header is read, then the newest file in full."""
    from ..results.records import load

    p = Path(path)
    if p.exists() and not p.is_dir():
        return load(p)
    if not p.is_dir():
        raise SpikeflopsError(f"{path}: no such file or folder")
    files = sorted(f for f in p.glob("*.json") if f.name not in ("machine.json", "benchmarks.json"))
    if not files:
        raise SpikeflopsError(f"{path}: no results files in this folder")
    headers = readable_headers(files)
    if not headers:
        raise SpikeflopsError(f"{path}: none of its {len(files)} results files is readable")
    newest = load(max(headers, key=lambda rs: rs.order_key).path)
    print(f"spikeflops gate: {path} -> {newest.path}", file=sys.stderr)
    return newest


def readable_headers(files: list[Path]) -> list:
    """The headers of ``files``; one that cannot be read (permissions, not JSON, not a regular file) is
    named on stderr and left out, as a report does: one bad file must not stop every gate of a folder."""
    from ..results.records import peek

    out = []
    for f in files:
        try:
            out.append(peek(f))
        except SpikeflopsError as exc:
            print(f"spikeflops gate: skipped {exc}", file=sys.stderr)
    return out


def load_history(folder: str, n: int, candidate=None) -> list:
    """The newest ``n`` results files of a folder (oldest first) from the candidate's machine, the candidate's
    own file left out. Runs of other machines are left out and counted: pooled, another CPU's speed reads
    as a regression (an unchanged candidate read as +199 %)."""
    from .judge import hardware_difference
    from ..results.records import load

    p = Path(folder)
    if not p.is_dir():
        raise SpikeflopsError(f"{folder}: --history needs a folder of results files")
    skip = Path(candidate.path).resolve() if candidate is not None else None
    files = [f for f in sorted(p.glob("*.json")) if f.name not in ("machine.json", "benchmarks.json")
             and f.resolve() != skip]
    runs = readable_headers(files)        # headers only: the newest n of this machine are read in full below
    others = []
    if candidate is not None:
        others = [rs for rs in runs if rs.harness != candidate.harness or hardware_difference(rs, candidate)]
        runs = [rs for rs in runs if rs not in others]
    runs = [load(rs.path) for rs in sorted(runs, key=lambda rs: rs.order_key)[-n:]]
    if len(runs) < 2:
        elsewhere = f" ({len(others)} more came from other machines or harnesses, left out)" if others else ""
        raise SpikeflopsError(f"{folder}: --history needs at least 2 earlier results of the candidate's machine, "
                              f"found {len(runs)}{elsewhere}")
    left_out = f"; {len(others)} runs of other machines left out" if others else ""
    print(f"spikeflops gate: history of {len(runs)} runs of this machine in {folder}{left_out}", file=sys.stderr)
    return runs


# the command that makes a candidate of each harness, for a refusal that says what to do instead
HOW_TO_MAKE = {
    "asv": "`asv run --python=same --quick --set-commit-hash "
           "$(git rev-parse HEAD)` (then gate its results folder)",
    "pytest-benchmark": "`python -m pytest benchmarks/test_pytest_benchmark.py --benchmark-only --benchmark-json=FILE`",
    "spikeflops-run": "`spikeflops run --out FILE` (on the baseline's commit too)",
}


def calibration_for(path: str, candidate) -> dict:
    from ..results.fileio import read_json
    from .calibration import check
    from .judge import HARDWARE_KEYS

    calibration = check(read_json(path), path)
    if calibration.get("harness") != candidate.harness:
        raise SpikeflopsError(f"{path} calibrates {calibration.get('harness')} results, the candidate is "
                              f"{candidate.harness} results")
    for key in HARDWARE_KEYS:
        mine, theirs = calibration.get("machine", {}).get(key), candidate.machine.get(key)
        if mine != theirs:
            raise SpikeflopsError(f"{path} was made on another machine ({key}: {mine!r}, candidate {theirs!r}): "
                                  "noise is a property of a machine")
    return calibration


def describe(rs) -> str:
    commit = (rs.commit or "?")[:8]
    m = rs.machine
    index = f"; names from the {rs.index_source}" if (rs.index_source or "").startswith("case table") else ""
    return (f"{rs.path} ({rs.harness}, commit {commit}, machine {m.get('machine')}, "
            f"{m.get('gpu') or m.get('cpu')}{index})")
