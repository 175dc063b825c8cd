"""Seed the supportive care of the reference regimens (mFOLFOX6, dose-dense AC-T, CHOP v1).

Reference data shipped with the release, as labs/0004_reference_data ships the regimens: only
the reference versions (name and version 1) are touched, rows are matched on natural keys so a
re-run updates them, and a version edited since (its phase or drug not found) is left alone.
The anticancer drugs, doses and pre-cycle rules, which courses read their doses from, are not
changed. Written directly (historical models have no frozen-version guard), as 0012 does.

Content: only what the cited source states. Where the agent or dose is chosen locally (which
5-HT3 or NK1 receptor antagonist), the class and timing are given without a dose.
"""

from django.db import migrations

TAXOL_LABEL = (
    "Paclitaxel (Taxol) prescribing information, Dosage and Administration: premedication "
    "before every dose to prevent severe hypersensitivity reactions"
)
ASCO_ANTIEMETICS = "ASCO antiemetics guideline (Hesketh PJ et al., J Clin Oncol 2020;38:2782-2797)"
ASCO_HIGH_AC = (
    f"{ASCO_ANTIEMETICS}: anthracycline combined with cyclophosphamide is high emetic risk "
    "(NK1 RA + 5-HT3 RA + dexamethasone + olanzapine; olanzapine continued days 2-4)"
)
ASCO_MODERATE = (
    f"{ASCO_ANTIEMETICS}: oxaliplatin is moderate emetic risk (5-HT3 RA + dexamethasone day 1)"
)
CALGB_9741_GCSF = (
    "Citron ML et al., J Clin Oncol 2003;21:1431-1439 (CALGB 9741: filgrastim 5 mcg/kg days "
    "3-10 of every dose-dense cycle); ASCO WBC growth factor guideline (Smith TJ et al., "
    "J Clin Oncol 2015;33:3199-3212)"
)

NK1 = "NK1 receptor antagonist (e.g. aprepitant or fosaprepitant)"
HT3 = "5-HT3 receptor antagonist (e.g. ondansetron, granisetron or palonosetron)"
BEFORE_DAY_1 = "before chemotherapy on day 1"

# (regimen name, phase order or None for every phase, category, medication, dose and route,
#  timing, days, drug it is required before (in that phase) or None, source, order)
SEED = [
    # mFOLFOX6: oxaliplatin, moderate emetic risk.
    ("mFOLFOX6", 1, "antiemetic", HT3, "", BEFORE_DAY_1, "1", None, ASCO_MODERATE, 1),
    (
        "mFOLFOX6",
        1,
        "antiemetic",
        "dexamethasone",
        "8 mg PO or IV",
        BEFORE_DAY_1,
        "1",
        None,
        ASCO_MODERATE,
        2,
    ),
    # Dose-dense AC-T, AC phase: high emetic risk.
    ("Dose-dense AC-T", 1, "antiemetic", NK1, "", BEFORE_DAY_1, "1", None, ASCO_HIGH_AC, 1),
    ("Dose-dense AC-T", 1, "antiemetic", HT3, "", BEFORE_DAY_1, "1", None, ASCO_HIGH_AC, 2),
    (
        "Dose-dense AC-T",
        1,
        "antiemetic",
        "dexamethasone",
        "12 mg PO or IV",
        "before chemotherapy on day 1 (with the NK1 receptor antagonist); day 1 only",
        "1",
        None,
        ASCO_HIGH_AC,
        3,
    ),
    (
        "Dose-dense AC-T",
        1,
        "antiemetic",
        "olanzapine",
        "10 mg PO",
        "day 1 with chemotherapy, then days 2-4",
        "1-4",
        None,
        ASCO_HIGH_AC,
        4,
    ),
    # Dose-dense AC-T, every phase: G-CSF makes the 14-day schedule possible.
    (
        "Dose-dense AC-T",
        None,
        "growth_factor",
        "filgrastim (G-CSF)",
        "5 mcg/kg SC",
        "once daily on days 3 to 10 of every cycle, as in CALGB 9741 (or pegfilgrastim, as the "
        "local protocol sets)",
        "3-10",
        None,
        CALGB_9741_GCSF,
        10,
    ),
    # Dose-dense AC-T, T phase: paclitaxel premedication, required before every dose.
    (
        "Dose-dense AC-T",
        2,
        "premedication",
        "dexamethasone",
        "20 mg PO",
        "about 12 h and 6 h before paclitaxel",
        "1",
        "paclitaxel",
        TAXOL_LABEL,
        1,
    ),
    (
        "Dose-dense AC-T",
        2,
        "premedication",
        "diphenhydramine (or an equivalent H1 antihistamine)",
        "50 mg IV",
        "30 to 60 min before paclitaxel",
        "1",
        "paclitaxel",
        TAXOL_LABEL,
        2,
    ),
    (
        "Dose-dense AC-T",
        2,
        "premedication",
        "cimetidine (or another H2 antagonist)",
        "300 mg IV",
        "30 to 60 min before paclitaxel",
        "1",
        "paclitaxel",
        TAXOL_LABEL,
        3,
    ),
    # CHOP: anthracycline + cyclophosphamide, high emetic risk (ASCO).
    ("CHOP", 1, "antiemetic", NK1, "", BEFORE_DAY_1, "1", None, ASCO_HIGH_AC, 1),
    ("CHOP", 1, "antiemetic", HT3, "", BEFORE_DAY_1, "1", None, ASCO_HIGH_AC, 2),
    (
        "CHOP",
        1,
        "antiemetic",
        "dexamethasone",
        "",
        "before chemotherapy on day 1; CHOP's own prednisone is a corticosteroid too: the local "
        "protocol decides whether dexamethasone is added",
        "1",
        None,
        ASCO_HIGH_AC,
        3,
    ),
    (
        "CHOP",
        1,
        "antiemetic",
        "olanzapine",
        "10 mg PO",
        "day 1 with chemotherapy, then days 2-4",
        "1-4",
        None,
        ASCO_HIGH_AC,
        4,
    ),
]


def seed(apps, schema_editor):
    Regimen = apps.get_model("treatments", "Regimen")
    RegimenPhase = apps.get_model("treatments", "RegimenPhase")
    RegimenDrug = apps.get_model("treatments", "RegimenDrug")
    SupportiveMedication = apps.get_model("treatments", "SupportiveMedication")
    for name, phase_order, category, medication, dose, timing, days, before, source, order in SEED:
        regimen = Regimen.objects.filter(name=name, version=1).first()
        if regimen is None:
            continue
        phase = None
        if phase_order is not None:
            phase = RegimenPhase.objects.filter(regimen=regimen, order=phase_order).first()
            if phase is None:
                continue
        required_before = None
        if before is not None:
            required_before = (
                RegimenDrug.objects.filter(phase=phase, drug__name=before).order_by("order").first()
            )
            if required_before is None:
                continue
        SupportiveMedication.objects.update_or_create(
            regimen=regimen,
            phase=phase,
            category=category,
            medication=medication,
            defaults={
                "dose_route": dose,
                "timing": timing,
                "days": days,
                "required_before": required_before,
                "source": source[:300],
                "order": order,
            },
        )


def unseed(apps, schema_editor):
    SupportiveMedication = apps.get_model("treatments", "SupportiveMedication")
    for name, phase_order, category, medication, *_ in SEED:
        phase = {"phase__isnull": True} if phase_order is None else {"phase__order": phase_order}
        SupportiveMedication.objects.filter(
            regimen__name=name,
            regimen__version=1,
            category=category,
            medication=medication,
            **phase,
        ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("treatments", "0014_supportive_medication"),
        ("labs", "0004_reference_data"),  # the reference regimens
    ]

    operations = [migrations.RunPython(seed, unseed)]
