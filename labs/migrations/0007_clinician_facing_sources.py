"""Reword the shipped reference data's sources for the people who read them on the chart.

The v1 reference files (frozen) cite the project's own domain notes ("DOMAIN.md 4"), which
mean nothing to a clinician reading a readiness rule or a printed treatment summary. The
figures and their published sources are unchanged; only the pointer to our notes goes.
"""

from django.db import migrations
from django.db.models import Value
from django.db.models.functions import Replace

REWORDINGS = [
    (
        "OncoPlanner illustrative default (DOMAIN.md 4); check against local protocol",
        "OncoPlanner illustrative default; check against your local protocol",
    ),
    (", doses as given in DOMAIN.md section 2", ""),
    (" as given in DOMAIN.md section 2", ""),
    (": DOMAIN.md 4 illustrative adult ranges", ": illustrative adult ranges"),
]
COLUMNS = [
    ("labs", "PreCycleRule", "source"),
    ("labs", "ReferenceRange", "source"),
    ("labs", "LabTest", "range_source"),
    ("treatments", "Regimen", "source"),
]


def reword(apps, schema_editor):
    for app, model_name, column in COLUMNS:
        model = apps.get_model(app, model_name)
        for old, new in REWORDINGS:
            model.objects.filter(**{f"{column}__contains": old}).update(
                **{column: Replace(column, Value(old), Value(new))}
            )


class Migration(migrations.Migration):
    dependencies = [
        ("labs", "0006_attention_indexes"),
        ("treatments", "0004_attention_indexes"),
    ]

    operations = [migrations.RunPython(reword, migrations.RunPython.noop)]
