"""UCUM units: which reported units a test accepts, how a value converts, how a unit reads.

A result is stored in its test's own unit, so that trends, reference ranges, pre-cycle rules
and CTCAE cut-offs compare like with like. Labs report the same quantity in other units
(haemoglobin in g/L in most of Europe, counts in 10*9/L); those are converted on entry and
the value as reported is kept beside the stored one.

Only conversions that are exact powers of ten between units of one LOINC property are
accepted, so a converted value is exact, never rounded. Molar units (creatinine in umol/L,
bilirubin in umol/L) are another LOINC property (another code) and need the analyte's molar
mass: they are refused, not guessed.
"""

from __future__ import annotations

import re
from decimal import Decimal

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


def accepted_units(test_unit: str) -> list[str]:
    """The units a result of a test in `test_unit` may be reported in; its own unit first."""
    return [test_unit, *_SAME_QUANTITY.get(test_unit, {})]


def conversion_factor(reported_unit: str, test_unit: str) -> Decimal | None:
    """The exact factor from `reported_unit` to `test_unit`, or None if they are not the
    same quantity (the caller refuses the result)."""
    if reported_unit == test_unit:
        return Decimal(1)
    return _SAME_QUANTITY.get(test_unit, {}).get(reported_unit)


def in_test_unit(value: Decimal, reported_unit: str, test_unit: str) -> Decimal | None:
    """`value` (in `reported_unit`) expressed in `test_unit`; None when it cannot be."""
    factor = conversion_factor(reported_unit, test_unit)
    if factor is None:
        return None
    if factor == 1:
        return value
    converted = (value * factor).normalize()  # 105 g/L * 0.1 -> 10.5, not 10.50
    return converted.quantize(Decimal(1)) if converted.as_tuple().exponent > 0 else converted  # type: ignore[operator]


def refused_unit_message(test_name: str, test_unit: str, reported_unit: str) -> str:
    """The error a unit outside `accepted_units` gets: what the test takes, in both forms."""
    accepted = accepted_units(test_unit)
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
