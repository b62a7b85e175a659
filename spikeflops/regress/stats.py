"""Mann-Whitney U, the rank test asv uses on raw timing samples: exact for small samples, normal otherwise."""

from __future__ import annotations

import math
from functools import lru_cache


def _ranks(values: list[float]) -> tuple[list[float], list[int]]:
    """Mid-ranks (1-based) of ``values`` and the sizes of their tie groups."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    ties = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        ties.append(j - i + 1)
        i = j + 1
    return ranks, ties


@lru_cache(maxsize=256)
def _u_counts(n1: int, n2: int) -> tuple[int, ...]:
    """How many of the C(n1+n2, n1) arrangements give each U = 0..n1*n2 (no ties)."""
    # counts[m][u]: arrangements of m first-sample items among the items so far with statistic u
    table = [[1]] + [[0] for _ in range(n1)]      # zero items placed
    for placed in range(1, n1 + n2 + 1):
        new = []
        for m in range(n1 + 1):
            k = placed - m                             # second-sample items placed
            if k < 0 or k > n2:
                new.append([0])
                continue
            size = m * k + 1
            row = [0] * size
            if m > 0:                                  # newest item is from sample 1: beats k items of sample 2
                for u, c in enumerate(table[m - 1]):
                    if c and u + k < size:
                        row[u + k] += c
            if k > 0:                                  # newest item is from sample 2: adds nothing to U
                for u, c in enumerate(table[m]):
                    if c and u < size:
                        row[u] += c
            new.append(row)
        table = new
    return tuple(table[n1])


def mann_whitney_u(x: list[float], y: list[float]) -> tuple[float, float]:
    """U statistic of ``x`` and the two-sided p-value that ``x`` and ``y`` come from one distribution."""
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("Mann-Whitney U needs at least one sample on each side")
    ranks, ties = _ranks(list(x) + list(y))
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    has_ties = any(t > 1 for t in ties)
    if not has_ties and n1 * n2 <= 400:
        counts = _u_counts(n1, n2)
        total = sum(counts)
        lo = min(u1, n1 * n2 - u1)
        tail = sum(counts[: int(lo) + 1]) / total
        return u1, min(1.0, 2 * tail)
    mean = n1 * n2 / 2
    n = n1 + n2
    tie_term = sum(t**3 - t for t in ties) / (n * (n - 1))
    var = n1 * n2 / 12 * ((n + 1) - tie_term)
    if var <= 0:                                       # every value equal: nothing differs
        return u1, 1.0
    z = (abs(u1 - mean) - 0.5) / math.sqrt(var)        # continuity correction
    return u1, min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input's order.

    Calling a metric changed when its q < alpha keeps the expected share of false discoveries among
    all metrics called changed at alpha, however many metrics one gate run judges.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    q = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):               # from the largest p down: q_(i) = min_{j>=i} p_(j) m / j
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        q[i] = running
    return q
