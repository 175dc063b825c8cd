"""A lab value as the lab reports it, the same on every page: 0.4, not 0.40 or 0.4000."""

from __future__ import annotations

from decimal import Decimal

from django import template

from labs.rules import fmt_decimal

register = template.Library()


@register.filter
def lab_value(value: Decimal | None) -> str:
    return "" if value is None else fmt_decimal(Decimal(value))
