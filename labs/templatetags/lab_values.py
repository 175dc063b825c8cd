"""Lab values and units as clinicians read them, the same on every page: at the test's precision
(creatinine 1.00 beside 0.98; no trailing zeros where the test has no decimals); ×10³/µL."""

from __future__ import annotations

from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING

from django import template
from django.utils import timezone
from django.utils.dates import MONTHS_3
from django.utils.safestring import SafeString, mark_safe

from labs import units
from labs.rules import fmt_decimal

if TYPE_CHECKING:
    from labs.selectors import AnalyteTrend, TrendPoint

register = template.Library()


@register.filter
def lab_value(value: Decimal | None, min_places: int = 0) -> str:
    """`min_places`: the test's precision (LabTest.decimal_places), for values in its unit."""
    return "" if value is None else fmt_decimal(Decimal(value), min_places)


@register.filter
def unit_display(unit: str | None) -> str:
    """A UCUM code as clinicians write it (10*3/uL -> ×10³/µL); see labs.units."""
    return "" if not unit else units.unit_display(unit)


@register.simple_tag
def trend_table_rows(analyte: AnalyteTrend, correct_url: str = "", query: str = "") -> SafeString:
    """The rows of an analyte's values table on the lab page, newest first.

    `correct_url` is the entered-in-error URL of result 0 (each row puts its own id there),
    `query` the page's period and analytes, kept by the correction; without a URL, no link.

    Built here with plain string formatting, not in the template or with format_html: a year
    of daily counts is hundreds of rows, and the template engine (then format_html's lazy
    escaping, about 20 µs a call) spent most of the lab page's time on them
    (docs/PERFORMANCE.md). Every text that comes from data goes through html.escape.
    """
    # The template's "j M Y" month: the active language's abbreviation, once per table.
    months = [""] + [str(MONTHS_3[month]).title() for month in range(1, 13)]
    marker = analyte.test.is_tumour_marker
    head, _, tail = correct_url.rpartition("/0/")
    correct = (head + "/", "/" + tail + "?" + query) if head else None
    short_name = analyte.test.short_name
    rows = [
        _trend_row(
            p,
            months=months,
            tumour_marker=marker,
            correct=correct,
            short_name=short_name,
            decimals=analyte.test.decimal_places,
        )
        for p in reversed(analyte.points)
    ]
    return mark_safe("".join(rows))  # noqa: S308 (every data text is escaped in _trend_row)


def _trend_row(
    point: TrendPoint,
    *,
    months: list[str],
    tumour_marker: bool,
    correct: tuple[str, str] | None = None,
    short_name: str = "",
    decimals: int = 0,
) -> str:
    r = point.result
    at = timezone.localtime(r.collected_at)
    value = escape(lab_value(r.value, decimals))
    if r.reported_unit:
        reported = f"{lab_value(r.reported_value)} {unit_display(r.reported_unit)}"
        value += f' <span class="muted small">(reported {escape(reported)})</span>'
    if point.is_nadir:
        value += ' <span class="badge info">nadir</span>'
    if r.flag != "N":
        badge = "bad" if r.is_critical else "warn"
        flag = f'<span class="badge {badge}">{escape(r.flag)}</span>'
    else:
        flag = '<span class="muted">N</span>'
    reference = escape(f"{lab_value(r.ref_low, decimals)}–{lab_value(r.ref_high, decimals)}")
    when = f"{at.day} {escape(months[at.month])} {at.year} {at:%H:%M}"
    cells = [
        f"<td>{when}</td>",
        f'<td class="num">{value}</td>',
        f"<td>{flag}</td>",
        f'<td class="muted">{reference}</td>',
    ]
    if tumour_marker:
        cells.append(f'<td class="num">{_percent(point.pct_from_baseline)}</td>')
        cells.append(f'<td class="num">{_percent(point.pct_from_nadir)}</td>')
    if r.is_released:
        cells.append('<td><span class="muted">released</span></td>')
    else:
        # The release form is outside the tables (a correction form opens inside them).
        cells.append(
            '<td><label class="inline"><input type="checkbox" name="result" form="release-form"'
            f' value="{int(r.pk)}"> release</label></td>'
        )
    if correct is not None:
        url = escape(f"{correct[0]}{int(r.pk)}{correct[1]}")
        label = escape(
            f"Mark {short_name} {lab_value(r.value, decimals)} of {when} entered in error"
        )
        cells.append(
            f'<td><a class="correct" href="{url}" hx-get="{url}" hx-target="closest tr"'
            f' hx-swap="afterend" aria-label="{label}">entered in error…</a></td>'
        )
    row_class = ' class="critical"' if r.is_critical else ""
    return f"<tr{row_class}>{''.join(cells)}</tr>"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value} %"
