"""Level changes in a metric's history: where a series of runs moved to a new level and stayed.

One detector for every reader of a history (the report's steps, the gate's ``--history`` window): asv's
own step detection (``asv.step_detect.detect_steps``, a Potts / L1 fit that finds any number of level
changes, so a regression and its later fix are two steps, not one or none), then the project's rule of
what counts: neighbouring levels within the rule's threshold are one level, and a step needs two or more
runs on each side (one run off its neighbours is a wild run, not a level, until a second confirms it) and a
move larger than the threshold and than either level's own spread.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    index: int                 # first point of the after segment
    before: float              # medians
    after: float
    spread: float              # the larger within-segment relative spread

    @property
    def change(self) -> float:
        if self.before == self.after:                  # 0 -> 0 is no change, never "+inf %"
            return 0.0
        return self.after / self.before - 1 if self.before else float("inf")


def _spread(values: list[float]) -> float:
    med = statistics.median(values)
    return max(abs(v - med) for v in values) / abs(med) if med else 0.0


def _relative(a: float, b: float) -> float:
    if a == b:
        return 0.0
    return abs(b / a - 1) if a else float("inf")


def levels(values: list[float], threshold: float) -> list[tuple[int, int]]:
    """(start, end) of each level of ``values`` (time order, finite): asv's segments, neighbours whose
    medians differ by no more than ``threshold`` merged into one."""
    if len(values) < 2 or max(values) == min(values):
        return [(0, len(values))] if values else []
    from asv.step_detect import detect_steps as asv_detect_steps

    merged: list[tuple[int, int]] = []
    for left, right, *_ in asv_detect_steps(values):
        if merged and _relative(statistics.median(values[slice(*merged[-1])]),
                                statistics.median(values[left:right])) <= threshold:
            merged[-1] = (merged[-1][0], right)
        else:
            merged.append((left, right))
    return merged


def steps_beyond(values: list[float], threshold: float, min_runs: int = 2) -> list[Step]:
    """Every step in ``values`` (time order), oldest first; none when the series held its level."""
    found = []
    segments = levels(values, threshold)
    for (l0, r0), (l1, r1) in zip(segments, segments[1:]):
        before, after = values[l0:r0], values[l1:r1]
        if len(before) < min_runs or len(after) < min_runs:
            continue
        step = Step(l1, statistics.median(before), statistics.median(after), max(_spread(before), _spread(after)))
        if abs(step.change) > max(threshold, step.spread):
            found.append(step)
    return found


def last_level_start(values: list[float], threshold: float) -> int:
    """Index of the first run of the newest level (0: one level, or too few runs): where the newest step
    :func:`steps_beyond` finds begins, so the gate's history and the report agree on every series."""
    steps = steps_beyond(values, threshold)
    return steps[-1].index if steps else 0


def is_worse(step: Step, direction: str) -> bool:
    return step.after > step.before if direction == "lower" else (
        step.after < step.before if direction == "higher" else step.after != step.before)
