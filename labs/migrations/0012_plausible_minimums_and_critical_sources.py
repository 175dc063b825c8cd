"""Catalogue v2 (labs/reference/lab_catalogue_v2.json): lowest plausible values, the source of
every critical limit, a WBC critical low; and a source on every threshold that had none.

Only empty fields are filled, so a value an institution set in admin is kept:
- `min_plausible` for the tests a unit slip can shrink (counts, hemoglobin, creatinine,
  bilirubin), unless a limit or range of the test is already below it (then left blank);
- `critical_source`: the v1 source for limits still as v1 shipped them, the v2 source for the
  new WBC limit, NOT_RECORDED for limits set locally without one;
- the WBC critical low (< 1.0 x10^3/uL, an illustrative institutional default), only where WBC
  has no critical low yet and its reference low is not below it;
- ReferenceRange.source and LabTest.range_source, now required: NOT_RECORDED where blank.
  They are marked, not guessed: the admin sees which thresholds still need their source.

Stored lab results are not touched: each keeps the limits that applied when it was recorded.
"""

import json
from decimal import Decimal
from pathlib import Path

from django.db import migrations

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "reference"
NOT_RECORDED = "Not recorded (set before the source was required)"


def _load(name):
    with (REFERENCE_DIR / name).open(encoding="utf-8") as handle:
        return json.load(handle)


def _dec(value):
    return None if value is None else Decimal(str(value))


def _limits(test):
    return (test.critical_low, test.critical_high)


def _below(value, floor):
    return value is not None and 0 < value < floor


def forwards(apps, schema_editor):
    LabTest = apps.get_model("labs", "LabTest")
    ReferenceRange = apps.get_model("labs", "ReferenceRange")
    v1 = {item["loinc"]: item for item in _load("lab_catalogue_v1.json")["tests"]}
    v2 = _load("lab_catalogue_v2.json")
    changes = {item["loinc"]: item for item in v2["tests"]}

    for test in LabTest.objects.all():
        change = changes.get(test.loinc, {})
        fields = []
        floor = _dec(change.get("min_plausible"))
        if floor is not None and test.min_plausible is None:
            limits = [test.ref_low, test.ref_high, test.critical_low, test.critical_high]
            limits += [
                bound
                for rng in ReferenceRange.objects.filter(test=test)
                for bound in (rng.low, rng.high)
            ]
            if not any(_below(limit, floor) for limit in limits):
                test.min_plausible = floor
                fields.append("min_plausible")
        new_low = _dec(change.get("critical_low"))
        if (
            new_low is not None
            and test.critical_low is None
            and (test.ref_low is None or new_low <= test.ref_low)
            and not (test.min_plausible is not None and new_low < test.min_plausible)
        ):
            test.critical_low = new_low
            test.critical_low_inclusive = change.get("critical_low_inclusive", True)
            test.critical_source = change["critical_source"][:200]
            fields += ["critical_low", "critical_low_inclusive", "critical_source"]
        elif not test.critical_source and any(limit is not None for limit in _limits(test)):
            shipped = v1.get(test.loinc)
            as_shipped = shipped is not None and _limits(test) == (
                _dec(shipped["critical_low"]),
                _dec(shipped["critical_high"]),
            )
            test.critical_source = v2["critical_source_v1"] if as_shipped else NOT_RECORDED
            fields.append("critical_source")
        if not test.range_source and (test.ref_low is not None or test.ref_high is not None):
            test.range_source = NOT_RECORDED
            fields.append("range_source")
        if fields:
            test.save(update_fields=fields)

    ReferenceRange.objects.filter(source="").update(source=NOT_RECORDED)


def backwards(apps, schema_editor):
    LabTest = apps.get_model("labs", "LabTest")
    ReferenceRange = apps.get_model("labs", "ReferenceRange")
    v2 = _load("lab_catalogue_v2.json")
    ours = {NOT_RECORDED, v2["critical_source_v1"]}
    for item in v2["tests"]:
        LabTest.objects.filter(
            loinc=item["loinc"], min_plausible=_dec(item["min_plausible"])
        ).update(min_plausible=None)
        if "critical_low" in item:
            source = item["critical_source"][:200]
            ours.add(source)
            LabTest.objects.filter(
                loinc=item["loinc"], critical_low=_dec(item["critical_low"]), critical_source=source
            ).update(critical_low=None, critical_low_inclusive=True)
    LabTest.objects.filter(critical_source__in=ours).update(critical_source="")
    LabTest.objects.filter(range_source=NOT_RECORDED).update(range_source="")
    ReferenceRange.objects.filter(source=NOT_RECORDED).update(source="")


class Migration(migrations.Migration):
    dependencies = [
        ("labs", "0011_plausible_minimum_critical_source_range_checks"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
