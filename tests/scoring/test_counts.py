"""Tests of espnet_ext.scoring.counts: sums and sclite's rounding."""

from espnet_ext.scoring.counts import Counts, sclite_percent, sum_counts


def test_sclite_rounding_is_half_up():
    assert sclite_percent(1, 400) == 0.3  # "%.1f" % 0.25 would give 0.2
    assert sclite_percent(29, 400) == 7.2  # 7.249999... in binary
    assert sclite_percent(2, 3) == 66.7
    assert sclite_percent(5, 0) == 0.0


def test_sums_are_field_wise():
    a, b = Counts(1, 4, 2, 1, 1, 0, 1), Counts(1, 2, 2, 0, 0, 3, 1)
    assert sum_counts([a, b]) == a.plus(b) == Counts(2, 6, 4, 1, 1, 3, 2)
    assert sum_counts([]) == Counts() and Counts().percentages().errors == 0.0
    assert a.plus(b).errors == 5 and a.plus(b).percentages().errors == 83.3
