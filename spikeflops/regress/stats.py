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


# ---------------------------------------------------------------- paired rounds: Student's t on log ratios

def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (Lentz's method)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-12:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln_front) * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: int) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def t_quantile(p: float, df: int) -> float:
    """The t with P(T <= t) = p (bisection on the survival function)."""
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        if 1.0 - t_sf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def paired_ratio(pairs: list[tuple[float, float]], confidence: float) -> tuple[float, float, float, float]:
    """(ratio, low, high, p_worse_than_1) of candidate/baseline over paired rounds: the geometric mean of the
    rounds' ratios, its two-sided ``confidence`` interval (Student's t on the log ratios), and the one-sided
    p-value of "the candidate is larger". Log ratios: a round 2x slower and one 2x faster cancel out, and a
    co-tenant's drift that hits both sides of a round alike cancels in that round's ratio."""
    logs = [math.log(c / b) for b, c in pairs]
    n = len(logs)
    if n < 2:
        raise ValueError("a paired interval needs at least 2 rounds")
    mean = sum(logs) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (n - 1))
    se = sd / math.sqrt(n)
    if se == 0.0:
        p = 0.0 if mean > 0 else 1.0 if mean < 0 else 0.5
        return math.exp(mean), math.exp(mean), math.exp(mean), p
    half = t_quantile(0.5 + confidence / 2, n - 1) * se
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half), t_sf(mean / se, n - 1)


def worse_ratio(pairs: list[tuple[float, float]], confidence: float, direction: str) -> tuple[float, float, float, float]:
    """:func:`paired_ratio` turned so that above 1 is worse: for a higher-is-better metric the ratio, its
    interval and the p-value are of baseline/candidate. (ratio, low, high, p_worse)."""
    ratio, low, high, p_larger = paired_ratio(pairs, confidence)
    if direction == "higher":
        return 1 / ratio, 1 / high, 1 / low, 1 - p_larger
    return ratio, low, high, p_larger
