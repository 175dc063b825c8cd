"""How lab values are written: labs.rules.fmt_decimal."""

from __future__ import annotations

from decimal import Decimal

import pytest

from labs.rules import fmt_decimal


@pytest.mark.parametrize(
    ("value", "places", "shown"),
    [
        ("1.0000", 0, "1"),
        ("0.4900", 0, "0.49"),
        ("168.0000", 0, "168"),
        ("1.0000", 2, "1.00"),  # creatinine beside 0.98: the test's two decimals
        ("0.9800", 2, "0.98"),
        ("1.2340", 2, "1.234"),  # recorded with more: nothing rounded away
        ("0", 2, "0.00"),
        ("100", 1, "100.0"),
    ],
)
def test_lab_values_show_at_least_the_tests_precision(value, places, shown):
    assert fmt_decimal(Decimal(value), places) == shown
