"""The allergy banner of the chart header, for every page that shows a patient strip."""

from __future__ import annotations

from typing import Any

from django import template

from patients import selectors

register = template.Library()


@register.inclusion_tag("patients/_allergy_banner.html")
def allergy_banner(patient: Any) -> dict[str, Any]:
    """`patient` is the page's own, fetched through the access gate by its view."""
    return {"banner": selectors.allergy_banner_for(patient=patient)}
