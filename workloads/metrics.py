"""What a workload declares: its metric families, each metric's meaning, and the rows it measures.

A :class:`Metric` carries everything the tools need to know about one number: its unit, which
way is better, how noisy it is, whether it means the same on another machine, and which family
of parts it splits into when it grows. The gate's ``gate.toml`` only says how large a change of
each ``kind`` must be to count. No torch here: workload tables import these types at no cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

DIRECTIONS = ("lower", "higher", "equal", "none")     # "equal": any change fails; "none": shown, never judged
NOISE_MODELS = ("timing", "exact", "seeds", "median", "counted", "oncpu", "blocked")


@dataclass(frozen=True)
class Split:
    """A whole-step metric's parts: ``family``'s metrics for the same case (``match``: the parameters that
    must agree), where the whole's case has the parameter values ``when``."""

    family: str
    match: tuple[str, ...]
    when: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Metric:
    name: str                  # "<Family>.<name>" in every harness's results
    unit: str
    kind: str                  # the gate's threshold entry (gate.toml [threshold."<kind>"])
    direction: str             # see DIRECTIONS
    noise: str                 # timing: raw samples + rank test; exact: deterministic; seeds: one value per
                               # seed; median: one figure from a correlated loop (MFU, tokens/s); counted:
                               # instructions under valgrind (deterministic on one machine and library build);
                               # oncpu: a timed step's thread time (a co-tenant's run-queue wait taken out, its
                               # cache pressure not); blocked: wall - on-CPU - run-queue wait (waits only)
    portable: bool = False     # the same number on any machine for the same program: judged across hardware
    timed: bool = False        # the harness's own timer measures it (asv time_*)
    positive: bool = False     # 0 is impossible (a step allocates, holds tensors): a 0 read is a broken file
    version: int = 1           # asv's benchmark version: bump it when this number's meaning changes (a new
                               # unit, another quantity), never because harness code moved; asv keeps a
                               # benchmark's history only across runs of one version
    splits: tuple[Split, ...] = ()

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"metric {self.name}: direction {self.direction!r} is not one of {DIRECTIONS}")
        if self.noise not in NOISE_MODELS:
            raise ValueError(f"metric {self.name}: noise {self.noise!r} is not one of {NOISE_MODELS}")


def python_lines_metric(name: str = "python_lines") -> "Metric":
    """Python line events of one step, per function in its parts (workloads.pywork): where Python work grew,
    named in the user's code. Deterministic, and shown only: a refactor may add lines that cost nothing."""
    return Metric(name, "line events", "python work", "none", "exact")


@dataclass(frozen=True)
class Value:
    value: float                             # the summary a harness stores (NaN: ran, never reached)
    samples: tuple[float, ...] = ()          # what it summarises: per step, per trial
    parts: tuple[tuple[str, float], ...] = ()  # named parts of the value (a count's functions), largest first


class Timed:
    """A prepared callable whose calls a harness times; ``close()`` frees what it holds."""

    def __init__(self, fn, close=lambda: None):
        self._fn, self._close = fn, close

    def __call__(self):
        return self._fn()

    def close(self) -> None:
        self._close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass(frozen=True)
class Family:
    """Metrics measured together on the same cases (one asv class, one pytest-benchmark test).

    A tracked family has ``measure(row, profile) -> {metric: Value}``; a timed one (one metric with
    ``timed=True``) has ``prepare(row) -> Timed`` and ``rounds(profile)``, the calls each harness times.
    """

    name: str
    workload: str
    params: tuple[str, ...]              # the case fields that vary, in order (asv param_names)
    metrics: tuple[Metric, ...]
    doc: str
    measure: Callable | None = None
    prepare: Callable | None = None
    rounds: Callable | None = None
    # how long one row takes against a typical row of a second or so (ordering only: `spikeflops run`
    # starts its longest untimed rows first, so no worker is left with a long row at the end)
    relative_cost: float = 1.0

    def __post_init__(self):
        timed = [m for m in self.metrics if m.timed]
        if timed and (len(self.metrics) != 1 or self.prepare is None or self.rounds is None):
            raise ValueError(f"{self.name}: a timed family has one timed metric, prepare() and rounds()")
        if not timed and self.measure is None:
            raise ValueError(f"{self.name}: a tracked family needs measure()")

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"{self.name} has no metric {name!r}")

    @property
    def timed_metric(self) -> Metric | None:
        return next((m for m in self.metrics if m.timed), None)

    @property
    def companions(self) -> tuple[Metric, ...]:
        """What a timed CPU step records beside its wall time (``spikeflops run``, ``compare``): the time the
        step's thread ran (``<timed>_on_cpu``: misses waits) and the time it waited for something other than
        a CPU (``<timed>_blocked``, wall minus on-CPU minus run-queue wait: misses work); and, on any device,
        the Python line events of one step per function (``<timed>_python_lines``, workloads.pywork: shown
        and diffed for "where it grew", never judged)."""
        timed = self.timed_metric
        if timed is None:
            return ()
        return (Metric(f"{timed.name}_on_cpu", "seconds", "on-CPU time", "lower", "oncpu"),
                Metric(f"{timed.name}_blocked", "seconds", "blocked time", "lower", "blocked"),
                python_lines_metric(f"{timed.name}_python_lines"))

    def declared(self, name: str) -> Metric | None:
        """The metric ``name`` of this family, its companions included."""
        return next((m for m in self.metrics + self.companions if m.name == name), None)

    def row(self, case, profiles: tuple[str, ...]) -> "Row":
        return Row(self.name, case, tuple(profiles), self.params)


@dataclass(frozen=True)
class Row:
    family: str
    case: object                         # the workload's frozen case type
    profiles: tuple[str, ...]
    param_names: tuple[str, ...] = field(default=(), compare=False)

    def param_values(self) -> tuple:
        return tuple(getattr(self.case, p) for p in self.param_names)

    @property
    def device(self) -> str:
        return self.case.device


@dataclass(frozen=True)
class Workload:
    """One workload's declaration, the only thing the registry needs of it."""

    name: str
    families: tuple[Family, ...]
    rows: Callable                       # () -> iterable of Row, every profile's
    unavailable: Callable = lambda row: None   # (row) -> why this machine cannot run it, beyond its device

