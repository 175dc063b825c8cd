import re

from django.db import migrations
from django.db.models import Q

# The rule as it stood when this migration was written (models.SymptomReport.RED_FLAG_WORDS):
# red-flag words in the patient's own words make a report urgent at any severity. Reports
# made before that rule kept urgent=False and never reached the inbox.
RED_FLAG_WORDS = (
    re.compile(r"\b(fever\w*|temperature|temp|shiver\w*|chills?|rigou?rs?)\b", re.I),
    re.compile(r"\b(breath\w*|breathe|breathing|chest pain)\b", re.I),
    re.compile(r"(bleed|\bbled\b|blood(?!\s+tests?\b)|bruis)", re.I),
)


def mark_free_text_red_flags(apps, schema_editor):
    SymptomReport = apps.get_model("patients", "SymptomReport")
    candidates = SymptomReport.objects.filter(urgent=False, severity__gte=1).only(
        "pk", "symptom", "description"
    )
    urgent = [
        report.pk
        for report in candidates.iterator(chunk_size=2000)
        if any(p.search(f"{report.symptom}\n{report.description}") for p in RED_FLAG_WORDS)
    ]
    for start in range(0, len(urgent), 500):
        SymptomReport.objects.filter(Q(pk__in=urgent[start : start + 500])).update(urgent=True)


class Migration(migrations.Migration):
    dependencies = [("patients", "0007_allergies")]

    operations = [migrations.RunPython(mark_free_text_red_flags, migrations.RunPython.noop)]
