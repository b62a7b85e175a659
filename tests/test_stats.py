"""What this project decides on top of scipy's statistics: which Mann-Whitney method a sample gets, what
nothing-differs returns, and how paired rounds become a ratio (log ratios, a zero spread, the direction).
scipy's own distributions are scipy's to test."""

from __future__ import annotations

import pytest

from spikeflops.regress.stats import benjamini_hochberg, mann_whitney_u, paired_ratio, worse_ratio


def test_small_samples_without_ties_get_the_exact_test_and_equal_ones_say_nothing_differs():
    # complete separation of 3 and 3: the exact two-sided p is 2 / C(6, 3) = 0.1 (the normal approximation
    # would give about 0.08, below a 0.1 alpha)
    assert mann_whitney_u([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]) == (0.0, pytest.approx(0.1))
    assert mann_whitney_u([1.0, 1.0], [1.0, 1.0]) == (2.0, 1.0)
    with pytest.raises(ValueError, match="at least one sample"):
        mann_whitney_u([], [1.0])


def test_the_adjusted_p_values_keep_the_input_order():
    q = benjamini_hochberg([0.2, 0.01, 0.04])
    assert q[1] < q[2] <= q[0] and all(a >= b for a, b in zip(q, [0.2, 0.01, 0.04]))
    assert benjamini_hochberg([]) == []


def test_a_round_twice_as_slow_and_one_twice_as_fast_cancel_out():
    ratio, low, high, _ = paired_ratio([(1.0, 2.0), (1.0, 0.5)], 0.9)
    assert ratio == pytest.approx(1.0) and low < 1.0 < high


def test_paired_rounds_that_all_grew_give_an_interval_above_one_and_a_small_p():
    ratio, low, high, p = paired_ratio([(1.0, 1.1), (1.0, 1.12), (1.0, 1.09)], 0.9)
    assert 1.0 < low < ratio < high and 1.09 < ratio < 1.12 and p < 0.01


def test_rounds_with_no_spread_give_a_point_interval_and_fewer_than_two_are_refused():
    assert paired_ratio([(2.0, 3.0), (4.0, 6.0)], 0.9) == (pytest.approx(1.5),) * 3 + (0.0,)
    assert paired_ratio([(2.0, 2.0), (4.0, 4.0)], 0.9)[3] == 0.5
    with pytest.raises(ValueError, match="at least 2 rounds"):
        paired_ratio([(1.0, 1.1)], 0.9)


def test_for_a_higher_is_better_metric_a_fall_is_what_counts_as_worse():
    pairs = [(10.0, 8.0), (10.0, 8.1), (10.0, 7.9)]          # throughput fell by about a fifth
    lower_ratio, _, _, lower_p = worse_ratio(pairs, 0.9, "lower")
    higher_ratio, low, high, higher_p = worse_ratio(pairs, 0.9, "higher")
    assert lower_ratio < 1.0 and lower_p > 0.9                  # as a time: better
    assert higher_ratio == pytest.approx(1 / lower_ratio) and 1.0 < low < high and higher_p < 0.01
