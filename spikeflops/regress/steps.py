"""Step detection in a metric's history: where a series of nightly runs moved to a new level and stayed.

The best single split of the series into a before and an after segment (the one that minimises the
sum of absolute deviations from each segment's median, an L1 fit that one wild run cannot drag), kept
only when the level really moved: the after segment has at least ``min_after`` runs (one run is an
outlier, not a step), and the medians differ by more than the rule's threshold and by more than
either segment's own spread.
"""

from __future__ import annotations

import heapq
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


def _prefix_costs(values: list[float]) -> list[float]:
    """``c[i]``: the sum of absolute deviations of ``values[:i]`` from their median, for every i, in
    O(n log n) (two heaps about the running median; for an even count any point between the two middle
    values gives the same sum, so the lower middle serves)."""
    lower: list[float] = []          # a max-heap (negated): the smaller half, its top the median
    upper: list[float] = []          # a min-heap: the larger half
    sum_lower = sum_upper = 0.0
    costs = [0.0]
    for v in values:
        if lower and v > -lower[0]:
            heapq.heappush(upper, v)
            sum_upper += v
        else:
            heapq.heappush(lower, -v)
            sum_lower += v
        if len(lower) > len(upper) + 1:
            moved = -heapq.heappop(lower)
            sum_lower -= moved
            heapq.heappush(upper, moved)
            sum_upper += moved
        elif len(upper) > len(lower):
            moved = heapq.heappop(upper)
            sum_upper -= moved
            heapq.heappush(lower, -moved)
            sum_lower += moved
        med = -lower[0]
        costs.append(med * len(lower) - sum_lower + sum_upper - med * len(upper))
    return costs


def _spread(values: list[float]) -> float:
    med = statistics.median(values)
    return max(abs(v - med) for v in values) / abs(med) if med else 0.0


def detect_step(values: list[float], threshold: float, min_before: int = 2, min_after: int = 2) -> Step | None:
    """The step in ``values`` (time order), or None when the series held its level."""
    n = len(values)
    best = None
    before_costs = _prefix_costs(values)
    after_costs = _prefix_costs(values[::-1])[::-1]          # after_costs[i]: the cost of values[i:]
    for i in range(min_before, n - min_after + 1):
        cost = before_costs[i] + after_costs[i]
        if best is None or cost < best[0] - 1e-12 * (abs(best[0]) + 1):   # the first of equal splits
            best = (cost, i)
    if best is None:
        return None
    i = best[1]
    before, after = values[:i], values[i:]
    step = Step(i, statistics.median(before), statistics.median(after), max(_spread(before), _spread(after)))
    if abs(step.change) <= max(threshold, step.spread):
        return None
    return step


def is_worse(step: Step, direction: str) -> bool:
    return step.after > step.before if direction == "lower" else (
        step.after < step.before if direction == "higher" else step.after != step.before)
