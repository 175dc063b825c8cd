"""UCUM units: which reported units a test accepts, how a value converts, how a unit reads.

A result is stored in its test's own unit, so that trends, reference ranges, pre-cycle rules
and CTCAE cut-offs compare like with like. Labs report the same analyte in other units
(haemoglobin in g/L in most of Europe, counts in 10*9/L, creatinine and bilirubin in umol/L);
those are converted on entry and the value as reported is kept beside the stored one. Any
other unit is refused, never guessed.

Two kinds of conversion:

- Within one quantity (g/L -> g/dL, 10*9/L -> 10*3/uL): an exact power of ten, the same for
  every analyte, so the converted value is exact, never rounded.
- Molar to mass (umol/L -> mg/dL): the factor comes from the analyte's molar mass, so it is
  keyed by the test's LOINC code (umol/L of creatinine and of bilirubin are different
  amounts of mg/dL) and offered only for the analytes listed in `_MOLAR`. The factor is the
  published conventional one (creatinine 88.4, bilirubin 17.1 umol/L per mg/dL).

Rounding of a molar conversion (dividing by 88.4 does not end): the stored value keeps as
many decimals as the lab wrote, plus the digits of the factor before its decimal point (2 for
88.4 and 17.1), at most `MAX_STORED_DECIMALS` (LabResult.value's). So one step of the lab's
last digit is never finer than one step of the stored value: 88 umol/L (a step of 1 umol/L =
0.011 mg/dL) is stored as 1.00 mg/dL, 88.4 as 1.000, bilirubin 17 umol/L as 0.99 mg/dL (not
1.0, which would blur 17 and 18 umol/L together). The rounding error is at most half a step
of the lab's own last digit, well inside the assay's imprecision. Half-up, as labs round.
Flags, critical limits and every rule read the stored (rounded) value, as they do for a
result entered in the test's unit, so every check of a result gives the same answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

# test's unit -> {reported unit: factor such that value_in_test_unit = reported * factor}
_SAME_QUANTITY: dict[str, dict[str, Decimal]] = {
    "10*3/uL": {"10*9/L": Decimal(1), "/uL": Decimal("0.001"), "/mm3": Decimal("0.001")},
    "10*6/uL": {"10*12/L": Decimal(1)},
    "g/dL": {"g/L": Decimal("0.1")},
    "mg/dL": {"mg/L": Decimal("0.1")},
    "ng/mL": {"ug/L": Decimal(1)},
    "U/mL": {"kU/L": Decimal(1)},
    "U/L": {"mU/mL": Decimal(1)},
}

# LabResult.value is max_digits=12, decimal_places=4.
MAX_STORED_DECIMALS = 4


@dataclass(frozen=True)
class MolarConversion:
    """How much of `molar_unit` one `test_unit` of an analyte is: value_in_test_unit =
    reported / per_test_unit. `molar_mass` (g/mol) is the factor's provenance, checked
    against it by the tests, never used to compute it (the published factor is what labs
    and dosing papers use)."""

    test_unit: str
    molar_unit: str
    per_test_unit: Decimal
    molar_mass: Decimal

    @property
    def extra_decimals(self) -> int:
        """Decimals a step of 1 in the molar unit needs in the test unit: the factor's digits
        before the point (88.4 -> 2: 1 umol/L creatinine is 0.011 mg/dL)."""
        return max(self.per_test_unit.adjusted() + 1, 0)


# LOINC code -> its molar conversion. Only for tests in the catalogue with a mass unit; a
# test whose unit is not `test_unit` gets no molar unit (the factor would not apply).
_MOLAR: dict[str, MolarConversion] = {
    # Creatinine (serum/plasma), 113.12 g/mol: 1 mg/dL = 88.4 umol/L.
    "2160-0": MolarConversion("mg/dL", "umol/L", Decimal("88.4"), Decimal("113.12")),
    # Total bilirubin (serum/plasma), 584.66 g/mol: 1 mg/dL = 17.1 umol/L.
    "1975-2": MolarConversion("mg/dL", "umol/L", Decimal("17.1"), Decimal("584.66")),
}


def _molar_conversion(loinc: str, test_unit: str) -> MolarConversion | None:
    conversion = _MOLAR.get(loinc)
    return conversion if conversion and conversion.test_unit == test_unit else None


def accepted_units(test_unit: str, *, loinc: str) -> list[str]:
    """The units a result of test `loinc` (in `test_unit`) may be reported in; its own first."""
    units = [test_unit, *_SAME_QUANTITY.get(test_unit, {})]
    molar = _molar_conversion(loinc, test_unit)
    return [*units, molar.molar_unit] if molar else units


def conversion_factor(reported_unit: str, test_unit: str) -> Decimal | None:
    """The exact power-of-ten factor from `reported_unit` to `test_unit`, or None if they
    are not the same quantity (a molar unit is not: see `in_test_unit`)."""
    if reported_unit == test_unit:
        return Decimal(1)
    return _SAME_QUANTITY.get(test_unit, {}).get(reported_unit)


def in_test_unit(
    value: Decimal, reported_unit: str, test_unit: str, *, loinc: str
) -> Decimal | None:
    """`value` (in `reported_unit`) expressed in `test_unit` for test `loinc`; None when it
    cannot be (the caller refuses the result with `refused_unit_message`)."""
    factor = conversion_factor(reported_unit, test_unit)
    if factor is not None:
        return _scaled_exactly(value, factor)
    molar = _molar_conversion(loinc, test_unit)
    if molar is None or reported_unit != molar.molar_unit:
        return None
    return _from_molar(value, molar)


def _scaled_exactly(value: Decimal, factor: Decimal) -> Decimal:
    if factor == 1:
        return value
    converted = (value * factor).normalize()  # 105 g/L * 0.1 -> 10.5, not 10.50
    return converted.quantize(Decimal(1)) if converted.as_tuple().exponent > 0 else converted  # type: ignore[operator]


def _from_molar(value: Decimal, molar: MolarConversion) -> Decimal:
    """Rounded as the module docstring says: the lab's decimals plus the factor's digits."""
    decimals = min(decimal_places(value) + molar.extra_decimals, MAX_STORED_DECIMALS)
    return (value / molar.per_test_unit).quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_UP)


def decimal_places(value: Decimal) -> int:
    """The decimals `value` is written with, trailing zeros included (88.40 -> 2): a lab's
    trailing zero says how precise it is."""
    exponent = value.as_tuple().exponent
    return max(-exponent, 0) if isinstance(exponent, int) else 0


def refused_unit_message(test_name: str, test_unit: str, reported_unit: str, *, loinc: str) -> str:
    """The error a unit outside `accepted_units` gets: what the test takes, in every form."""
    accepted = accepted_units(test_unit, loinc=loinc)
    also = f" (also accepted: {', '.join(accepted[1:])})" if len(accepted) > 1 else ""
    return f"{test_name} is reported in {test_unit}{also}, not “{reported_unit[:20]}”."


_POWER_OF_TEN = re.compile(r"10\*(\d+)")
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_ANNOTATION = re.compile(r"\{([^}]*)\}")
# The UCUM micro prefix "u" before a unit symbol: uL, ug, umol, uU.
_MICRO = re.compile(r"(?<![A-Za-z])u(?=(L|g|mol|U|m)\b)")


def unit_display(unit: str) -> str:
    """UCUM as a clinician writes it: 10*3/uL -> ×10³/µL, mL/min/{1.73_m2} -> mL/min/1.73 m²,
    m2 -> m². The UCUM code itself stays what is stored, exported and accepted on entry."""
    shown = _POWER_OF_TEN.sub(lambda m: "×10" + m.group(1).translate(_SUPERSCRIPT), unit)
    shown = _ANNOTATION.sub(lambda m: m.group(1).replace("_", " "), shown)
    shown = _MICRO.sub("µ", shown)
    return re.sub(r"(?<=[A-Za-z])([23])\b", lambda m: m.group(1).translate(_SUPERSCRIPT), shown)
