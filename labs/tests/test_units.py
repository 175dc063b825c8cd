from __future__ import annotations

from decimal import Decimal

import pytest

from labs.models import LabTest
from labs.units import accepted_units, in_test_unit, unit_display


@pytest.mark.parametrize(
    ("ucum", "shown"),
    [
        ("10*3/uL", "×10³/µL"),
        ("10*9/L", "×10⁹/L"),
        ("10*12/L", "×10¹²/L"),
        ("mL/min/{1.73_m2}", "mL/min/1.73 m²"),
        ("m2", "m²"),
        ("/mm3", "/mm³"),
        ("ug/L", "µg/L"),
        ("umol/L", "µmol/L"),
        ("g/dL", "g/dL"),
        ("U/L", "U/L"),
        ("mU/mL", "mU/mL"),
        ("kg", "kg"),
    ],
)
def test_unit_display_writes_ucum_as_clinicians_do(ucum, shown):
    assert unit_display(ucum) == shown


@pytest.mark.parametrize(
    ("value", "unit", "test_unit", "expected"),
    [
        ("105", "g/L", "g/dL", "10.5"),
        ("100", "g/L", "g/dL", "10"),  # not 1E+1
        ("250000", "/uL", "10*3/uL", "250"),
        ("1.25", "10*9/L", "10*3/uL", "1.25"),
        ("4.1", "ug/L", "ng/mL", "4.1"),
        ("30", "kU/L", "U/mL", "30"),
        ("1.2", "10*3/uL", "10*3/uL", "1.2"),
    ],
)
def test_in_test_unit_is_exact(value, unit, test_unit, expected):
    converted = in_test_unit(Decimal(value), unit, test_unit)
    assert converted == Decimal(expected)
    assert format(converted, "f") == expected


@pytest.mark.parametrize(
    ("unit", "test_unit"),
    [("umol/L", "mg/dL"), ("mmol/L", "g/dL"), ("g/dL", "10*3/uL"), ("", "g/dL"), ("G/L", "g/dL")],
)
def test_in_test_unit_refuses_another_quantity(unit, test_unit):
    assert in_test_unit(Decimal("1"), unit, test_unit) is None


@pytest.mark.django_db
def test_every_catalogue_unit_is_accepted_and_displayed():
    # The seeded catalogue (migrations): each test takes its own unit first, and reads as text
    # without UCUM's 10* or {} notation.
    for test in LabTest.objects.all():
        assert accepted_units(test.unit)[0] == test.unit
        shown = unit_display(test.unit)
        assert "10*" not in shown, test.unit
        assert "{" not in shown, test.unit
