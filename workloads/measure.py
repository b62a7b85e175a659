"""Each metric family's numbers, from the workload declarations: what every harness measures for a row.

asv's benchmark classes, the pytest-benchmark twins and `spikeflops run` call only these, so a
metric has one definition: :func:`track` for the numbers a tracked family returns, :func:`timed`
for the callable a harness's own timer measures, :func:`timed_rounds` for how often it is called.
What a harness writes of them is the results schema's (``spikeflops.results``).
"""

from __future__ import annotations

from .metrics import Row, Timed, Value  # noqa: F401 - Timed, Value: the types these return
from .profiles import Profile
from .registry import FAMILIES


def track(row: Row, profile: Profile) -> dict[str, Value]:
    """Every metric of ``row``'s (untimed) family, measured through its workload."""
    family = FAMILIES[row.family]
    if family.measure is None:
        raise ValueError(f"{family.name} is a timed family: use timed()")
    return family.measure(row, profile)


def timed(row: Row) -> Timed:
    """The step of a timed family's row, prepared, checked and warmed up."""
    family = FAMILIES[row.family]
    if family.prepare is None:
        raise ValueError(f"{family.name} is not a timed family: use track()")
    return family.prepare(row)


def timed_rounds(row: Row, profile: Profile) -> int:
    return FAMILIES[row.family].rounds(profile)
