"""The asv side of the registry: one class per metric family of every registered workload, made here.

Each class has one parameter, ``case``: the ids of the rows this profile runs on this machine
(``SPIKEFLOPS_PROFILE``, ``SPIKEFLOPS_CASES``), so asv starts, prints and saves only cases that
can run here, and a family with no such row has no class. No model code: only the contract,
through ``workloads.measure``.
"""

from __future__ import annotations

import sys
import types

from workloads.errors import SpikeflopsError
from workloads.profiles import get_profile
from workloads.registry import FAMILIES, asv_params, case_id, row_for_case, select, why_not_runnable

PROFILE = get_profile()            # SPIKEFLOPS_PROFILE=ci|regular|full


class Benchmark:
    """Pins asv's knobs for every suite: one process, few repeats, timeouts that fit GPU runs."""

    timeout = 3600
    processes = 1
    repeat = 1
    number = 1
    warmup_time = 0.0
    rounds = 1


def require_row(family: str, case: str):
    row = row_for_case(family, case)
    if row is None:
        raise NotImplementedError("not a case of the table")
    why = why_not_runnable(row, PROFILE)
    if why:
        raise NotImplementedError(why)
    return row


def cache_family(family: str) -> dict:
    """Every metric of every row this profile runs here, measured once (asv's setup_cache).

    A row that fails with a spikeflops error (e.g. it does not fit in memory) keeps its message
    and fails alone, in setup: the other rows' records are not lost.
    """
    from workloads.measure import track

    out = {}
    for row in select(family, PROFILE):
        try:
            out[case_id(row)] = {k: v.value for k, v in track(row, PROFILE).items()}
        except SpikeflopsError as exc:
            out[case_id(row)] = f"{row.family} {case_id(row)}: {exc}"
    return out


class TrackedFamily(Benchmark):
    """A family of numbers the contract returns; subclasses set ``family`` and define setup_cache
    (asv keys a cache by the line it is defined on, so each class needs its own)."""

    family = ""

    def setup(self, cache, case):
        require_row(self.family, case)
        entry = cache.get(case)
        if entry is None:
            raise NotImplementedError("not measured here")
        if isinstance(entry, str):
            raise RuntimeError(entry)


class TimedFamily(Benchmark):
    """A family whose metric asv's own timer measures: a prepared, checked, warmed-up callable."""

    family = ""

    def setup(self, case):
        from workloads.measure import timed

        self.timed = timed(require_row(self.family, case))

    def teardown(self, case):
        # asv calls setup again before other samples: free this model before the next is built
        timed = getattr(self, "timed", None)
        if timed is not None:
            timed.close()
            self.timed = None


# asv knobs per family where the defaults do not fit (harness settings, not part of any workload)
ASV_SETTINGS = {
    "GPTStep": {"repeat": (10, 20, 30.0)},            # enough raw samples for the rank test to see a 10 % change
    "SuperSpikeTrial": {"repeat": (4, 5, 600.0)},     # >= 4 samples: with 3 against 3 no rank test reaches p < 0.05
    "SuperSpikeConvergence": {"timeout": 7200},
}


def suite(family_name: str) -> type:
    """The asv class of one family: its params from the table, one method per metric (units from the
    declaration), named ``bench_<workload>.<Family>.<method>`` in every results file, as before the
    registry existed, so the history of each benchmark continues."""
    family = FAMILIES[family_name]
    timed = family.timed_metric is not None
    attrs = {"family": family_name, "__doc__": family.doc, **ASV_SETTINGS.get(family_name, {})}
    attrs["params"], attrs["param_names"] = asv_params(family_name, PROFILE)
    if not timed:
        attrs["setup_cache"] = _setup_cache(family_name)
    for metric in family.metrics:
        if metric.timed:
            def method(self, case):
                self.timed()
            name = metric.name                   # time_step, time_trial
        else:
            def method(self, cache, case, _metric=metric.name):
                return cache[case][_metric]
            name = f"track_{metric.name}"
        method.__name__ = name
        method.unit = metric.unit
        # declared, not hashed from this generated code: refactoring the harness keeps every history
        method.version = str(metric.version)
        method.benchmark_name = f"bench_{family.workload}.{family_name}.{name}"
        attrs[name] = method
    return type(family_name, (TimedFamily if timed else TrackedFamily,), attrs)


def _setup_cache(family_name: str):
    def setup_cache(self):
        return cache_family(family_name)
    # asv keys a setup_cache by its module and first line: every family's would be one cache. A module
    # of its own per family keeps them apart.
    module = f"{__name__}.cache_{family_name}"
    sys.modules.setdefault(module, types.ModuleType(module))
    setup_cache.__module__ = module
    return setup_cache
