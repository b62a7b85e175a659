"""Collect results files of many commits and machines into one history per metric."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from workloads.errors import SpikeflopsError
from .records import ResultSet, load


@dataclass(frozen=True)
class Point:
    machine: str
    commit: str
    date: float
    value: float
    harness: str
    unit: str = ""
    run_date: float = 0.0          # when this run happened: runs of one commit are separate points
    contended: bool = False        # the run's process got less than the gate's contention floor of its CPU


NOT_RESULTS = {"html", "calibration", "error-rates"}
CONTENDED_FLOOR = 0.5              # gate.toml's contended_floor: a run below it is marked in the plots


def find_results_files(paths: list[str]) -> list[Path]:
    """Every results file under the given files and folders (asv's machine.json/benchmarks.json excluded)."""
    out = []
    for path in paths:
        p = Path(path)
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            # the tool's own files beside the results (calibrations, error rates, a dashboard) are not runs
            out += sorted(f for f in p.rglob("*.json") if f.name not in ("machine.json", "benchmarks.json")
                          and not set(f.relative_to(p).parts) & NOT_RESULTS)
        else:
            raise SpikeflopsError(f"{path}: no such file or folder")
    if not out:
        raise SpikeflopsError(f"no results files under {', '.join(paths)}")
    return out


def collect(paths: list[str], skip_unreadable: bool = True, warn=None) -> dict[str, dict[str, list[Point]]]:
    """{metric label: {machine: [points in time order]}}. Unreadable files are named and skipped."""
    history: dict[str, dict[str, list[Point]]] = {}
    for path in find_results_files(paths):
        try:
            rs = load(path)
        except SpikeflopsError as exc:
            if not skip_unreadable:
                raise
            if warn:
                warn(f"skipped {exc}")
            continue
        _add(history, rs, path)
    for per_machine in history.values():
        for points in per_machine.values():
            points.sort(key=lambda p: (p.date, p.commit, p.run_date))
    return history


def _add(history, rs: ResultSet, path: os.PathLike) -> None:
    machine = rs.machine.get("machine") or "unknown"
    if rs.harness != "asv":
        machine = f"{machine} ({rs.harness})"
    date = rs.commit_date or rs.date or Path(path).stat().st_mtime      # ordered by commit, then by run
    shares = [m.value for m in rs.measurements if m.metric.endswith(".cpu_share") and m.value == m.value]
    shares += [rs.cpu_share] if rs.cpu_share is not None else []
    contended = bool(shares) and min(shares) < CONTENDED_FLOOR
    for m in rs.measurements:
        history.setdefault(m.label, {}).setdefault(machine, []).append(
            Point(machine, (rs.commit or "?")[:8], date, m.value, rs.harness, m.unit, rs.date or date, contended))
