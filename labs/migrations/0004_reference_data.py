"""Ship the reference data: lab catalogue, CTCAE v5.0 terms and lab cut-offs, drugs, regimens.

The data lives in labs/reference/*_v1.json (with its sources). These files are frozen once
released: a later change goes into new *_v2 files and a new migration, so that this migration
does the same thing on every database. Rows are matched on natural keys (LOINC, term+version,
drug name, regimen name+version) so running over existing rows updates them instead of failing.
"""

import json
from decimal import Decimal
from pathlib import Path

from django.db import migrations

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "reference"


def _load(name):
    with (REFERENCE_DIR / name).open(encoding="utf-8") as handle:
        return json.load(handle)


def _dec(value):
    return None if value is None else Decimal(str(value))


def load_reference_data(apps, schema_editor):
    LabTest = apps.get_model("labs", "LabTest")
    ReferenceRange = apps.get_model("labs", "ReferenceRange")
    PreCycleRule = apps.get_model("labs", "PreCycleRule")
    CtcaeGradeCriterion = apps.get_model("labs", "CtcaeGradeCriterion")
    CtcaeTerm = apps.get_model("treatments", "CtcaeTerm")
    Drug = apps.get_model("treatments", "Drug")
    Regimen = apps.get_model("treatments", "Regimen")
    RegimenPhase = apps.get_model("treatments", "RegimenPhase")
    RegimenDrug = apps.get_model("treatments", "RegimenDrug")

    catalogue = _load("lab_catalogue_v1.json")
    range_source = f"{catalogue['name']} v{catalogue['version']}: DOMAIN.md 4 illustrative adult ranges"
    tests = {}
    for item in catalogue["tests"]:
        test, _ = LabTest.objects.update_or_create(
            loinc=item["loinc"],
            defaults={
                "name": item["name"],
                "short_name": item["short_name"],
                "unit": item["unit"],
                "ref_low": _dec(item["ref_low"]),
                "ref_high": _dec(item["ref_high"]),
                "critical_low": _dec(item["critical_low"]),
                "critical_low_inclusive": item.get("critical_low_inclusive", True),
                "critical_high": _dec(item["critical_high"]),
                "critical_high_inclusive": item.get("critical_high_inclusive", True),
                "decimal_places": item["decimal_places"],
                "max_plausible": _dec(item["max_plausible"]),
                "is_tumour_marker": item["is_tumour_marker"],
                "is_panel_default": item["is_panel_default"],
                "range_source": range_source[:200],
            },
        )
        tests[item["loinc"]] = test
        for rng in item.get("ranges", []):
            ReferenceRange.objects.update_or_create(
                test=test,
                sex=rng["sex"],
                age_min=rng.get("age_min"),
                age_max=rng.get("age_max"),
                defaults={
                    "low": _dec(rng["low"]),
                    "high": _dec(rng["high"]),
                    "source": range_source[:200],
                },
            )

    ctcae = _load("ctcae_v5_terms_v1.json")
    version = ctcae["ctcae_version"]
    general = ctcae["general_grades"]
    terms = {}
    for item in ctcae["terms"]:
        descriptions = {
            str(grade): item["grades"].get(str(grade), general[str(grade)])
            for grade in range(1, item["max_grade"] + 1)
            if str(grade) in item["grades"] or not item.get("only_listed_grades")
        }
        term, _ = CtcaeTerm.objects.update_or_create(
            term=item["term"],
            version=version,
            defaults={
                "category": item["category"],
                "ncit_code": item.get("ncit_code", ""),
                "max_grade": item["max_grade"],
                "grade_descriptions": descriptions,
                "is_common": item["is_common"],
                "lab_loinc": item.get("lab_loinc", ""),
            },
        )
        terms[item["term"]] = term
    for item in ctcae["criteria"]:
        CtcaeGradeCriterion.objects.update_or_create(
            term=terms[item["term"]],
            test=tests[item["loinc"]],
            grade=item["grade"],
            defaults={
                "direction": item["direction"],
                "basis": item["basis"],
                "threshold": _dec(item["threshold"]),
            },
        )

    drugs = {}
    for item in _load("drugs_v1.json")["drugs"]:
        defaults = {
            "drug_class": item["drug_class"],
            "lifetime_limit_mg_m2": _dec(item["lifetime_limit_mg_m2"]),
            "limit_source": item["limit_source"],
        }
        if item.get("limit_warning_fraction"):
            defaults["limit_warning_fraction"] = _dec(item["limit_warning_fraction"])
        drugs[item["name"]], _ = Drug.objects.update_or_create(name=item["name"], defaults=defaults)

    regimens = _load("regimens_v1.json")
    for item in regimens["regimens"]:
        regimen, _ = Regimen.objects.update_or_create(
            name=item["name"],
            version=item["version"],
            defaults={
                "intent": item["intent"],
                "indication": item["indication"],
                "description": item["description"],
                "source": item["source"],
                "is_active": True,
            },
        )
        for phase_item in item["phases"]:
            phase, _ = RegimenPhase.objects.update_or_create(
                regimen=regimen,
                order=phase_item["order"],
                defaults={
                    "name": phase_item["name"],
                    "cycle_length_days": phase_item["cycle_length_days"],
                    "planned_cycles": phase_item["planned_cycles"],
                },
            )
            for drug_item in phase_item["drugs"]:
                RegimenDrug.objects.update_or_create(
                    phase=phase,
                    order=drug_item["order"],
                    drug=drugs[drug_item["drug"]],
                    defaults={
                        "dose": _dec(drug_item["dose"]),
                        "dose_basis": drug_item["dose_basis"],
                        "route": drug_item["route"],
                        "days": drug_item["days"],
                        "duration": drug_item["duration"],
                        "max_dose_mg": _dec(drug_item.get("max_dose_mg")),
                    },
                )
        for rule in item["rules"]:
            test = tests[rule["loinc"]]
            PreCycleRule.objects.update_or_create(
                regimen=regimen,
                test=test,
                priority=rule["priority"],
                defaults={
                    "comparator": rule["comparator"],
                    "value": _dec(rule["value"]),
                    "unit": test.unit,
                    "max_age_days": rule["max_age_days"],
                    "action": rule["action"],
                    "action_percent": rule.get("action_percent"),
                    "action_delay_days": rule.get("action_delay_days"),
                    "source": regimens["rule_source"][:200],
                },
            )


def unload_reference_data(apps, schema_editor):
    """Remove what load_reference_data created (a regimen or drug already in use stays:
    PROTECT raises, which is right: clinical history must not lose its regimen)."""
    LabTest = apps.get_model("labs", "LabTest")
    CtcaeTerm = apps.get_model("treatments", "CtcaeTerm")
    Drug = apps.get_model("treatments", "Drug")
    Regimen = apps.get_model("treatments", "Regimen")
    CtcaeGradeCriterion = apps.get_model("labs", "CtcaeGradeCriterion")
    PreCycleRule = apps.get_model("labs", "PreCycleRule")

    regimens = _load("regimens_v1.json")["regimens"]
    for item in regimens:
        Regimen.objects.filter(name=item["name"], version=item["version"]).delete()  # phases, drugs, rules cascade
    ctcae = _load("ctcae_v5_terms_v1.json")
    terms = CtcaeTerm.objects.filter(
        term__in=[t["term"] for t in ctcae["terms"]], version=ctcae["ctcae_version"]
    )
    CtcaeGradeCriterion.objects.filter(term__in=terms).delete()
    terms.delete()
    Drug.objects.filter(name__in=[d["name"] for d in _load("drugs_v1.json")["drugs"]]).delete()
    loincs = [t["loinc"] for t in _load("lab_catalogue_v1.json")["tests"]]
    PreCycleRule.objects.filter(test__loinc__in=loincs).delete()
    LabTest.objects.filter(loinc__in=loincs).delete()  # reference ranges cascade


class Migration(migrations.Migration):
    dependencies = [
        ("labs", "0003_critical_limit_inclusive"),
        ("treatments", "0002_course_stopped_by_cycle_status_changed_by_unique_open_course"),
    ]

    operations = [
        migrations.RunPython(load_reference_data, unload_reference_data),
    ]
