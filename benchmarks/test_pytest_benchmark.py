"""The pytest-benchmark harness: twins of the asv suites, generated from the same registry and measured
through the same functions (``workloads.measure``): one test per metric family, one parameter per row.

`pytest benchmarks/test_pytest_benchmark.py --benchmark-only` times them; without --benchmark-only each
runs once as a test. The project's own tests (``tests/``) drive it in a child run (tests/test_harnesses.py).
Every number goes to ``extra_info`` as the row's typed entry (``spikeflops.results.ResultEntry``), under the
family's canonical metric names, so the gate reads both harnesses' results alike.
"""

from __future__ import annotations

import math

import pytest

from workloads.profiles import get_profile
from workloads.registry import FAMILIES, all_rows, case_id, why_not_runnable
from spikeflops.results import ResultEntry
from workloads.measure import timed, timed_rounds, track

PROFILE = get_profile()


def _rows(family: str):
    """This profile's rows of ``family``; rows this machine can't run are skipped with the reason."""
    out = []
    for row in all_rows(family):
        if PROFILE.name not in row.profiles:
            continue
        why = why_not_runnable(row, PROFILE)
        marks = [pytest.mark.skip(reason=why)] if why else []
        if getattr(row.case, "backend", None) == "genn":
            marks.append(pytest.mark.genn)
        if row.device.startswith("cuda"):
            marks.append(pytest.mark.gpu)
        out.append(pytest.param(row, id=case_id(row), marks=marks))
    return out or [pytest.param(None, id="none", marks=pytest.mark.skip(reason=f"no {family} rows in "
                                                                                 f"the {PROFILE.name} profile"))]


def _record(benchmark, row, values=None):
    """The row's typed entry in ``extra_info`` (the timed metric is pytest-benchmark's own stats)."""
    entry = ResultEntry.for_row(row)
    if values is not None:
        entry.add_values(values)
    benchmark.extra_info.update(profile=PROFILE.name, **entry.to_dict())


def _check(row, values):
    """Right before anything is recorded: every metric of the family, finite where it must be."""
    family = FAMILIES[row.family]
    assert set(values) == {m.name for m in family.metrics if not m.timed}, values.keys()
    for name, v in values.items():
        if name != "trials_to_target":           # NaN there means "never reached", a real result
            assert math.isfinite(v.value), (name, v)


def _tracked(family):
    @pytest.mark.parametrize("row", _rows(family))
    def test(benchmark, row):
        # one call, not a timing: a table of its own, so its zero IQR is not every timing's baseline ("(inf)")
        benchmark.group = f"{family}: one call each, not a timing (its numbers: spikeflops metrics, below)"
        values = benchmark.pedantic(track, args=(row, PROFILE), rounds=1, iterations=1)
        _check(row, values)
        _record(benchmark, row, values)
    test.__name__ = f"test_{family}"
    return test


def _timed(family):
    @pytest.mark.parametrize("row", _rows(family))
    def test(benchmark, row):
        benchmark.group = f"{family}: seconds per step"          # timings compared with their own family's only
        with timed(row) as fn:
            benchmark.pedantic(fn, rounds=timed_rounds(row, PROFILE), iterations=1)
        _record(benchmark, row)
    test.__name__ = f"test_{family}"
    return test


for _name, _family in FAMILIES.items():
    globals()[f"test_{_name}"] = (_timed if _family.timed_metric else _tracked)(_name)
