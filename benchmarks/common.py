"""The asv side of the case table: classes are written once here, and each suite only names its family.

asv starts one process per benchmark and parameter combination; `spikeflops info --asv-bench`
gives the `-b` pattern that leaves out what this profile and machine don't run. Parameters
(from the table, every profile) are the same on every machine; a combination that is not a
row here raises NotImplementedError (asv: skipped). No model code: only the contract, through
``workloads.measure``.
"""

from __future__ import annotations

from workloads.cases import FAMILIES, asv_params, get_profile, row_for, select, why_not_runnable
from workloads.errors import SpikeflopsError

PROFILE = get_profile()            # SPIKEFLOPS_PROFILE=ci|regular|full


class Benchmark:
    """Pins asv's knobs for every suite: one process, few repeats, timeouts that fit GPU runs."""

    timeout = 3600
    processes = 1
    repeat = 1
    number = 1
    warmup_time = 0.0
    rounds = 1


def require_row(family: str, params: tuple):
    row = row_for(family, params)
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
            out[row.param_values()] = {k: v.value for k, v in track(row, PROFILE).items()}
        except SpikeflopsError as exc:
            out[row.param_values()] = f"{row.family}{row.param_values()}: {exc}"
    return out


class TrackedFamily(Benchmark):
    """A family of numbers the contract returns; subclasses set ``family`` and define setup_cache
    (asv keys a cache by the line it is defined on, so each class needs its own)."""

    family = ""

    def setup(self, cache, *params):
        require_row(self.family, params)
        entry = cache.get(tuple(params))
        if entry is None:
            raise NotImplementedError("not measured here")
        if isinstance(entry, str):
            raise RuntimeError(entry)


class TimedFamily(Benchmark):
    """A family whose metric asv's own timer measures: a prepared, checked, warmed-up callable."""

    family = ""

    def setup(self, *params):
        from workloads.measure import timed

        self.timed = timed(require_row(self.family, params))

    def teardown(self, *params):
        # asv calls setup again before other samples: free this model before the next is built
        timed = getattr(self, "timed", None)
        if timed is not None:
            timed.close()
            self.timed = None


def bind(cls):
    """Give a family's class its asv params and one method per metric (units from the table)."""
    family = FAMILIES[cls.family]
    cls.params, cls.param_names = asv_params(cls.family)
    cls.__doc__ = family.doc
    for metric in family.metrics:
        if metric.timed:
            def method(self, *params):
                self.timed()
            name = metric.name                   # time_step, time_trial
        else:
            def method(self, cache, *params, _metric=metric.name):
                return cache[tuple(params)][_metric]
            name = f"track_{metric.name}"
        method.__name__ = name
        method.unit = metric.unit
        setattr(cls, name, method)
    return cls
