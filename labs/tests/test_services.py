from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.tasks import default_task_backend
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from labs.models import CtcaeGradeCriterion, LabResult, LabTest, PreCycleAction
from labs.rules import PreCycleOutcome, most_restrictive
from labs.services import (
    PreCycleQuestion,
    ctcae_grade_suggest,
    ctcae_grade_suggest_for_patient,
    lab_result_record,
    precycle_evaluate,
    precycle_evaluate_keyed,
    precycle_evaluate_many,
    readiness_badge,
)
from labs.tasks import notify_care_team_of_critical_result
from labs.tests.factories import (
    LabResultFactory,
    LabTestFactory,
    PreCycleRuleFactory,
    ReferenceRangeFactory,
    RegimenFactory,
)
from patients.models import Patient
from patients.tests.factories import PatientFactory
from treatments.models import CtcaeTerm, Regimen

pytestmark = pytest.mark.django_db

ANC, HB, PLT, WBC = "751-8", "718-7", "777-3", "6690-2"
CREAT, ALT, AST, BILI = "2160-0", "1742-6", "1920-8", "1975-2"
COLLECTED = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
AT = dt.datetime(2026, 3, 3, 9, 0, tzinfo=dt.UTC)  # the pre-cycle check, 25 h after COLLECTED


def _test(loinc: str) -> LabTest:
    return LabTest.objects.get(loinc=loinc)


def _record(patient: Patient, loinc: str, value: object, **kwargs: object) -> LabResult:
    test = _test(loinc)
    params: dict[str, object] = {
        "patient": patient,
        "test": test,
        "value": value,
        "unit": test.unit,
        "collected_at": COLLECTED,
        "recorded_by": None,
    }
    params.update(kwargs)
    return lab_result_record(**params)  # type: ignore[arg-type]


@pytest.fixture
def female() -> Patient:
    return PatientFactory.create(sex=Patient.Sex.FEMALE, date_of_birth=dt.date(1960, 5, 17))


@pytest.fixture
def male() -> Patient:
    return PatientFactory.create(sex=Patient.Sex.MALE, date_of_birth=dt.date(1958, 1, 9))


@pytest.fixture(autouse=True)
def _clear_tasks():
    default_task_backend.clear()
    yield
    default_task_backend.clear()


# --- lab_result_record: flags at every edge ---------------------------------------------------


@pytest.mark.parametrize(
    ("loinc", "value", "flag"),
    [
        (ANC, "1.8", "N"),  # exactly at ref_low: normal
        (ANC, "1.79", "L"),
        (ANC, "7.8", "N"),  # exactly at ref_high: normal
        (ANC, "7.81", "H"),
        (ANC, "0.5", "L"),  # ANC < 0.5 is critical: 0.5 itself is not
        (ANC, "0.49", "LL"),
        (ANC, "0", "LL"),
        (HB, "7.0", "LL"),  # hemoglobin <= 7 g/dL is critical
        (HB, "7.1", "L"),
        (PLT, "20", "LL"),  # platelets <= 20 is critical
        (PLT, "21", "L"),
        (PLT, "150", "N"),
        (PLT, "149", "L"),
        (CREAT, "6.0", "HH"),  # creatinine >= 6 mg/dL is critical
        (CREAT, "5.99", "H"),
        (CREAT, "1.3", "N"),
        (CREAT, "0.59", "L"),
        (ALT, "56", "N"),
        (ALT, "57", "H"),
        ("98979-8", "60", "N"),  # eGFR: no upper limit
        ("98979-8", "59", "L"),
        ("98979-8", "140", "N"),
    ],
)
def test_lab_result_record_flags_at_range_edges(female, loinc, value, flag):
    result = _record(female, loinc, Decimal(value))
    result.refresh_from_db()
    assert result.flag == flag
    assert result.value == Decimal(value)


def test_lab_result_record_stores_the_range_that_applied(female):
    result = _record(female, ANC, Decimal("1.2"))
    result.refresh_from_db()
    assert (result.ref_low, result.ref_high) == (Decimal("1.8"), Decimal("7.8"))
    assert result.critical_low == Decimal("0.5")
    assert result.critical_low_inclusive is False
    assert result.critical_high is None
    assert result.unit == "10*3/uL"


@pytest.mark.parametrize(
    ("loinc", "reported", "unit", "stored", "flag"),
    [
        (HB, "68", "g/L", "6.8", "LL"),  # European haemoglobin: critical (<= 7 g/dL) either way
        (HB, "125", "g/L", "12.5", "N"),
        (PLT, "18", "10*9/L", "18", "LL"),  # the SI count is the same number
        (PLT, "152000", "/uL", "152", "N"),
        (CREAT, "9", "mg/L", "0.9", "N"),
        # Molar units, by the analyte's factor (labs.units), rounded to the precision reported.
        (CREAT, "88.4", "umol/L", "1.00", "N"),
        (CREAT, "150", "umol/L", "1.70", "H"),  # 1.6968 against 0.6-1.3
        (CREAT, "531", "umol/L", "6.01", "HH"),  # creatinine >= 6 mg/dL is critical
        (BILI, "34.2", "umol/L", "2.00", "H"),  # against 0.1-1.2 mg/dL
        (BILI, "17", "umol/L", "0.99", "N"),
    ],
)
def test_lab_result_record_converts_an_equivalent_unit_and_keeps_what_the_lab_sent(
    female, loinc, reported, unit, stored, flag
):
    result = _record(female, loinc, Decimal(reported), unit=unit)
    result.refresh_from_db()
    assert (result.value, result.unit) == (Decimal(stored), _test(loinc).unit)
    assert result.flag == flag  # judged on the converted value against the test's range
    assert (result.reported_value, result.reported_unit) == (Decimal(reported), unit)


def test_lab_result_record_in_the_tests_own_unit_has_no_reported_copy(female):
    result = _record(female, HB, Decimal("12.5"))
    result.refresh_from_db()
    assert (result.reported_value, result.reported_unit) == (None, "")
    assert result.value_text == "12.5 g/dL"


def test_lab_result_value_text_says_how_the_lab_reported_it(female):
    result = _record(female, HB, Decimal("105"), unit="g/L")
    assert result.value_text == "10.5 g/dL (reported 105 g/L)"


def test_lab_result_record_checks_plausibility_after_converting(female):
    # 600 x10^9/L is 600 x10^3/uL: above ANC's max_plausible (500), whatever the unit.
    with pytest.raises(ValidationError) as excinfo:
        _record(female, ANC, Decimal("600"), unit="10*9/L")
    assert "value" in excinfo.value.message_dict
    assert not LabResult.objects.exists()


def test_lab_result_value_text_says_how_the_lab_reported_a_molar_value(female):
    result = _record(female, CREAT, Decimal("88"), unit="umol/L")
    result.refresh_from_db()
    assert result.value_text == "1.00 mg/dL (reported 88 µmol/L)"


@pytest.mark.parametrize(
    ("loinc", "unit", "message"),
    [
        (HB, "umol/L", "Hemoglobin is reported in g/dL (also accepted: g/L), not “umol/L”."),
        (
            ALT,
            "umol/L",
            "Alanine aminotransferase (ALT) is reported in U/L (also accepted: mU/mL), "
            "not “umol/L”.",
        ),
        (
            CREAT,
            "mmol/L",
            "Creatinine is reported in mg/dL (also accepted: mg/L, umol/L), not “mmol/L”.",
        ),
    ],
)
def test_lab_result_record_refuses_a_unit_without_a_factor_and_names_what_it_takes(
    female, loinc, unit, message
):
    with pytest.raises(ValidationError) as excinfo:
        _record(female, loinc, Decimal("80"), unit=unit)
    assert excinfo.value.message_dict["unit"] == [message]
    assert not LabResult.objects.exists()


def test_lab_result_record_refuses_more_decimals_than_it_stores_before_converting(female):
    # A rounded conversion would fit the stored value and leave the error to reported_value.
    with pytest.raises(ValidationError) as excinfo:
        _record(female, CREAT, Decimal("88.12345"), unit="umol/L")
    assert excinfo.value.message_dict == {"value": ["At most 4 decimal places."]}
    assert not LabResult.objects.exists()


def test_lab_result_record_molar_critical_alerts_after_commit(
    female, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = _record(female, CREAT, Decimal("600"), unit="umol/L")
    assert (result.value, result.flag) == (Decimal("6.79"), "HH")
    critical = [
        queued
        for queued in default_task_backend.results
        if queued.task.func is notify_care_team_of_critical_result.func
    ]
    assert [queued.kwargs for queued in critical] == [{"lab_result_id": result.pk}]


def test_lab_result_record_later_range_change_does_not_alter_stored_result(female):
    result = _record(female, ANC, Decimal("1.7"))
    LabTest.objects.filter(loinc=ANC).update(ref_low=Decimal("1.5"))
    result.refresh_from_db()
    assert result.ref_low == Decimal("1.8")
    assert result.flag == "L"


def test_lab_result_record_uses_female_hemoglobin_range(female):
    result = _record(female, HB, Decimal("12.0"))
    assert (result.ref_low, result.ref_high) == (Decimal("12.0"), Decimal("15.5"))
    assert result.flag == "N"
    assert _record(female, HB, Decimal("15.6")).flag == "H"


def test_lab_result_record_uses_male_hemoglobin_range(male):
    result = _record(male, HB, Decimal("12.0"))
    assert (result.ref_low, result.ref_high) == (Decimal("13.5"), Decimal("17.5"))
    assert result.flag == "L"
    assert _record(male, HB, Decimal("15.6")).flag == "N"


def test_lab_result_record_other_sex_falls_back_to_test_default():
    patient = PatientFactory.create(sex=Patient.Sex.UNKNOWN)
    result = _record(patient, HB, Decimal("13.0"))
    assert (result.ref_low, result.ref_high) == (Decimal("12.0"), Decimal("17.5"))


def test_lab_result_record_age_band_applies_from_birthday_at_collection():
    test = LabTestFactory.create(ref_low=Decimal("1.8"), ref_high=Decimal("7.8"))
    ReferenceRangeFactory.create(test=test, age_min=65, low=Decimal("1.5"), high=Decimal("7.0"))
    # 65th birthday on 2026-03-02, the collection date (UTC and Europe/Paris alike)
    patient = PatientFactory.create(date_of_birth=dt.date(1961, 3, 2))
    on_birthday = lab_result_record(
        patient=patient,
        test=test,
        value=Decimal("1.6"),
        unit=test.unit,
        collected_at=COLLECTED,
        recorded_by=None,
    )
    day_before = lab_result_record(
        patient=patient,
        test=test,
        value=Decimal("1.6"),
        unit=test.unit,
        collected_at=COLLECTED - dt.timedelta(days=1),
        recorded_by=None,
    )
    assert (on_birthday.ref_low, on_birthday.flag) == (Decimal("1.5"), "N")
    assert (day_before.ref_low, day_before.flag) == (Decimal("1.8"), "L")


def test_lab_result_record_accepts_float_and_text_values(female):
    assert _record(female, ANC, 2.1).value == Decimal("2.1")
    assert _record(female, ANC, "0.49").flag == "LL"


# --- lab_result_record: bad input writes nothing --------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"value": float("nan")}, "value"),
        ({"value": Decimal("NaN")}, "value"),
        ({"value": "Infinity"}, "value"),
        ({"value": float("-inf")}, "value"),
        ({"value": Decimal("-0.1")}, "value"),
        ({"value": "1,5"}, "value"),
        ({"value": Decimal("500.01")}, "value"),  # above ANC max_plausible 500
        ({"unit": "10*6/uL"}, "unit"),  # another quantity, not a form of 10*3/uL
        ({"unit": "g/dL"}, "unit"),
        ({"collected_at": "future"}, "collected_at"),
        ({"collected_at": dt.datetime(2026, 3, 2, 8, 0)}, "collected_at"),  # naive
        ({"collected_at": dt.datetime(1900, 1, 1, 8, 0, tzinfo=dt.UTC)}, "collected_at"),
        ({"note": "bad\x00byte"}, "note"),
    ],
)
def test_lab_result_record_rejects_bad_input_and_writes_nothing(female, changes, field):
    if changes.get("collected_at") == "future":
        changes = {"collected_at": timezone.now() + dt.timedelta(hours=1)}
    with pytest.raises(ValidationError) as excinfo:
        _record(female, ANC, changes.pop("value", Decimal("2.0")), **changes)
    assert field in excinfo.value.message_dict
    assert not LabResult.objects.exists()
    assert default_task_backend.results == []


# --- lab_result_record: critical results alert the care team after commit --------------------


def test_lab_result_record_critical_enqueues_notification_only_after_commit(
    female, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = _record(female, ANC, Decimal("0.3"))
        assert default_task_backend.results == []  # nothing before commit
    for callback in callbacks:
        callback()
    critical = [
        queued
        for queued in default_task_backend.results
        if queued.task.func is notify_care_team_of_critical_result.func
    ]
    assert [queued.kwargs for queued in critical] == [{"lab_result_id": result.pk}]


def test_lab_result_record_normal_result_sends_no_critical_alert(
    female, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _record(female, ANC, Decimal("0.5"))  # low, not critical
    assert not [
        queued
        for queued in default_task_backend.results
        if queued.task.func is notify_care_team_of_critical_result.func
    ]


def test_lab_result_record_rolled_back_critical_alerts_nobody(
    female, django_capture_on_commit_callbacks
):
    def record_then_fail() -> None:
        with transaction.atomic():
            _record(female, PLT, Decimal("12"))
            raise RuntimeError("later step failed")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        record_then_fail()
    assert callbacks == []
    assert not LabResult.objects.exists()


def test_notify_care_team_of_critical_result_mails_team_without_phi(patient, treating_clinician):
    # A name that cannot be a clinician's or a word of the mail, so its absence proves something.
    patient.family_name = "Qzxwvb"
    patient.save(update_fields=["family_name"])
    result = _record(patient, HB, Decimal("6.4"))
    sent = notify_care_team_of_critical_result.call(lab_result_id=result.pk)
    assert sent == 1
    (message,) = mail.outbox
    assert message.to == [treating_clinician.email]
    assert patient.family_name not in message.body
    assert patient.mrn not in message.body
    assert "6.4" not in message.body


# --- CTCAE grade suggestion ------------------------------------------------------------------


def _graded(term: str, loinc: str, value: str, *, lln: str | None = None) -> int | None:
    test = _test(loinc)
    result = LabResult(
        test=test,
        value=Decimal(value),
        unit=test.unit,
        ref_low=Decimal(lln) if lln else test.ref_low,
        ref_high=test.ref_high,
    )
    suggestion = ctcae_grade_suggest(term=CtcaeTerm.objects.get(term=term), result=result)
    return None if suggestion is None else suggestion.grade


@pytest.mark.parametrize(
    ("term", "loinc", "value", "grade"),
    [
        # Neutrophil count decreased, LLN 1.8
        ("Neutrophil count decreased", ANC, "1.8", None),
        ("Neutrophil count decreased", ANC, "1.79", 1),
        ("Neutrophil count decreased", ANC, "1.5", 1),
        ("Neutrophil count decreased", ANC, "1.49", 2),
        ("Neutrophil count decreased", ANC, "1.0", 2),
        ("Neutrophil count decreased", ANC, "0.99", 3),
        ("Neutrophil count decreased", ANC, "0.5", 3),
        ("Neutrophil count decreased", ANC, "0.49", 4),
        # Platelet count decreased, LLN 150
        ("Platelet count decreased", PLT, "150", None),
        ("Platelet count decreased", PLT, "149", 1),
        ("Platelet count decreased", PLT, "75", 1),
        ("Platelet count decreased", PLT, "74", 2),
        ("Platelet count decreased", PLT, "50", 2),
        ("Platelet count decreased", PLT, "49", 3),
        ("Platelet count decreased", PLT, "25", 3),
        ("Platelet count decreased", PLT, "24", 4),
        # White blood cell decreased, LLN 4.0
        ("White blood cell decreased", WBC, "4.0", None),
        ("White blood cell decreased", WBC, "3.9", 1),
        ("White blood cell decreased", WBC, "3.0", 1),
        ("White blood cell decreased", WBC, "2.9", 2),
        ("White blood cell decreased", WBC, "2.0", 2),
        ("White blood cell decreased", WBC, "1.9", 3),
        ("White blood cell decreased", WBC, "1.0", 3),
        ("White blood cell decreased", WBC, "0.9", 4),
        # Anemia, female LLN 12.0; grade 4 is clinical, never from the value
        ("Anemia", HB, "12.0", None),
        ("Anemia", HB, "11.9", 1),
        ("Anemia", HB, "10.0", 1),
        ("Anemia", HB, "9.9", 2),
        ("Anemia", HB, "8.0", 2),
        ("Anemia", HB, "7.9", 3),
        ("Anemia", HB, "4.0", 3),
        # ALT increased, ULN 56: 3x = 168, 5x = 280, 20x = 1120
        ("Alanine aminotransferase increased", ALT, "56", None),
        ("Alanine aminotransferase increased", ALT, "57", 1),
        ("Alanine aminotransferase increased", ALT, "168", 1),
        ("Alanine aminotransferase increased", ALT, "168.1", 2),
        ("Alanine aminotransferase increased", ALT, "280", 2),
        ("Alanine aminotransferase increased", ALT, "280.1", 3),
        ("Alanine aminotransferase increased", ALT, "1120", 3),
        ("Alanine aminotransferase increased", ALT, "1121", 4),
        # AST increased, ULN 40: 3x = 120, 5x = 200, 20x = 800
        ("Aspartate aminotransferase increased", AST, "40", None),
        ("Aspartate aminotransferase increased", AST, "41", 1),
        ("Aspartate aminotransferase increased", AST, "120", 1),
        ("Aspartate aminotransferase increased", AST, "121", 2),
        ("Aspartate aminotransferase increased", AST, "200", 2),
        ("Aspartate aminotransferase increased", AST, "201", 3),
        ("Aspartate aminotransferase increased", AST, "800", 3),
        ("Aspartate aminotransferase increased", AST, "801", 4),
        # Blood bilirubin increased, ULN 1.2: 1.5x = 1.8, 3x = 3.6, 10x = 12.0
        ("Blood bilirubin increased", BILI, "1.2", None),
        ("Blood bilirubin increased", BILI, "1.3", 1),
        ("Blood bilirubin increased", BILI, "1.8", 1),
        ("Blood bilirubin increased", BILI, "1.81", 2),
        ("Blood bilirubin increased", BILI, "3.6", 2),
        ("Blood bilirubin increased", BILI, "3.61", 3),
        ("Blood bilirubin increased", BILI, "12.0", 3),
        ("Blood bilirubin increased", BILI, "12.1", 4),
    ],
)
def test_ctcae_grade_suggest_boundaries(term, loinc, value, grade):
    assert _graded(term, loinc, value) == grade


def test_ctcae_grade_suggest_uses_lln_stored_on_result():
    # Male LLN 13.5: 13.0 is grade 1 for him, normal for a woman (LLN 12.0).
    assert _graded("Anemia", HB, "13.0", lln="13.5") == 1
    assert _graded("Anemia", HB, "13.0", lln="12.0") is None


def test_ctcae_grade_suggest_explains_criterion(female):
    result = _record(female, ANC, Decimal("0.8"))
    suggestion = ctcae_grade_suggest(
        term=CtcaeTerm.objects.get(term="Neutrophil count decreased"), result=result
    )
    assert suggestion is not None
    assert suggestion.grade == 3
    assert suggestion.criterion.basis == CtcaeGradeCriterion.Basis.ABSOLUTE
    assert suggestion.criterion.threshold == Decimal("1.0")
    assert suggestion.explanation == "0.8 ×10³/µL < 1 ×10³/µL: CTCAE grade 3."
    assert suggestion.result == result


def test_ctcae_grade_suggest_ignores_result_of_other_test(female):
    result = _record(female, PLT, Decimal("10"))
    term = CtcaeTerm.objects.get(term="Neutrophil count decreased")
    assert ctcae_grade_suggest(term=term, result=result) is None


def test_ctcae_grade_suggest_for_patient_uses_latest_result(female):
    _record(female, ANC, Decimal("0.4"), collected_at=COLLECTED - dt.timedelta(days=7))
    _record(female, ANC, Decimal("1.6"))
    term = CtcaeTerm.objects.get(term="Neutrophil count decreased")
    suggestion = ctcae_grade_suggest_for_patient(patient=female, term=term)
    assert suggestion is not None
    assert suggestion.grade == 1


def test_ctcae_grade_suggest_for_patient_without_results_is_none(female):
    term = CtcaeTerm.objects.get(term="Platelet count decreased")
    assert ctcae_grade_suggest_for_patient(patient=female, term=term) is None


# --- precycle_evaluate ----------------------------------------------------------------------


def _mfolfox6() -> Regimen:
    return Regimen.objects.get(name="mFOLFOX6", version=1)


def _labs(patient: Patient, **values: str) -> None:
    codes = {"anc": ANC, "plt": PLT, "bili": BILI, "creat": CREAT}
    for key, value in values.items():
        _record(patient, codes[key], Decimal(value))


FULL_OK = {"anc": "2.1", "plt": "180", "bili": "0.8", "creat": "0.9"}


def test_precycle_evaluate_all_treat(female):
    _labs(female, **FULL_OK)
    assessment = precycle_evaluate(patient=female, regimen=_mfolfox6(), at=AT)
    assert assessment.outcome == PreCycleOutcome.TREAT
    assert assessment.ok_to_treat
    assert len(assessment.analytes) == 4
    anc = next(a for a in assessment.analytes if a.test.loinc == ANC)
    assert anc.outcome == PreCycleAction.TREAT
    assert anc.result is not None
    assert (anc.result.value, anc.result.unit, anc.result.flag) == (Decimal("2.1"), "10*3/uL", "N")
    assert anc.result.collected_at == COLLECTED
    assert anc.age == dt.timedelta(hours=25)
    assert anc.rule is not None
    assert (anc.rule.comparator, anc.rule.value) == (">=", Decimal("1.5"))


def test_precycle_evaluate_reads_a_molar_result_in_the_tests_unit(female):
    # A European lab's umol/L meets mFOLFOX6's mg/dL rules converted (creatinine > 2.0: contact).
    _labs(female, anc="2.1", plt="180")
    _record(female, BILI, Decimal("17"), unit="umol/L")  # 0.99 mg/dL
    _record(female, CREAT, Decimal("186"), unit="umol/L")  # 2.10 mg/dL
    assessment = precycle_evaluate(patient=female, regimen=_mfolfox6(), at=AT)
    outcomes = {a.test.loinc: a.outcome for a in assessment.analytes}
    assert (outcomes[BILI], outcomes[CREAT]) == (PreCycleAction.TREAT, PreCycleAction.CONTACT)
    assert assessment.outcome == PreCycleOutcome.CONTACT


def test_precycle_evaluate_one_delay(female):
    _labs(female, **{**FULL_OK, "anc": "1.2"})
    assessment = precycle_evaluate(patient=female, regimen=_mfolfox6(), at=AT)
    assert assessment.outcome == PreCycleOutcome.DELAY
    assert assessment.delay_days == 7
    assert not assessment.ok_to_treat


def test_precycle_evaluate_hold_wins_over_delay(female):
    _labs(female, **{**FULL_OK, "anc": "1.2", "plt": "60"})
    assessment = precycle_evaluate(patient=female, regimen=_mfolfox6(), at=AT)
    assert assessment.outcome == PreCycleOutcome.HOLD
    outcomes = {a.test.loinc: a.outcome for a in assessment.analytes}
    assert outcomes[ANC] == PreCycleAction.DELAY
    assert outcomes[PLT] == PreCycleAction.HOLD


def test_precycle_evaluate_boundaries_of_shipped_rules(female):
    _labs(female, **{**FULL_OK, "anc": "1.5", "plt": "100"})  # exactly at >= limits: treat
    assert precycle_evaluate(patient=female, regimen=_mfolfox6(), at=AT).outcome == "treat"


def test_precycle_evaluate_missing_result_is_not_evaluable(female):
    _labs(female, anc="2.1", bili="0.8", creat="0.9")
    assessment = precycle_evaluate(patient=female, regimen=_mfolfox6(), at=AT)
    assert assessment.outcome == PreCycleOutcome.NOT_EVALUABLE
    plt = next(a for a in assessment.analytes if a.test.loinc == PLT)
    assert (plt.outcome, plt.result, plt.rule) == (PreCycleOutcome.MISSING, None, None)


def test_precycle_evaluate_ignores_results_after_at(female):
    _labs(female, **FULL_OK)
    _record(female, ANC, Decimal("0.3"), collected_at=AT + dt.timedelta(minutes=1))
    assessment = precycle_evaluate(patient=female, regimen=_mfolfox6(), at=AT)
    assert assessment.outcome == PreCycleOutcome.TREAT


def test_precycle_evaluate_uses_latest_result_not_worst(female):
    _labs(female, **FULL_OK)
    _record(female, ANC, Decimal("0.9"), collected_at=COLLECTED - dt.timedelta(hours=12))
    assessment = precycle_evaluate(patient=female, regimen=_mfolfox6(), at=AT)
    assert assessment.outcome == PreCycleOutcome.TREAT


def _single_rule_setup(patient: Patient, *, age: dt.timedelta, value: str = "2.0") -> Regimen:
    rule = PreCycleRuleFactory.create(max_age_days=3)
    LabResultFactory.create(
        patient=patient, test=rule.test, value=Decimal(value), collected_at=AT - age
    )
    return rule.regimen


def test_precycle_evaluate_result_exactly_max_age_old_counts(female):
    regimen = _single_rule_setup(female, age=dt.timedelta(days=3))
    assessment = precycle_evaluate(patient=female, regimen=regimen, at=AT)
    assert assessment.outcome == PreCycleOutcome.TREAT


def test_precycle_evaluate_explains_the_rule_with_the_sign_the_rule_column_shows(female):
    regimen = _single_rule_setup(female, age=dt.timedelta(hours=2))
    (analyte,) = precycle_evaluate(patient=female, regimen=regimen, at=AT).analytes
    rule = analyte.rule
    assert rule is not None
    # "≥", as the readiness table's rule column writes it; not the stored ">=".
    assert rule.comparator == ">="
    assert " ≥ " in analyte.explanation
    assert ">=" not in analyte.explanation


def test_precycle_evaluate_a_result_four_calendar_days_old_is_stale(female):
    # AT is 3 March; a 3-day rule takes results from 28 Feb on, whatever the hour.
    regimen = _single_rule_setup(female, age=AT - dt.datetime(2026, 2, 27, 23, 0, tzinfo=dt.UTC))
    assessment = precycle_evaluate(patient=female, regimen=regimen, at=AT)
    assert assessment.outcome == PreCycleOutcome.NOT_EVALUABLE
    (analyte,) = assessment.analytes
    assert analyte.outcome == PreCycleOutcome.STALE
    assert "is 4 days old; the rules need one from the last 3 days" in analyte.explanation
    assert analyte.rule is None


def test_precycle_evaluate_gives_the_same_answer_all_day_on_the_cycle_day(female):
    # A pharmacist's find: bloods drawn three days before the cycle day passed at 08:00 and
    # were "too old" at 11:00, the age being counted in hours up to the minute of asking.
    regimen = _single_rule_setup(female, age=dt.timedelta(days=3, hours=-1))  # 28 Feb 10:00
    answers = {
        hour: precycle_evaluate(
            patient=female,
            regimen=regimen,
            at=dt.datetime(2026, 3, 3, hour, 0, tzinfo=dt.UTC),
        ).outcome
        for hour in (8, 11, 17)
    }
    assert answers == {8: "treat", 11: "treat", 17: "treat"}


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def test_precycle_evaluate_judges_a_cycle_to_come_on_its_day(female):
    # ANC 2.0 drawn 25 h before AT: fresh now, but 3 days old at most on the cycle day.
    regimen = _single_rule_setup(female, age=dt.timedelta(hours=25))
    on_day_two = precycle_evaluate(
        patient=female, regimen=regimen, at=AT, cycle_day=dt.date(2026, 3, 4)
    )
    assert on_day_two.outcome == PreCycleOutcome.TREAT
    assert (on_day_two.ahead, on_day_two.at) == (True, _day_start(dt.date(2026, 3, 4)))

    in_ten_days = precycle_evaluate(
        patient=female, regimen=regimen, at=AT, cycle_day=dt.date(2026, 3, 13)
    )
    assert in_ten_days.outcome == PreCycleOutcome.NOT_EVALUABLE
    assert (in_ten_days.analytes[0].outcome, in_ten_days.labs_due) == (PreCycleOutcome.STALE, True)
    assert not in_ten_days.needs_attention  # the bloods are simply not drawn yet
    badge = readiness_badge(in_ten_days)
    assert badge is not None
    assert (badge.label, badge.css) == ("Labs due", "info")
    assert "before the cycle day (Fri 13 Mar)" in badge.words


def test_precycle_evaluate_a_low_count_in_hand_is_not_hidden_behind_labs_due(female):
    # Platelets 60 drawn this morning (hold) while creatinine is not drawn yet, for a cycle
    # in two days: the hold needs eyes now, it is not "labs due".
    _record(female, PLT, Decimal("60"), collected_at=AT - dt.timedelta(hours=2))
    _record(female, ANC, Decimal("2.1"), collected_at=AT - dt.timedelta(hours=2))
    _record(female, BILI, Decimal("0.8"), collected_at=AT - dt.timedelta(hours=2))
    assessment = precycle_evaluate(
        patient=female, regimen=_mfolfox6(), at=AT, cycle_day=dt.date(2026, 3, 5)
    )
    assert assessment.outcome == PreCycleOutcome.NOT_EVALUABLE  # creatinine missing
    assert (assessment.ahead, assessment.labs_due, assessment.needs_attention) == (
        True,
        False,
        True,
    )
    badge = readiness_badge(assessment)
    assert badge is not None
    assert (badge.label, badge.css) == ("Not evaluable", "bad")


def test_precycle_evaluate_judges_an_overdue_cycle_now(female):
    regimen = _single_rule_setup(female, age=dt.timedelta(days=4))
    overdue = precycle_evaluate(
        patient=female, regimen=regimen, at=AT, cycle_day=dt.date(2026, 3, 1)
    )
    assert (overdue.at, overdue.ahead, overdue.labs_due) == (AT, False, False)
    assert overdue.outcome == PreCycleOutcome.NOT_EVALUABLE
    assert overdue.needs_attention
    badge = readiness_badge(overdue)
    assert badge is not None
    assert badge.label == "Not evaluable"


def test_precycle_evaluate_a_low_count_for_a_cycle_to_come_still_needs_attention(female):
    regimen = _single_rule_setup(female, age=dt.timedelta(hours=2), value="1.2")  # only >= 1.5
    soon = precycle_evaluate(patient=female, regimen=regimen, at=AT, cycle_day=dt.date(2026, 3, 4))
    assert soon.outcome == PreCycleOutcome.CONTACT
    assert (soon.labs_due, soon.needs_attention) == (False, True)


def test_precycle_evaluate_no_matching_rule_is_contact(female):
    regimen = _single_rule_setup(female, age=dt.timedelta(hours=2), value="1.2")  # only >= 1.5
    assessment = precycle_evaluate(patient=female, regimen=regimen, at=AT)
    assert assessment.outcome == PreCycleOutcome.CONTACT
    assert "matches no rule" in assessment.analytes[0].explanation


def test_precycle_evaluate_first_matching_rule_by_priority_decides(female):
    regimen = RegimenFactory.create()
    test = LabTestFactory.create()
    PreCycleRuleFactory.create(
        regimen=regimen, test=test, comparator=">=", value=Decimal("1.0"), priority=2,
        action=PreCycleAction.DELAY, action_delay_days=7,
    )  # fmt: skip
    PreCycleRuleFactory.create(
        regimen=regimen, test=test, comparator=">=", value=Decimal("1.5"), priority=1,
        action=PreCycleAction.TREAT_REDUCED, action_percent=80,
    )  # fmt: skip
    LabResultFactory.create(patient=female, test=test, value=Decimal("2.0"), collected_at=COLLECTED)
    assessment = precycle_evaluate(patient=female, regimen=regimen, at=AT)
    assert assessment.outcome == PreCycleOutcome.TREAT_REDUCED
    assert assessment.dose_percent == 80
    assert assessment.ok_to_treat


def test_precycle_evaluate_regimen_without_rules_is_contact(female):
    assessment = precycle_evaluate(patient=female, regimen=RegimenFactory.create(), at=AT)
    assert assessment.outcome == PreCycleOutcome.CONTACT
    assert assessment.analytes == []


@pytest.mark.parametrize(
    ("outcomes", "overall"),
    [
        (["treat", "treat_reduced"], "treat_reduced"),
        (["treat_reduced", "delay"], "delay"),
        (["delay", "contact"], "contact"),
        (["contact", "hold"], "hold"),
        (["hold", "missing"], "not_evaluable"),
        (["treat", "stale"], "not_evaluable"),
    ],
)
def test_most_restrictive_order(outcomes, overall):
    assert most_restrictive(outcomes) == overall


def test_precycle_evaluate_query_count_is_flat(female):
    regimen = _mfolfox6()

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            precycle_evaluate(patient=female, regimen=regimen, at=AT)
        return len(ctx.captured_queries)

    empty = count()
    _labs(female, **FULL_OK)
    for day in range(1, 21):
        for loinc, value in ((ANC, "2.0"), (PLT, "200")):
            LabResultFactory.create(
                patient=female,
                test=_test(loinc),
                value=Decimal(value),
                collected_at=COLLECTED - dt.timedelta(days=day),
            )
    assert count() == empty == 2


def test_precycle_evaluate_many_is_two_queries_for_a_clinic_list():
    regimen = _mfolfox6()
    patients = [PatientFactory.create() for _ in range(6)]
    for p in patients[:5]:
        _labs(p, **FULL_OK)
    with CaptureQueriesContext(connection) as ctx:
        assessments = precycle_evaluate_many(patients=patients, regimen=regimen, at=AT)
    assert len(ctx.captured_queries) == 2
    assert [assessments[p.pk].outcome for p in patients] == ["treat"] * 5 + ["not_evaluable"]


def test_precycle_evaluate_keyed_judges_one_patients_two_courses_each_on_its_own(female):
    # Two open courses: mFOLFOX6 (ANC, platelets, bilirubin, creatinine) due at AT, and a
    # second regimen reading only ANC >= 1.0, its cycle four days on. Keyed by course, the
    # patient is asked twice; still two queries.
    _labs(female, **{**FULL_OK, "plt": "60"})
    second = PreCycleRuleFactory.create(
        test=_test(ANC), value=Decimal("1.0"), max_age_days=3, action=PreCycleAction.TREAT
    ).regimen
    later = (AT + dt.timedelta(days=4)).date()
    mfolfox6 = _mfolfox6()
    with CaptureQueriesContext(connection) as ctx:
        assessments = precycle_evaluate_keyed(
            questions={
                "folfox": PreCycleQuestion(female.pk, mfolfox6),
                "second": PreCycleQuestion(female.pk, second, later),
            },
            at=AT,
        )
    assert len(ctx.captured_queries) == 2
    folfox, other = assessments["folfox"], assessments["second"]
    assert (folfox.regimen.pk, folfox.outcome, folfox.at) == (
        mfolfox6.pk,
        PreCycleOutcome.HOLD,  # platelets 60
        AT,
    )
    # Judged for its own day: ANC drawn on 2 Mar is too old by the 7th (labs due, not hold).
    assert (other.regimen.pk, other.outcome, other.ahead) == (
        second.pk,
        PreCycleOutcome.NOT_EVALUABLE,
        True,
    )
    assert other.labs_due
    assert [a.test.loinc for a in other.analytes] == [ANC]


def test_precycle_evaluate_pairs_answers_as_before_keyed_by_patient(female, male):
    from labs.services import precycle_evaluate_pairs

    _labs(female, **FULL_OK)
    regimen = _mfolfox6()
    later = (AT + dt.timedelta(days=10)).date()
    assessments = precycle_evaluate_pairs(
        pairs=[(female.pk, regimen), (male.pk, regimen)], at=AT, cycle_days={female.pk: later}
    )
    assert set(assessments) == {female.pk, male.pk}
    assert (assessments[female.pk].ahead, assessments[female.pk].labs_due) == (True, True)
    assert (assessments[male.pk].at, assessments[male.pk].outcome) == (AT, "not_evaluable")


def test_first_reason_names_the_analyte_behind_the_outcome(female):
    # ANC 1.2 says delay, platelets 60 say hold: the hold is the outcome, and its reason.
    _labs(female, **{**FULL_OK, "anc": "1.2", "plt": "60"})
    assessment = precycle_evaluate(patient=female, regimen=_mfolfox6(), at=AT)
    assert assessment.outcome == PreCycleOutcome.HOLD
    assert assessment.first_reason.startswith("PLT 60 ")
    assert assessment.first_reason.endswith(": Hold.")


def test_first_reason_of_a_missing_result_is_the_missing_one_not_a_rule_in_hand(female):
    # The badge says "Not evaluable": its reason is the missing bilirubin, not ANC's delay.
    _labs(female, anc="1.2", plt="180", creat="0.9")
    assessment = precycle_evaluate(patient=female, regimen=_mfolfox6(), at=AT)
    assert assessment.outcome == PreCycleOutcome.NOT_EVALUABLE
    assert assessment.first_reason.startswith("No Bili result on or before ")


def test_first_reason_is_empty_when_ok_and_says_so_when_nobody_wrote_rules(female):
    _labs(female, **FULL_OK)
    assert precycle_evaluate(patient=female, regimen=_mfolfox6(), at=AT).first_reason == ""
    bare = RegimenFactory.create()
    assessment = precycle_evaluate(patient=female, regimen=bare, at=AT)
    assert assessment.first_reason == f"{bare} has no pre-cycle rules: a physician decides."


@pytest.mark.parametrize("patients_count", [1, 2, 7])
def test_latest_results_are_the_latest_whichever_side_the_query_runs_over(patients_count):
    """_latest_results unions over the smaller side (patients or tests): the same answer."""
    from labs.services import _latest_results

    tests = [_test(loinc) for loinc in (ANC, PLT, HB)]
    patients = [PatientFactory.create() for _ in range(patients_count)]
    expected = {}
    for n, patient in enumerate(patients):
        for m, test in enumerate(tests[: 1 + (n % 3)]):  # some pairs have no result at all
            for day in (3, 1, 2):  # the latest is not the last inserted
                result = LabResultFactory.create(
                    patient=patient,
                    test=test,
                    value=Decimal(10 + n + m + day),
                    collected_at=AT - dt.timedelta(days=day),
                )
                if day == 1:
                    expected[(patient.pk, test.pk)] = result.pk
            LabResultFactory.create(  # after `at`: not yet in hand
                patient=patient, test=test, collected_at=AT + dt.timedelta(hours=1)
            )
    latest = _latest_results(
        patient_ids=[p.pk for p in patients], test_ids=[t.pk for t in tests], at=AT
    )
    assert {pair: result.pk for pair, result in latest.items()} == expected
