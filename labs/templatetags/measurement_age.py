"""How old the chart's height and weight are, for the marks a nurse should not miss.

A reviewer found BSA 1.73 m² shown from a weight and height of 2020-01-01 with no marker: the
dashboard only warned when the next cycle had a weight-based drug. These filters judge each
measurement by itself, with the same dosing rule the dose calculation enforces.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django import template
from django.utils import timezone

from treatments.dosing import weight_too_old

if TYPE_CHECKING:
    from patients.models import Patient

register = template.Library()

# An adult's height changes little, but one over a year old may be wrong (a first-visit
# estimate, vertebral collapse, an entry error) and feeds every BSA-based dose: flag it so the
# nurse re-measures if unsure. A child grows: not judged here (no paediatric rule yet).
ADULT_HEIGHT_MAX_AGE_DAYS = 365
ADULT_FROM_AGE = 18


@register.filter
def weight_too_old_to_dose(measured_on: dt.date | str | None) -> bool:
    """Whether a weight of that date is older than the dosing limit today
    (settings.DOSING_WEIGHT_MAX_AGE_DAYS, the rule of treatments.dosing.weight_age_check)."""
    if not isinstance(measured_on, dt.date):
        return False  # no weight on the chart ("" from the template): said elsewhere
    return weight_too_old(measured_on=measured_on, on_date=timezone.localdate())


@register.filter
def height_needs_remeasure(measured_on: dt.date | str | None, patient: Patient | None) -> bool:
    """Whether an adult's height is over ADULT_HEIGHT_MAX_AGE_DAYS old today."""
    if not isinstance(measured_on, dt.date) or patient is None:
        return False
    today = timezone.localdate()
    if patient.age_on(today) < ADULT_FROM_AGE:
        return False
    return (today - measured_on).days > ADULT_HEIGHT_MAX_AGE_DAYS
