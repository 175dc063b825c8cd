from __future__ import annotations

from decimal import Decimal

import pytest

from labs.models import LabTest
from labs.units import (
    _MOLAR,
    accepted_units,
    in_test_unit,
    refused_unit_message,
    unit_display,
)

CREAT, BILI, HB, ALT = "2160-0", "1975-2", "718-7", "1742-6"


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
    # Powers of ten are the same for every analyte: any LOINC code gets them.
    converted = in_test_unit(Decimal(value), unit, test_unit, loinc="90000-0")
    assert converted == Decimal(expected)
    assert format(converted, "f") == expected


@pytest.mark.parametrize(
    ("unit", "test_unit", "loinc"),
    [
        ("umol/L", "mg/dL", "90000-0"),  # an mg/dL analyte without a molar factor
        ("umol/L", "g/dL", HB),
        ("umol/L", "U/L", ALT),
        ("mmol/L", "mg/dL", CREAT),  # creatinine takes umol/L, not any molar unit
        ("umol/L", "mg/L", CREAT),  # the factor is per mg/dL: another stored unit gets none
        ("mmol/L", "g/dL", HB),
        ("g/dL", "10*3/uL", "751-8"),
        ("", "g/dL", HB),
        ("G/L", "g/dL", HB),
        ("µmol/L", "mg/dL", CREAT),  # UCUM's code is umol/L; µ is how it reads
    ],
)
def test_in_test_unit_refuses_another_quantity(unit, test_unit, loinc):
    assert in_test_unit(Decimal("1"), unit, test_unit, loinc=loinc) is None


# --- Molar units: a factor per analyte, rounded to the precision reported --------------------


@pytest.mark.parametrize(
    ("loinc", "reported", "stored"),
    [
        (CREAT, "88.4", "1.000"),  # one decimal as reported -> three in mg/dL
        (CREAT, "88", "1.00"),  # 0.99548 -> 1.00
        (CREAT, "60", "0.68"),  # 0.67873
        (CREAT, "531", "6.01"),
        (CREAT, "530", "6.00"),  # 5.99548: half a lab step from 6.0, read as 6.00
        (CREAT, "88.123", "0.9969"),  # capped at the 4 decimals LabResult.value stores
        (CREAT, "0", "0.00"),
        (BILI, "34.2", "2.000"),
        (BILI, "34", "1.99"),  # 1.98830
        (BILI, "17", "0.99"),  # not 1.0: 17 and 18 umol/L stay apart
        (BILI, "18", "1.05"),
        (BILI, "342", "20.00"),
    ],
)
def test_molar_unit_converts_by_the_analytes_factor_to_the_precision_reported(
    loinc, reported, stored
):
    converted = in_test_unit(Decimal(reported), "umol/L", "mg/dL", loinc=loinc)
    assert converted == Decimal(stored)
    assert format(converted, "f") == stored


def test_the_same_molar_value_is_a_different_mass_for_each_analyte():
    # The factor is keyed by LOINC: 100 umol/L of creatinine is not 100 umol/L of bilirubin.
    creatinine = in_test_unit(Decimal("100"), "umol/L", "mg/dL", loinc=CREAT)
    bilirubin = in_test_unit(Decimal("100"), "umol/L", "mg/dL", loinc=BILI)
    assert (creatinine, bilirubin) == (Decimal("1.13"), Decimal("5.85"))


@pytest.mark.parametrize("loinc", [CREAT, BILI])
def test_molar_factor_is_the_published_one_for_the_analytes_molar_mass(loinc):
    # 1 mg/dL = 10 mg/L = 10 / M mmol/L = 10000 / M umol/L; the published factor is that to
    # three significant figures (88.40 for 113.12 g/mol, 17.10 for 584.66 g/mol).
    conversion = _MOLAR[loinc]
    from_molar_mass = Decimal(10000) / conversion.molar_mass
    assert abs(from_molar_mass - conversion.per_test_unit) < Decimal("0.05")


@pytest.mark.parametrize("loinc", [CREAT, BILI])
@pytest.mark.parametrize("decimals", [0, 1])
def test_molar_rounding_keeps_every_reported_value_apart_and_recoverable(loinc, decimals):
    # "Never loses precision": each value a lab can write (whole umol/L up to 2000, or tenths
    # up to 200) maps to its own stored value, and the stored value converts back to it.
    step = Decimal(1).scaleb(-decimals)
    factor = _MOLAR[loinc].per_test_unit
    reported = [step * n for n in range(1, 2001)]
    stored = [in_test_unit(r, "umol/L", "mg/dL", loinc=loinc) for r in reported]
    assert len(set(stored)) == len(reported)
    for r, s in zip(reported, stored, strict=True):
        assert s is not None
        assert (s * factor).quantize(step) == r


def test_accepted_units_offer_umol_per_litre_only_where_the_analyte_has_a_factor():
    assert accepted_units("mg/dL", loinc=CREAT) == ["mg/dL", "mg/L", "umol/L"]
    assert accepted_units("mg/dL", loinc=BILI) == ["mg/dL", "mg/L", "umol/L"]
    assert accepted_units("mg/dL", loinc="90000-0") == ["mg/dL", "mg/L"]
    assert accepted_units("g/dL", loinc=HB) == ["g/dL", "g/L"]
    assert accepted_units("U/L", loinc=ALT) == ["U/L", "mU/mL"]


def test_refused_unit_message_lists_every_accepted_unit():
    assert refused_unit_message("Creatinine", "mg/dL", "mmol/L", loinc=CREAT) == (
        "Creatinine is reported in mg/dL (also accepted: mg/L, umol/L), not “mmol/L”."
    )
    assert refused_unit_message("Hemoglobin", "g/dL", "umol/L", loinc=HB) == (
        "Hemoglobin is reported in g/dL (also accepted: g/L), not “umol/L”."
    )


@pytest.mark.django_db
def test_every_catalogue_unit_is_accepted_and_displayed():
    # The seeded catalogue (migrations): each test takes its own unit first, and reads as text
    # without UCUM's 10* or {} notation.
    for test in LabTest.objects.all():
        assert accepted_units(test.unit, loinc=test.loinc)[0] == test.unit
        shown = unit_display(test.unit)
        assert "10*" not in shown, test.unit
        assert "{" not in shown, test.unit


@pytest.mark.django_db
def test_every_molar_factor_matches_its_catalogue_test():
    # A factor for a LOINC code the catalogue stores in another unit would never apply.
    for loinc, conversion in _MOLAR.items():
        test = LabTest.objects.get(loinc=loinc)
        assert test.unit == conversion.test_unit
        assert "umol/L" in accepted_units(test.unit, loinc=test.loinc)
