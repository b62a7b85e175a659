"""The gate's statistics against reference values (scipy computes them; these pin what the verdicts use)."""

from __future__ import annotations

import pytest

from spikeflops.regress.stats import benjamini_hochberg, mann_whitney_u, paired_ratio, t_quantile, t_sf


def test_the_t_quantile_at_one_degree_of_freedom_is_not_clamped():
    # tan(pi * (p - 1/2)) is the Cauchy quantile, Student's t at 1 degree of freedom
    import math

    assert t_quantile(0.9999, 1) == pytest.approx(math.tan(math.pi * 0.4999), rel=1e-9)      # 3183.1
    assert t_quantile(0.975, 1) == pytest.approx(12.7062047, rel=1e-7)
    assert t_quantile(0.975, 30) == pytest.approx(2.0422724, rel=1e-7)
    assert t_sf(0.0, 5) == pytest.approx(0.5)


def test_mann_whitney_exact_and_tied():
    # complete separation of 3 and 3: the exact two-sided p is 2 / C(6, 3)
    u, p = mann_whitney_u([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert (u, p) == (0.0, pytest.approx(0.1))
    assert mann_whitney_u([1.0, 1.0], [1.0, 1.0]) == (2.0, 1.0)
    u, p = mann_whitney_u([1.0, 1.0, 2.0, 3.0], [3.0, 4.0, 4.0, 5.0])     # ties: the normal approximation
    assert u == 0.5 and 0.02 < p < 0.06


def test_benjamini_hochberg_and_paired_rounds():
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.2])
    assert benjamini_hochberg([]) == []
    ratio, low, high, p = paired_ratio([(1.0, 1.1), (1.0, 1.12), (1.0, 1.09)], 0.9)
    assert low < ratio < high and 1.09 < ratio < 1.12 and p < 0.01
