"""Lab values and units as clinicians read them, the same on every page: 0.4, not 0.40; ×10³/µL."""

from __future__ import annotations

from decimal import Decimal

from django import template

from labs import units
from labs.rules import fmt_decimal

register = template.Library()


@register.filter
def lab_value(value: Decimal | None) -> str:
    return "" if value is None else fmt_decimal(Decimal(value))


@register.filter
def unit_display(unit: str | None) -> str:
    """A UCUM code as clinicians write it (10*3/uL -> ×10³/µL); see labs.units."""
    return "" if not unit else units.unit_display(unit)
