"""The statistics the gate's verdicts rest on, from scipy (maintained and tested where a hand-written
distribution is neither): the rank test asv uses on raw timing samples, Benjamini-Hochberg over a gate's
timing tests, and Student's t on paired rounds' log ratios. scipy is imported when a verdict needs it, so
the command line starts without it."""

from __future__ import annotations

import math


def mann_whitney_u(x: list[float], y: list[float]) -> tuple[float, float]:
    """U statistic of ``x`` and the two-sided p-value that ``x`` and ``y`` come from one distribution: exact
    for small samples without ties, else the normal approximation with tie and continuity corrections."""
    from scipy.stats import mannwhitneyu

    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("Mann-Whitney U needs at least one sample on each side")
    if len(set(x) | set(y)) == 1:                      # every value equal: nothing differs
        return n1 * n2 / 2, 1.0
    ties = len(set(x) | set(y)) < n1 + n2
    method = "exact" if not ties and n1 * n2 <= 400 else "asymptotic"
    result = mannwhitneyu(x, y, alternative="two-sided", method=method, use_continuity=True)
    return float(result.statistic), min(1.0, float(result.pvalue))


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input's order.

    Calling a metric changed when its q < alpha keeps the expected share of false discoveries among
    all metrics called changed at alpha, however many metrics one gate run judges.
    """
    if not p_values:
        return []
    from scipy.stats import false_discovery_control

    return [float(q) for q in false_discovery_control(p_values, method="bh")]


# ---------------------------------------------------------------- paired rounds: Student's t on log ratios

def t_sf(t: float, df: int) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t as student_t

    return float(student_t.sf(t, df))


def t_quantile(p: float, df: int) -> float:
    """The t with P(T <= t) = p."""
    from scipy.stats import t as student_t

    return float(student_t.ppf(p, df))


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
