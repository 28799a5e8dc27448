"""Statistics over seeds, against values computed by hand (t quantiles from printed tables)."""
from __future__ import annotations

import math

import pytest

from regsuite import stats


def test_describe_mean_sample_std_and_n():
    described = stats.describe([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert described.mean == 5.0
    assert described.std == pytest.approx(math.sqrt(32 / 7))  # sum of squares 32, n − 1 = 7
    assert described.n == 8


def test_describe_one_value_has_no_std_and_none_has_no_mean():
    assert stats.describe([1.5]) == stats.Described(1.5, None, 1)
    assert stats.describe([]) == stats.Described(None, None, 0)


@pytest.mark.parametrize("df, quantile", [(1, 12.706205), (2, 4.302653), (3, 3.182446), (9, 2.262157)])
def test_t_quantile_matches_the_printed_table(df, quantile):
    assert stats.t_quantile(0.975, df) == pytest.approx(quantile, abs=1e-6)


def test_interval_of_one_two_three():
    # mean 2, sd 1, se 1/√3, t(0.975, 2) = 4.302653 → 2 ± 2.484138
    low, high = stats.t_interval([1.0, 2.0, 3.0])
    assert low == pytest.approx(2 - 2.484138, abs=1e-6)
    assert high == pytest.approx(2 + 2.484138, abs=1e-6)


def test_paired_difference_uses_only_the_seeds_both_rows_have():
    treatment = {0: 1.5, 1: 2.0, 2: 1.3, 3: 1.7, 7: 9.9}
    baseline = {0: 1.0, 1: 2.1, 2: 1.0, 3: 1.5, 5: 0.0}
    # differences on seeds 0–3: 0.5, −0.1, 0.3, 0.2 → mean 0.225; squared deviations sum to
    # 0.1875, sd = √(0.1875 / 3) = 0.25, se = 0.125; t(0.975, 3) = 3.182446 → ± 0.397806
    diff = stats.paired_difference(treatment, baseline)
    assert diff.seeds == (0, 1, 2, 3)
    assert diff.n == 4
    assert diff.mean == pytest.approx(0.225)
    assert diff.sd == pytest.approx(0.25)
    assert diff.low == pytest.approx(0.225 - 0.397806, abs=1e-6)
    assert diff.high == pytest.approx(0.225 + 0.397806, abs=1e-6)
    assert diff.half_width == pytest.approx(0.397806, abs=1e-6)
    assert not diff.excludes_zero


def test_paired_difference_interval_that_excludes_zero():
    diff = stats.paired_difference({0: 3.0, 1: 4.0, 2: 5.0}, {0: 2.0, 1: 2.0, 2: 2.0})
    assert (diff.mean, diff.n) == (2.0, 3)
    assert diff.low == pytest.approx(-0.484138, abs=1e-6)  # [1, 2, 3]: the interval still holds 0
    assert not diff.excludes_zero
    tight = stats.paired_difference({0: 3.0, 1: 3.1, 2: 2.9}, {0: 2.0, 1: 2.0, 2: 2.0})
    assert tight.excludes_zero and tight.low > 0


def test_paired_difference_with_one_pair_has_no_interval():
    diff = stats.paired_difference({0: 2.5, 1: 3.0}, {1: 2.0})
    assert (diff.mean, diff.n, diff.low, diff.high, diff.sd) == (1.0, 1, None, None, None)


def test_paired_difference_without_shared_seeds():
    diff = stats.paired_difference({0: 2.5}, {1: 2.0})
    assert diff.n == 0 and diff.mean is None and diff.low is None
