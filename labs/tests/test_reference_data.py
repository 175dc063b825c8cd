from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError

from labs.models import CtcaeGradeCriterion, LabTest, PreCycleRule, ReferenceRange
from treatments.models import CtcaeTerm, Drug, Regimen, RegimenDrug

pytestmark = pytest.mark.django_db

reference_migration = importlib.import_module("labs.migrations.0004_reference_data")

CATALOGUE = {
    "6690-2": ("WBC", "10*3/uL"),
    "751-8": ("ANC", "10*3/uL"),
    "718-7": ("Hb", "g/dL"),
    "777-3": ("PLT", "10*3/uL"),
    "2160-0": ("Creat", "mg/dL"),
    "98979-8": ("eGFR", "mL/min/{1.73_m2}"),
    "1742-6": ("ALT", "U/L"),
    "1920-8": ("AST", "U/L"),
    "1975-2": ("Bili", "mg/dL"),
    "2039-6": ("CEA", "ng/mL"),
    "10334-1": ("CA-125", "U/mL"),
    "24108-3": ("CA 19-9", "U/mL"),
    "2857-1": ("PSA", "ng/mL"),
}


def _counts() -> dict[str, int]:
    """Counts of the shipped rows only (by natural key), whatever else other apps add."""
    load = reference_migration._load
    loincs = [t["loinc"] for t in load("lab_catalogue_v1.json")["tests"]]
    terms = [t["term"] for t in load("ctcae_v5_terms_v1.json")["terms"]]
    drugs = [d["name"] for d in load("drugs_v1.json")["drugs"]]
    regimens = Regimen.objects.filter(
        name__in=[r["name"] for r in load("regimens_v1.json")["regimens"]], version=1
    )
    return {
        "tests": LabTest.objects.filter(loinc__in=loincs).count(),
        "ranges": ReferenceRange.objects.filter(test__loinc__in=loincs).count(),
        "terms": CtcaeTerm.objects.filter(term__in=terms, version="5.0").count(),
        "criteria": CtcaeGradeCriterion.objects.filter(test__loinc__in=loincs).count(),
        "drugs": Drug.objects.filter(name__in=drugs).count(),
        "regimens": regimens.count(),
        "regimen_drugs": RegimenDrug.objects.filter(phase__regimen__in=regimens).count(),
        "rules": PreCycleRule.objects.filter(regimen__in=regimens).count(),
    }


SHIPPED = {
    "tests": 13,
    "ranges": 2,
    "terms": 25,
    "criteria": 27,
    "drugs": 10,
    "regimens": 3,
    "regimen_drugs": 11,
    "rules": 26,
}


def test_reference_data_counts_after_migrate():
    assert _counts() == SHIPPED


def test_reference_data_lab_catalogue_loinc_and_ucum():
    tests = {t.loinc: (t.short_name, t.unit) for t in LabTest.objects.all()}
    assert tests == CATALOGUE
    panel = set(LabTest.objects.filter(is_panel_default=True).values_list("short_name", flat=True))
    assert panel == {"WBC", "ANC", "Hb", "PLT"}
    markers = set(LabTest.objects.filter(is_tumour_marker=True).values_list("loinc", flat=True))
    assert markers == {"2039-6", "10334-1", "24108-3", "2857-1"}
    assert not LabTest.objects.filter(max_plausible__isnull=True).exists()
    assert not LabTest.objects.filter(range_source="").exists()


def test_reference_data_critical_limits():
    limits = {
        t.short_name: (t.critical_low, t.critical_low_inclusive, t.critical_high)
        for t in LabTest.objects.exclude(critical_low__isnull=True, critical_high__isnull=True)
    }
    assert limits == {
        "Hb": (Decimal("7.0"), True, None),
        "PLT": (Decimal("20"), True, None),
        "ANC": (Decimal("0.5"), False, None),  # ANC < 0.5: strictly below
        "Creat": (None, True, Decimal("6.0")),
        "WBC": (Decimal("1.0"), False, None),  # catalogue v2 (migration 0012): WBC < 1.0
    }
    assert LabTest.objects.get(short_name="Creat").critical_high_inclusive is True


def test_reference_data_hemoglobin_ranges_by_sex():
    ranges = {r.sex: (r.low, r.high) for r in ReferenceRange.objects.filter(test__loinc="718-7")}
    assert ranges == {
        "female": (Decimal("12.0"), Decimal("15.5")),
        "male": (Decimal("13.5"), Decimal("17.5")),
    }


def test_reference_data_ctcae_terms():
    assert CtcaeTerm.objects.filter(is_common=True, version="5.0").count() == 18
    alopecia = CtcaeTerm.objects.get(term="Alopecia", version="5.0")
    assert alopecia.max_grade == 2
    assert set(alopecia.grade_descriptions) == {"1", "2"}
    anemia = CtcaeTerm.objects.get(term="Anemia")
    assert (anemia.max_grade, anemia.lab_loinc) == (5, "718-7")
    assert "clinical" in anemia.grade_descriptions["4"]
    febrile = CtcaeTerm.objects.get(term="Febrile neutropenia")
    assert set(febrile.grade_descriptions) == {"3", "4", "5"}
    lab_terms = dict(CtcaeTerm.objects.exclude(lab_loinc="").values_list("term", "lab_loinc"))
    assert lab_terms == {
        "Neutrophil count decreased": "751-8",
        "Platelet count decreased": "777-3",
        "White blood cell decreased": "6690-2",
        "Anemia": "718-7",
        "Alanine aminotransferase increased": "1742-6",
        "Aspartate aminotransferase increased": "1920-8",
        "Blood bilirubin increased": "1975-2",
    }
    assert not CtcaeTerm.objects.filter(category="").exists()


def test_reference_data_ctcae_criteria_for_neutrophils():
    rows = [
        (c.grade, c.direction, c.basis, c.threshold)
        for c in CtcaeGradeCriterion.objects.filter(term__term="Neutrophil count decreased")
    ]
    assert rows == [
        (1, "below", "lln", None),
        (2, "below", "absolute", Decimal("1.5")),
        (3, "below", "absolute", Decimal("1.0")),
        (4, "below", "absolute", Decimal("0.5")),
    ]


def test_reference_data_anthracycline_lifetime_limits():
    limits = dict(
        Drug.objects.filter(lifetime_limit_mg_m2__isnull=False).values_list(
            "name", "lifetime_limit_mg_m2"
        )
    )
    assert limits == {"doxorubicin": Decimal("450"), "epirubicin": Decimal("900")}
    assert not Drug.objects.filter(lifetime_limit_mg_m2__isnull=False, limit_source="").exists()


def _doses(regimen: Regimen) -> list[tuple[object, ...]]:
    return [
        (d.phase.order, d.drug.name, d.dose, d.dose_basis, d.route, d.days, d.max_dose_mg)
        for d in RegimenDrug.objects.filter(phase__regimen=regimen).select_related("phase", "drug")
    ]


def test_reference_data_mfolfox6_doses():
    regimen = Regimen.objects.get(name="mFOLFOX6", version=1)
    (phase,) = regimen.phases.all()
    assert (phase.cycle_length_days, phase.planned_cycles) == (14, 12)
    assert _doses(regimen) == [
        (1, "oxaliplatin", Decimal("85.00"), "mg/m2", "IV", "1", None),
        (1, "leucovorin", Decimal("400.00"), "mg/m2", "IV", "1", None),
        (1, "fluorouracil", Decimal("400.00"), "mg/m2", "IV bolus", "1", None),
        (1, "fluorouracil", Decimal("2400.00"), "mg/m2", "IV infusion", "1", None),
    ]
    infusion = RegimenDrug.objects.get(phase=phase, route="IV infusion")
    assert infusion.duration == "over 46 h"
    assert regimen.source


def test_reference_data_dose_dense_ac_t_two_phases():
    regimen = Regimen.objects.get(name="Dose-dense AC-T", version=1)
    phases = [(p.name, p.cycle_length_days, p.planned_cycles) for p in regimen.phases.all()]
    assert phases == [("AC", 14, 4), ("T", 14, 4)]
    assert _doses(regimen) == [
        (1, "doxorubicin", Decimal("60.00"), "mg/m2", "IV", "1", None),
        (1, "cyclophosphamide", Decimal("600.00"), "mg/m2", "IV", "1", None),
        (2, "paclitaxel", Decimal("175.00"), "mg/m2", "IV", "1", None),
    ]


def test_reference_data_chop_vincristine_cap_and_flat_prednisone():
    regimen = Regimen.objects.get(name="CHOP", version=1)
    (phase,) = regimen.phases.all()
    assert (phase.cycle_length_days, phase.planned_cycles) == (21, 6)
    assert _doses(regimen) == [
        (1, "cyclophosphamide", Decimal("750.00"), "mg/m2", "IV", "1", None),
        (1, "doxorubicin", Decimal("50.00"), "mg/m2", "IV", "1", None),
        (1, "vincristine", Decimal("1.40"), "mg/m2", "IV", "1", Decimal("2.00")),
        (1, "prednisone", Decimal("100.00"), "mg", "PO", "1-5", None),
    ]


@pytest.mark.parametrize("name", ["mFOLFOX6", "Dose-dense AC-T", "CHOP"])
def test_reference_data_precycle_count_rules(name):
    regimen = Regimen.objects.get(name=name, version=1)
    rules = [
        (r.test.short_name, r.comparator, r.value, r.max_age_days, r.action, r.action_delay_days)
        for r in PreCycleRule.objects.filter(regimen=regimen, test__is_panel_default=True)
    ]
    assert rules == [
        ("ANC", ">=", Decimal("1.5"), 3, "treat", None),
        ("ANC", ">=", Decimal("1.0"), 3, "delay", 7),
        ("ANC", "<", Decimal("1.0"), 3, "hold", None),
        ("PLT", ">=", Decimal("100"), 3, "treat", None),
        ("PLT", ">=", Decimal("75"), 3, "delay", 7),
        ("PLT", "<", Decimal("75"), 3, "hold", None),
    ]
    for rule in PreCycleRule.objects.filter(regimen=regimen):
        rule.full_clean()  # units match the test, delays carry days
        assert rule.source


def test_reference_data_load_is_idempotent_and_reversible():
    # As when this migration runs: before treatments 0012 marked the library approved (an
    # approved version is frozen, and reloading it would be refused, rightly).
    Regimen.objects.update(approved_at=None)
    reference_migration.load_reference_data(apps, None)
    assert _counts() == SHIPPED
    reference_migration.unload_reference_data(apps, None)
    assert set(_counts().values()) == {0}
    reference_migration.load_reference_data(apps, None)
    assert _counts() == SHIPPED


@pytest.mark.django_db
def test_sources_shown_to_clinicians_do_not_point_at_the_projects_notes():
    texts = [
        *PreCycleRule.objects.values_list("source", flat=True),
        *ReferenceRange.objects.values_list("source", flat=True),
        *LabTest.objects.values_list("range_source", flat=True),
        *Regimen.objects.values_list("source", flat=True),
    ]
    assert texts
    assert not [text for text in texts if "DOMAIN.md" in text]
    assert "OncoPlanner illustrative default; check against your local protocol" in texts


@pytest.mark.parametrize(("field", "value"), [("unit", "g/L"), ("loinc", "59260-0")])
def test_a_tests_unit_and_loinc_are_fixed_once_results_use_it(field, value, patient):
    # Stored haemoglobins are numbers in g/dL: relabelled g/L, 10.5 would read as a tenth.
    from labs.tests.factories import LabResultFactory

    hb = LabTest.objects.get(loinc="718-7")
    hb.ref_low = Decimal("12.5")
    hb.save()  # anything else may change
    LabResultFactory.create(patient=patient, test=hb, value=Decimal("10.5"))
    setattr(hb, field, value)
    with pytest.raises(ValidationError) as refused:
        hb.save()
    assert "misread every one of them" in refused.value.message_dict[field][0]
    with pytest.raises(ValidationError):
        hb.full_clean()
    assert (LabTest.objects.get(pk=hb.pk).unit, LabTest.objects.get(pk=hb.pk).loinc) == (
        "g/dL",
        "718-7",
    )


def test_an_unused_tests_unit_can_still_be_corrected():
    test = LabTest.objects.create(loinc="2951-2", name="Sodium", short_name="Na", unit="mmol/l")
    test.unit = "mmol/L"
    test.save()
    assert LabTest.objects.get(pk=test.pk).unit == "mmol/L"
