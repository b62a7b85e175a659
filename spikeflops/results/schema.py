"""The ``spikeflops-run/1`` results file, defined once: every writer builds a :class:`RunFile` of
:class:`ResultEntry` rows (`spikeflops run`, the GPU kit; the pytest-benchmark
harness writes the same entries into ``extra_info``), and the reader (``spikeflops.results.records``) checks the
format against :data:`RUN_FORMAT` and reads the entries back with :meth:`ResultEntry.from_dict`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from workloads.metrics import Row, Value
from workloads.registry import FAMILIES

RUN_FORMAT = "spikeflops-run/1"


@dataclass
class RunFile:
    """One run's results file: who measured what, where and when, and each row's entry."""

    profile: str
    machine_name: str | None
    machine: dict                            # workloads.hardware.machine_facts() (and counting_machine)
    commit: str | None
    dirty: bool
    date: str                                # ISO 8601, UTC: when the run started
    wall_s: float
    load: dict                               # workloads.load.LoadRecord.to_dict(): the machine while it ran
    results: list[dict] = field(default_factory=list)      # ResultEntry.to_dict() of each row
    sections: dict = field(default_factory=dict)          # a writer's own top-level sections (the kit's "kit")

    def to_dict(self) -> dict:
        return {"format": RUN_FORMAT, "profile": self.profile, "machine_name": self.machine_name,
                "machine": self.machine, "commit": self.commit, "dirty": self.dirty, "date": self.date,
                "wall_s": self.wall_s, "load": self.load, "results": self.results, **self.sections}


# named parts read per metric at most (a counted step keeps every function down to 99.9 % of its
# instructions, at most 2,000: workloads.counting): bounds what a results file can cost a reader
MOST_PARTS = 2000


@dataclass
class ResultEntry:
    """One row's numbers as `spikeflops run` and the pytest-benchmark harness write them (a results file's
    ``results`` entry, pytest-benchmark's ``extra_info``) and as the gate reads them back."""

    family: str
    params: dict[str, str]                   # the family's parameters, as strings
    units: dict[str, str]
    case: dict
    metrics: dict[str, float | None] = field(default_factory=dict)     # None: ran, produced no number
    samples: dict[str, list[float]] = field(default_factory=dict)
    error: str | None = None                 # the row failed: why
    wall_s: float | None = None
    parts: dict[str, dict[str, float]] = field(default_factory=dict)   # metric -> its named parts

    @classmethod
    def for_row(cls, row: Row) -> "ResultEntry":
        family = FAMILIES[row.family]
        return cls(row.family, {p: str(v) for p, v in zip(family.params, row.param_values())},
                   {m.name: m.unit for m in family.metrics}, row.case.to_dict())

    def add(self, name: str, value: float | None, samples=()) -> None:
        """One metric's summary (NaN and None both mean "no number") and its raw samples."""
        self.metrics[name] = None if value is None or math.isnan(value) else float(value)
        if samples:
            self.samples[name] = [float(x) for x in samples]

    def add_values(self, values: dict[str, Value]) -> None:
        for name, v in values.items():
            self.add(name, v.value, v.samples)
            if v.parts:
                self.parts[name] = {part: float(n) for part, n in v.parts}

    def to_dict(self) -> dict:
        out = {"family": self.family, "params": self.params, "units": self.units, "case": self.case,
               "metrics": self.metrics, "samples": self.samples}
        if self.error is not None:
            out["error"] = self.error
        if self.wall_s is not None:
            out["wall_s"] = self.wall_s
        if self.parts:
            out["parts"] = self.parts
        return out

    @classmethod
    def from_dict(cls, data) -> "ResultEntry":
        """An entry read back from a file; a wrong shape is a ValueError naming the field."""
        if not isinstance(data, dict) or not isinstance(data.get("family"), str):
            raise ValueError("an entry needs a 'family' name")

        def mapping(key):
            value = data.get(key) or {}
            if not isinstance(value, dict):
                raise ValueError(f"{data['family']}: '{key}' is not an object")
            return value
        metrics = {}
        for name, value in mapping("metrics").items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"{data['family']}.{name}: value {value!r} is not a number")
            metrics[str(name)] = None if value is None else float(value)
        samples = {}
        for name, values in mapping("samples").items():
            if not isinstance(values, list):
                raise ValueError(f"{data['family']}.{name}: samples are not a list")
            samples[str(name)] = [float(x) for x in values if x is not None]
        parts = {}
        for name, named in mapping("parts").items():
            if not isinstance(named, dict) or any(isinstance(n, bool) or not isinstance(n, (int, float))
                                                  for n in named.values()):
                raise ValueError(f"{data['family']}.{name}: parts are not named numbers")
            if len(named) > MOST_PARTS:     # a hostile or broken file: the largest kept, and said
                import sys

                print(f"spikeflops: {data['family']}.{name}: {len(named):,} named parts in a results file; the "
                      f"{MOST_PARTS:,} largest are kept", file=sys.stderr)
                named = dict(sorted(named.items(), key=lambda kv: -float(kv[1]))[:MOST_PARTS])
            parts[str(name)] = {str(k): float(n) for k, n in named.items()}
        error = data.get("error")
        return cls(data["family"], {str(k): str(v) for k, v in mapping("params").items()},
                   {str(k): str(v) for k, v in mapping("units").items()}, mapping("case"), metrics, samples,
                   None if error is None else str(error), data.get("wall_s"), parts)
