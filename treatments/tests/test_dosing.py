from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string

from patients.models import BodyMeasurement, Patient, latest_measurement
from patients.tests.factories import BodyMeasurementFactory, PatientFactory
from treatments.dosing import (
    bsa_mosteller,
    carboplatin_calvert,
    crcl_cockcroft_gault,
    dose_compute,
    measurements_read,
    remembered_measurements,
    weight_change_since_last_dose,
)
from treatments.models import Administration, DoseBasis
from treatments.tests.factories import AdministrationFactory, DrugFactory, RegimenDrugFactory

D = Decimal


# --- Mosteller -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "weight", "bsa"),
    [
        (170, 70, D("1.82")),  # sqrt(11900 / 3600) = 1.8181
        (180, 80, D("2.00")),  # sqrt(4) exactly
        (160, 100, D("2.11")),  # 2.108: above 2.0 and not capped (ASCO obesity guideline)
        (D("152.4"), D("45.5"), D("1.39")),
    ],
)
def test_bsa_mosteller_worked_examples(height, weight, bsa):
    assert bsa_mosteller(height, weight) == bsa


def test_bsa_mosteller_returns_decimal_at_two_places():
    result = bsa_mosteller(170, 70)
    assert isinstance(result, Decimal)
    assert result.as_tuple().exponent == -2


@pytest.mark.parametrize("bad", [0, -170, "NaN", "Infinity", "tall"])
def test_bsa_mosteller_rejects_non_positive_or_non_finite_height(bad):
    with pytest.raises(ValueError, match="height_cm"):
        bsa_mosteller(bad, 70)


# --- Cockcroft-Gault and Calvert -------------------------------------------------------------


def test_crcl_cockcroft_gault_female_worked_example():
    # (140 - 65) x 72 x 0.85 / (72 x 1.0) = 63.75 mL/min
    assert crcl_cockcroft_gault(65, 72, D("1.0"), "female") == D("63.75")


def test_crcl_cockcroft_gault_male_has_no_female_factor():
    # (140 - 65) x 72 / (72 x 1.0) = 75
    assert crcl_cockcroft_gault(65, 72, D("1.0"), "male") == D("75.00")


def test_crcl_cockcroft_gault_caps_at_125_by_default():
    # (140 - 30) x 90 / (72 x 0.7) = 196.43 raw
    assert crcl_cockcroft_gault(30, 90, D("0.7"), "male", cap=None) == D("196.43")
    assert crcl_cockcroft_gault(30, 90, D("0.7"), "male") == D("125")


def test_crcl_cockcroft_gault_refuses_unknown_sex():
    with pytest.raises(ValueError, match="sex"):
        crcl_cockcroft_gault(65, 72, D("1.0"), "unknown")


def test_carboplatin_calvert_worked_example():
    assert carboplatin_calvert(5, 100) == D("625.0")  # 5 x (100 + 25)


def test_carboplatin_calvert_with_capped_gfr():
    gfr = crcl_cockcroft_gault(30, 90, D("0.7"), "male")  # 196 raw, capped to 125
    assert carboplatin_calvert(6, gfr) == D("900.0")  # 6 x (125 + 25), not 6 x 221


# --- dose_compute ----------------------------------------------------------------------------

needs_db = pytest.mark.django_db


def _patient(*, sex: str = Patient.Sex.FEMALE, born: dt.date = dt.date(1960, 5, 17)) -> Patient:
    return PatientFactory.create(sex=sex, date_of_birth=born)


@needs_db
def test_dose_compute_mfolfox6_oxaliplatin_at_bsa_1_82():
    patient = _patient()
    BodyMeasurementFactory.create(
        patient=patient, measured_on=dt.date(2026, 1, 5), height_cm=170, weight_kg=70
    )
    oxaliplatin = RegimenDrugFactory.create(
        drug=DrugFactory.create(name="Oxaliplatin"), dose=D("85"), dose_basis=DoseBasis.MG_M2
    )
    calc = dose_compute(
        regimen_drug=oxaliplatin, patient=patient, on_date=dt.date(2026, 1, 6), percent=100
    )
    assert calc.formula == Administration.Formula.MOSTELLER
    assert calc.standard_dose_mg == D("154.7")  # 85 x 1.82
    assert calc.dose_mg == D("154.7")
    assert calc.inputs["bsa_m2"] == "1.82"
    assert calc.inputs["height_cm"] == "170.0"
    assert calc.inputs["weight_kg"] == "70.0"
    assert calc.inputs["height_measured_on"] == "2026-01-05"


@needs_db
def test_dose_compute_at_80_percent_rounds_to_one_decimal():
    patient = _patient()
    BodyMeasurementFactory.create(patient=patient, height_cm=170, weight_kg=70)
    oxaliplatin = RegimenDrugFactory.create(dose=D("85"), dose_basis=DoseBasis.MG_M2)
    calc = dose_compute(
        regimen_drug=oxaliplatin, patient=patient, on_date=dt.date(2026, 1, 6), percent=80
    )
    assert calc.dose_mg == D("123.8")  # 154.7 x 0.8 = 123.76
    assert calc.percent == D("80.0")


@needs_db
def test_dose_compute_takes_height_and_weight_from_their_own_latest_rows():
    patient = _patient()
    BodyMeasurementFactory.create(
        patient=patient, measured_on=dt.date(2025, 9, 1), height_cm=170, weight_kg=80
    )
    BodyMeasurementFactory.create(
        patient=patient, measured_on=dt.date(2026, 1, 5), height_cm=None, weight_kg=70
    )
    # A later weight after the dose date must not be used.
    BodyMeasurementFactory.create(
        patient=patient, measured_on=dt.date(2026, 2, 1), height_cm=None, weight_kg=60
    )
    drug = RegimenDrugFactory.create(dose=D("85"), dose_basis=DoseBasis.MG_M2)
    calc = dose_compute(
        regimen_drug=drug, patient=patient, on_date=dt.date(2026, 1, 6), percent=100
    )
    assert calc.inputs["height_measured_on"] == "2025-09-01"
    assert calc.inputs["weight_measured_on"] == "2026-01-05"
    assert calc.inputs["bsa_m2"] == "1.82"


@needs_db
@pytest.mark.parametrize("basis", [DoseBasis.MG_M2, DoseBasis.MG_KG])
def test_dose_compute_refuses_a_weight_older_than_the_clinic_limit(basis, settings):
    settings.DOSING_WEIGHT_MAX_AGE_DAYS = 14
    patient = _patient()
    BodyMeasurementFactory.create(
        patient=patient, measured_on=dt.date(2025, 12, 22), height_cm=170, weight_kg=70
    )
    drug = RegimenDrugFactory.create(dose=D("85"), dose_basis=basis)
    on_the_limit = dose_compute(
        regimen_drug=drug, patient=patient, on_date=dt.date(2026, 1, 5), percent=100
    )
    assert on_the_limit.inputs["weight_measured_on"] == "2025-12-22"  # 14 days: still current
    with pytest.raises(ValidationError) as excinfo:
        dose_compute(regimen_drug=drug, patient=patient, on_date=dt.date(2026, 1, 6), percent=100)
    message = excinfo.value.message_dict["weight_kg"][0]
    assert "from 22 Dec 2025, 15 days before 6 Jan 2026" in message
    assert "from the last 14 days" in message


@needs_db
def test_dose_compute_flat_dose_needs_no_current_weight(settings):
    settings.DOSING_WEIGHT_MAX_AGE_DAYS = 14
    patient = _patient()
    BodyMeasurementFactory.create(patient=patient, measured_on=dt.date(2024, 1, 1), weight_kg=70)
    drug = RegimenDrugFactory.create(dose=D("2"), dose_basis=DoseBasis.FLAT)
    calc = dose_compute(regimen_drug=drug, patient=patient, on_date=dt.date(2026, 1, 6))
    assert calc.dose_mg == D("2.0")


@needs_db
def test_dose_compute_without_height_names_height():
    patient = _patient()
    BodyMeasurementFactory.create(patient=patient, height_cm=None, weight_kg=70)
    drug = RegimenDrugFactory.create(dose_basis=DoseBasis.MG_M2)
    with pytest.raises(ValidationError) as excinfo:
        dose_compute(regimen_drug=drug, patient=patient, on_date=dt.date(2026, 1, 6), percent=100)
    assert "height_cm" in excinfo.value.message_dict


@needs_db
def test_dose_compute_carboplatin_calvert_from_creatinine():
    # Born 1960-05-17: 65 on 2026-01-06; 72 kg, female, Cr 1.0 -> GFR 63.75; AUC 5 -> 443.8 mg
    patient = _patient()
    BodyMeasurementFactory.create(patient=patient, height_cm=165, weight_kg=72)
    carboplatin = RegimenDrugFactory.create(
        drug=DrugFactory.create(name="Carboplatin"), dose=D("5"), dose_basis=DoseBasis.AUC
    )
    calc = dose_compute(
        regimen_drug=carboplatin,
        patient=patient,
        on_date=dt.date(2026, 1, 6),
        percent=100,
        creatinine_mg_dl=D("1.0"),
    )
    assert calc.formula == Administration.Formula.CALVERT
    assert calc.inputs["age_years"] == 65
    assert calc.inputs["gfr_ml_min"] == "63.75"
    assert calc.dose_mg == D("443.8")  # 5 x (63.75 + 25) = 443.75, half up


@needs_db
def test_dose_compute_carboplatin_without_creatinine_names_it():
    patient = _patient()
    BodyMeasurementFactory.create(patient=patient, weight_kg=72)
    carboplatin = RegimenDrugFactory.create(dose=D("5"), dose_basis=DoseBasis.AUC)
    with pytest.raises(ValidationError) as excinfo:
        dose_compute(
            regimen_drug=carboplatin, patient=patient, on_date=dt.date(2026, 1, 6), percent=100
        )
    assert "creatinine_mg_dl" in excinfo.value.message_dict


def _creatinine(patient: Patient, value: str, collected: dt.datetime) -> None:
    from django.utils import timezone

    from labs.models import LabResult, LabTest

    test = LabTest.objects.get(loinc="2160-0")
    LabResult.objects.create(
        patient=patient,
        test=test,
        value=D(value),
        unit=test.unit,
        collected_at=timezone.make_aware(collected),
    )


@needs_db
def test_dose_compute_carboplatin_reads_the_latest_creatinine_on_record_with_its_date(settings):
    settings.CALVERT_CREATININE_MAX_AGE_DAYS = 7
    patient = _patient()
    BodyMeasurementFactory.create(patient=patient, height_cm=165, weight_kg=72)
    carboplatin = RegimenDrugFactory.create(
        drug=DrugFactory.create(name="Carboplatin"), dose=D("5"), dose_basis=DoseBasis.AUC
    )
    _creatinine(patient, "2.0", dt.datetime(2025, 12, 20, 8, 0))
    _creatinine(patient, "1.0", dt.datetime(2026, 1, 5, 8, 0))
    _creatinine(patient, "3.0", dt.datetime(2026, 1, 7, 8, 0))  # after the dose date: unused
    calc = dose_compute(
        regimen_drug=carboplatin, patient=patient, on_date=dt.date(2026, 1, 6), percent=100
    )
    assert calc.dose_mg == D("443.8")  # the same as typing 1.0 (test above)
    assert (calc.inputs["creatinine_source"], calc.inputs["creatinine_collected_on"]) == (
        "lab",
        "2026-01-05",
    )
    typed = dose_compute(
        regimen_drug=carboplatin,
        patient=patient,
        on_date=dt.date(2026, 1, 6),
        creatinine_mg_dl=D("1.0"),
    )
    assert typed.inputs["creatinine_source"] == "typed"
    html = render_to_string("treatments/_dose_inputs.html", {"inputs": calc.inputs})
    assert '<dd>1.00 mg/dL <span class="muted">(result of 5 Jan 2026)</span>' in html


@needs_db
def test_dose_compute_carboplatin_refuses_a_creatinine_older_than_the_limit(settings):
    settings.CALVERT_CREATININE_MAX_AGE_DAYS = 7
    patient = _patient()
    BodyMeasurementFactory.create(patient=patient, weight_kg=72)
    carboplatin = RegimenDrugFactory.create(dose=D("5"), dose_basis=DoseBasis.AUC)
    _creatinine(patient, "1.0", dt.datetime(2025, 12, 29, 8, 0))
    with pytest.raises(ValidationError) as excinfo:
        dose_compute(
            regimen_drug=carboplatin, patient=patient, on_date=dt.date(2026, 1, 6), percent=100
        )
    message = excinfo.value.message_dict["creatinine_mg_dl"][0]
    assert "The latest creatinine (1.0" in message
    assert "29 Dec 2025) is more than 7 days old for 6 Jan 2026" in message


@needs_db
def test_dose_compute_respects_max_dose_cap_and_records_it():
    # Vincristine 1.4 mg/m2 x 1.82 = 2.548 mg -> capped at 2 mg
    patient = _patient()
    BodyMeasurementFactory.create(patient=patient, height_cm=170, weight_kg=70)
    vincristine = RegimenDrugFactory.create(
        drug=DrugFactory.create(name="Vincristine"),
        dose=D("1.4"),
        dose_basis=DoseBasis.MG_M2,
        max_dose_mg=D("2"),
    )
    calc = dose_compute(
        regimen_drug=vincristine, patient=patient, on_date=dt.date(2026, 1, 6), percent=100
    )
    assert calc.standard_dose_mg == D("2.0")  # the full dose is the capped one
    assert calc.dose_mg == D("2.0")
    assert calc.capped is True
    assert calc.inputs["capped"] is True
    assert calc.inputs["uncapped_dose_mg"] == "2.5"
    assert calc.inputs["calculated_dose_mg"] == "2.5"


@needs_db
@pytest.mark.parametrize(
    ("height", "weight", "percent", "dose"),
    [
        (170, 70, "72.5", D("1.5")),  # BSA 1.82: 2.5 mg capped to 2; 72.5% of 2 = 1.45
        (190, 92, "80", D("1.6")),  # BSA 2.20: 3.1 mg capped to 2; 80% of 2
        (150, 45, "80", D("1.5")),  # BSA 1.37: 1.9 mg, under the cap; 80% of 1.9 = 1.52
    ],
)
def test_dose_compute_reduced_level_is_a_share_of_the_capped_full_dose(
    height, weight, percent, dose
):
    # A pharmacist's find: taken before the cap, 80% of a 3.1 mg calculation was 2.5 mg,
    # capped back to 2 mg, the full dose, recorded as a reduction.
    patient = _patient()
    BodyMeasurementFactory.create(patient=patient, height_cm=height, weight_kg=weight)
    vincristine = RegimenDrugFactory.create(
        drug=DrugFactory.create(name="Vincristine"),
        dose=D("1.4"),
        dose_basis=DoseBasis.MG_M2,
        max_dose_mg=D("2"),
    )
    on = dt.date(2026, 1, 6)
    full = dose_compute(regimen_drug=vincristine, patient=patient, on_date=on)
    calc = dose_compute(regimen_drug=vincristine, patient=patient, on_date=on, percent=percent)
    assert calc.dose_mg == dose
    assert calc.dose_mg < full.dose_mg  # a reduction is always a reduction
    assert calc.standard_dose_mg == full.dose_mg
    html = render_to_string("treatments/_dose_inputs.html", {"inputs": calc.inputs})
    if calc.capped:
        assert f"the {percent}% level applies to the capped 2.0 mg" in html


@needs_db
def test_dose_compute_mg_per_kg_and_flat():
    patient = _patient()
    BodyMeasurementFactory.create(patient=patient, height_cm=None, weight_kg=D("72.5"))
    per_kg = RegimenDrugFactory.create(dose=D("5"), dose_basis=DoseBasis.MG_KG)
    flat = RegimenDrugFactory.create(dose=D("100"), dose_basis=DoseBasis.FLAT)
    on = dt.date(2026, 1, 6)
    by_weight = dose_compute(regimen_drug=per_kg, patient=patient, on_date=on, percent=100)
    assert by_weight.formula == Administration.Formula.WEIGHT
    assert by_weight.dose_mg == D("362.5")
    flat_dose = dose_compute(regimen_drug=flat, patient=patient, on_date=on, percent=100)
    assert flat_dose.formula == Administration.Formula.FLAT
    assert flat_dose.dose_mg == D("100.0")


# --- The measurements a plan's doses share ---------------------------------------------------


def _latest_by_orm(patient: Patient, column: str, day: dt.date) -> BodyMeasurement | None:
    """The rule, as the ORM says it (latest_measurement before the readers were batched): the
    newest row with `column` filled in on or before `day`, the last entered of a day."""
    return (
        BodyMeasurement.objects.filter(
            patient=patient, measured_on__lte=day, **{f"{column}__isnull": False}
        )
        .order_by("-measured_on", "-pk")
        .first()
    )


COLUMNS = ("height_cm", "weight_kg")


@pytest.fixture
def measured_twice(db) -> tuple[Patient, Patient]:
    """Two patients, heights and weights at several dates (one day with two weights)."""
    first, second = PatientFactory.create(), PatientFactory.create()
    for patient, measured_on, height, weight in [
        (first, dt.date(2026, 3, 1), D("170"), D("72")),
        (first, dt.date(2026, 3, 9), None, D("69")),
        (first, dt.date(2026, 3, 9), None, D("68.5")),  # the same day, entered last
        (second, dt.date(2025, 11, 3), D("181"), None),
        (second, dt.date(2026, 3, 2), None, D("90")),
        (second, dt.date(2026, 3, 3), D("180"), D("91")),
    ]:
        BodyMeasurementFactory.create(
            patient=patient, measured_on=measured_on, height_cm=height, weight_kg=weight
        )
    return first, second


DAYS = [dt.date(2026, 2, 28), dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 9)]


def test_remembered_measurements_choose_as_latest_measurement_and_read_each_day_once(
    measured_twice, django_assert_num_queries
):
    patient = measured_twice[0]
    read = remembered_measurements()
    questions = [(column, day) for column in COLUMNS for day in DAYS]
    with django_assert_num_queries(len(questions)):  # each (column, day) once
        first = [read(patient, column, day) for column, day in questions]
    with django_assert_num_queries(0):  # the same questions again: no read
        again = [read(patient, column, day) for column, day in questions]
    assert first == again == [_latest_by_orm(patient, column, day) for column, day in questions]
    assert [m.weight_kg if m else None for m in first[4:]] == [None, D("72"), D("72"), D("68.5")]
    assert latest_measurement(patient, "weight_kg") == _latest_by_orm(
        patient, "weight_kg", DAYS[-1]
    )


def test_remembered_measurements_read_every_patients_wanted_days_in_one_query(
    measured_twice, django_assert_num_queries
):
    questions = [
        (patient, column, day) for patient in measured_twice for column in COLUMNS for day in DAYS
    ]
    with django_assert_num_queries(1):
        read = remembered_measurements((p.pk, column, day) for p, column, day in questions)
    with django_assert_num_queries(0):
        batched = [read(patient, column, day) for patient, column, day in questions]
    assert batched == [_latest_by_orm(*question) for question in questions]
    assert sum(m is None for m in batched) == 3  # before any weight, or any height of the first
    second = measured_twice[1]
    assert read(second, "height_cm", DAYS[1]).height_cm == D("181")  # months old, still his
    with django_assert_num_queries(1):  # a question not asked up front: read when asked
        assert read(second, "weight_kg", dt.date(2026, 3, 4)).weight_kg == D("91")


@pytest.mark.parametrize("basis", list(DoseBasis))
def test_measurements_read_are_those_dose_compute_asks_for(basis):
    # cycle_dose_plans reads these up front for every dose to give: a column missing here
    # would cost a query per dose again.
    patient = PatientFactory.build(pk=1, sex=Patient.Sex.FEMALE)
    regimen_drug = RegimenDrugFactory.build(
        drug=DrugFactory.build(name="any"), dose=D("5"), dose_basis=basis
    )
    asked = []
    row = BodyMeasurement(measured_on=dt.date(2026, 3, 1), height_cm=D("170"), weight_kg=D("70"))

    def reader(patient: Patient, column: str, on_date: dt.date) -> BodyMeasurement:
        asked.append(column)
        return row

    dose_compute(
        regimen_drug=regimen_drug,
        patient=patient,
        on_date=dt.date(2026, 3, 2),
        creatinine_mg_dl=D("1.0"),
        read_measurement=reader,
    )
    assert sorted(set(asked)) == sorted(measurements_read(regimen_drug))


def test_the_weight_behind_a_dose_given_just_after_midnight_is_dated_on_the_clinics_day(db):
    """A dose given at 00:30 BST on 15 June was given on 15 June in the clinic, though UTC's
    date is still 14 June: the weight-change warning names the day the nurse gave it."""
    patient = PatientFactory()
    given_at = dt.datetime(2026, 6, 14, 23, 30, tzinfo=dt.UTC)  # 00:30 BST, 15 June
    AdministrationFactory(
        cycle__course__patient=patient, given_at=given_at, inputs={"weight_kg": "70"}
    )

    change = weight_change_since_last_dose(patient=patient, weight_kg="63")

    assert change is not None
    assert change.dosed_on == dt.date(2026, 6, 15)
    assert change.percent == Decimal("-10.0")
