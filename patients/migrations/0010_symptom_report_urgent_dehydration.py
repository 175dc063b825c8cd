import re

from django.db import migrations
from django.db.models import Q

# The rule as it stood when this migration was written (models.SymptomReport: the
# "dehydration" red flag, UKONS 24-hour triage for vomiting and diarrhoea). Reports made
# before it with these words kept urgent=False: a patient who wrote "vomited 6 times today,
# can't keep fluids down" was told to wait for the next review, and the report never reached
# the inbox. Marking them urgent puts the unreviewed ones in front of a nurse now. Severe and
# very severe reports, and bloody stools (a "bleeding" red flag), were urgent already.
DEHYDRATION_WORDS = re.compile(
    r"\b(?:can[’']?t|cannot|can\s+not|could\s*n[’']?t|couldnt|unable\s+to|not\s+able\s+to)"
    r"\s+(?:keep|hold)\s+(?:\w+\s+){0,3}down\b"
    r"|\b(?:can[’']?t|cannot|can\s+not|unable\s+to|not\s+able\s+to)\s+drink\b"
    r"|\bno\s+(?:urine|wee|pee)\b"
    r"|(?:\bnot|n[’']?t)\s+(?:passed|passing|pass|done|had)\s+(?:any\s+)?(?:urine|water|a\s+wee|a\s+pee)\b",
    re.I,
)
GI_WORDS = re.compile(
    r"\b(vomit\w*|sick|throw(?:ing|n)?\s+up|threw\s+up|diarrh\w*|loose|watery|stools?|"
    r"bowels?|poo\w*)\b",
    re.I,
)
SIX_OR_MORE_TIMES = re.compile(
    r"\b(?:[6-9]|[1-9][0-9]+|six|seven|eight|nine|ten|eleven|twelve|a\s+dozen)\+?\s*"
    r"(?:x|times)\b",
    re.I,
)


def is_dehydration_red_flag(symptom, description):
    words = f"{symptom}\n{description}"
    return bool(
        DEHYDRATION_WORDS.search(words)
        or (GI_WORDS.search(words) and SIX_OR_MORE_TIMES.search(words))
    )


def mark_dehydration_red_flags(apps, schema_editor):
    SymptomReport = apps.get_model("patients", "SymptomReport")
    candidates = SymptomReport.objects.filter(urgent=False, severity__gte=1).only(
        "pk", "symptom", "description"
    )
    urgent = [
        report.pk
        for report in candidates.iterator(chunk_size=2000)
        if is_dehydration_red_flag(report.symptom, report.description)
    ]
    for start in range(0, len(urgent), 500):
        SymptomReport.objects.filter(Q(pk__in=urgent[start : start + 500])).update(urgent=True)


class Migration(migrations.Migration):
    dependencies = [("patients", "0009_careteam_phone_numbers")]

    # Reverse: a no-op, as 0008. Un-flagging cannot tell these reports from ones that were
    # urgent for another reason, and an urgent flag left on is the safe side.
    operations = [migrations.RunPython(mark_dehydration_red_flags, migrations.RunPython.noop)]
