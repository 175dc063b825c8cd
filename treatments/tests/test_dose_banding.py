"""Dose banding: the pharmacist dispenses a standard dose within the drug's tolerance of the
calculated dose; the verification keeps both doses and the calculation's inputs, and the
bedside label must show the dose dispensed (a reviewer's finding: a banded 5-FU bag could never
be recorded)."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from oncoplanner.accounts.api_tokens import api_token_create
from oncoplanner.accounts.models import User
from patients.tests.factories import BodyMeasurementFactory
from treatments.models import (
    Administration,
    ChemoCycle,
    Course,
    DoseVerification,
    Drug,
    Regimen,
    RegimenDrug,
)
from treatments.services import (
    administration_record,
    administration_stop,
    course_start,
    cycle_doses_verify,
    cycle_give,
)
from treatments.tests.factories import allergy_status_taken, on_the_team

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_20_march_2026")]

START = dt.date(2026, 3, 2)  # cycle 1 of mFOLFOX6 (reference data)
GIVEN_AT = dt.datetime(2026, 3, 2, 10, 30, tzinfo=dt.UTC)
PASSWORD = "correct-horse-battery-staple"  # every factory user's (UserFactory)
# 170 cm, 72 kg: BSA 1.84 m²; oxaliplatin 85 mg/m² -> 156.4 mg. At 5%: 148.6-164.2 mg.
CALCULATED = Decimal("156.4")
BANDED = Decimal("160")


def _banded_at_5_percent(name: str) -> Drug:
    drug = Drug.objects.get(name=name)
    drug.dose_banding_tolerance_percent = Decimal("5")
    drug.full_clean()
    drug.save()
    return drug


@pytest.fixture
def oxaliplatin_banded(db: None) -> Drug:
    return _banded_at_5_percent("oxaliplatin")


@pytest.fixture
def course(patient, treating_clinician) -> Course:
    BodyMeasurementFactory.create(
        patient=patient,
        measured_on=dt.date(2026, 2, 27),
        height_cm=Decimal("170"),
        weight_kg=Decimal("72"),
    )
    return course_start(
        patient=patient,
        regimen=Regimen.objects.get(name="mFOLFOX6", version=1),
        start_date=START,
        intent="adjuvant",
        created_by=treating_clinician,
        confirm_past_start=True,
    )


@pytest.fixture
def cycle(course, treating_clinician) -> ChemoCycle:
    allergy_status_taken(course.patient)
    return cycle_give(
        cycle=course.cycles.get(number=1),
        actual_start=START,
        given_by=treating_clinician,
        override_reason="Counts reviewed at the referring hospital",
    )


@pytest.fixture
def checker(care_team, admin_user) -> User:
    return on_the_team(care_team, admin_user, username="nurse.second")


def _oxaliplatin(course: Course) -> RegimenDrug:
    return RegimenDrug.objects.get(phase__regimen=course.regimen, drug__name="oxaliplatin")


def _key(course: Course) -> str:
    return f"{_oxaliplatin(course).pk}:1"


def _record(cycle: ChemoCycle, by: User, checker: User, label: Decimal | str) -> Administration:
    return administration_record(
        cycle=cycle,
        regimen_drug=_oxaliplatin(cycle.course),
        day_of_cycle=1,
        given_at=GIVEN_AT,
        administered_by=by,
        verified_by=checker,
        label_dose_mg=label,
    )


# --- Services -----------------------------------------------------------------------------


def test_a_banded_dose_within_tolerance_is_verified_and_its_label_recorded_with_both_doses(
    oxaliplatin_banded, cycle, pharmacist, treating_clinician, checker
):
    key = _key(cycle.course)
    verification = cycle_doses_verify(cycle=cycle, by=pharmacist, dispensed_doses={key: "160"})
    assert verification.doses[key] == "156.4"  # the calculated dose, as before
    assert verification.dispensed_doses[key] == "160.0"
    assert verification.dispensed_for(_oxaliplatin(cycle.course).pk, 1) == BANDED

    administration = _record(cycle, treating_clinician, checker, "160")
    assert (administration.dose_mg, administration.dispensed_dose_mg) == (CALCULATED, BANDED)
    assert administration.dose_given_mg == BANDED  # lifetime totals count what went in
    assert administration.banding_note == "banded from 156.4 mg calculated, +2.3%"


def test_the_printed_summary_names_the_banded_dose_given_and_its_dated_inputs(
    client, login, oxaliplatin_banded, cycle, pharmacist, treating_clinician, checker
):
    cycle_doses_verify(cycle=cycle, by=pharmacist, dispensed_doses={_key(cycle.course): "160"})
    _record(cycle, treating_clinician, checker, "160")
    login(client, treating_clinician)
    summary = client.get(
        reverse("treatments:course_summary", args=[cycle.course.patient_id, cycle.course_id])
    ).content.decode()
    # The dose in the bag, as given: the calculated 156.4 mg was banded to 160 mg.
    assert "oxaliplatin 160 mg</strong> (banded from 156.4 mg calculated, +2.3%)" in summary
    assert "170.0 cm (27 Feb 2026), 72.0 kg (27 Feb 2026)" in summary  # not 2026-02-27


def test_a_dose_left_unbanded_is_dispensed_and_recorded_as_calculated(
    oxaliplatin_banded, cycle, pharmacist, treating_clinician, checker
):
    verification = cycle_doses_verify(cycle=cycle, by=pharmacist, dispensed_doses={})
    assert verification.dispensed == verification.doses
    administration = _record(cycle, treating_clinician, checker, CALCULATED)
    assert administration.dispensed_dose_mg is None
    assert administration.banding_note == ""


def test_a_dispensed_dose_beyond_the_tolerance_is_refused_naming_the_field(
    oxaliplatin_banded, cycle, pharmacist
):
    with pytest.raises(ValidationError) as refused:
        cycle_doses_verify(cycle=cycle, by=pharmacist, dispensed_doses={_key(cycle.course): "165"})
    (message,) = refused.value.message_dict["dispensed_doses"]
    assert message.startswith(f"oxaliplatin day 1 ({_key(cycle.course)}): 165 mg is more than 5%")
    assert "a banded dose is 148.6–164.2 mg" in message
    assert not DoseVerification.objects.exists()


@pytest.mark.parametrize("value", ["0", "-160", "abc", "NaN", "160.05"])
def test_a_dispensed_dose_that_is_no_dose_is_refused(oxaliplatin_banded, cycle, pharmacist, value):
    with pytest.raises(ValidationError) as refused:
        cycle_doses_verify(cycle=cycle, by=pharmacist, dispensed_doses={_key(cycle.course): value})
    assert "dispensed_doses" in refused.value.message_dict
    assert not DoseVerification.objects.exists()


def test_banding_a_drug_without_a_tolerance_is_refused(cycle, pharmacist):
    key = _key(cycle.course)
    with pytest.raises(ValidationError) as refused:
        cycle_doses_verify(cycle=cycle, by=pharmacist, dispensed_doses={key: "160"})
    (message,) = refused.value.message_dict["dispensed_doses"]
    assert "oxaliplatin is not dose-banded in the formulary" in message
    # The calculated dose itself is no banding.
    verification = cycle_doses_verify(cycle=cycle, by=pharmacist, dispensed_doses={key: "156.4"})
    assert verification.dispensed_doses[key] == "156.4"


def test_a_key_that_is_not_a_dose_to_verify_is_refused(oxaliplatin_banded, cycle, pharmacist):
    with pytest.raises(ValidationError) as refused:
        cycle_doses_verify(cycle=cycle, by=pharmacist, dispensed_doses={"999999:1": "160"})
    assert "999999:1: no dose of cycle 1" in refused.value.message_dict["dispensed_doses"][0]


def test_a_label_at_the_calculated_dose_is_refused_when_a_banded_dose_was_verified(
    oxaliplatin_banded, cycle, pharmacist, treating_clinician, checker
):
    cycle_doses_verify(cycle=cycle, by=pharmacist, dispensed_doses={_key(cycle.course): "160"})
    with pytest.raises(ValidationError) as refused:
        _record(cycle, treating_clinician, checker, CALCULATED)
    (message,) = refused.value.message_dict["label_dose_mg"]
    assert "verified a banded dose of 160 mg (calculated 156.4 mg)" in message
    assert "the bag must be the banded one" in message
    assert not Administration.objects.exists()


def test_a_new_weight_after_a_banded_verification_still_refuses(
    oxaliplatin_banded, cycle, pharmacist, treating_clinician, checker
):
    cycle_doses_verify(cycle=cycle, by=pharmacist, dispensed_doses={_key(cycle.course): "160"})
    BodyMeasurementFactory.create(
        patient=cycle.course.patient, measured_on=START, weight_kg=Decimal("64")
    )
    with pytest.raises(ValidationError) as refused:
        _record(cycle, treating_clinician, checker, "160")  # the banded bag, now the wrong dose
    assert "the dose is now 147.9 mg, but" in refused.value.message_dict["cycle"][0]
    assert not Administration.objects.exists()


def test_the_verification_keeps_the_inputs_of_each_dose(cycle, pharmacist):
    verification = cycle_doses_verify(cycle=cycle, by=pharmacist)
    inputs = verification.dose_inputs[_key(cycle.course)]
    assert (inputs["height_cm"], inputs["weight_kg"], inputs["bsa_m2"]) == ("170.0", "72.0", "1.84")
    assert (inputs["weight_measured_on"], inputs["percent"]) == ("2026-02-27", "100")
    assert inputs["dose_mg"] == "156.4"
    assert set(verification.dose_inputs) == set(verification.doses)


def test_a_verification_made_before_banding_dispenses_the_calculated_dose(
    cycle, pharmacist, treating_clinician, checker
):
    verification = cycle_doses_verify(cycle=cycle, by=pharmacist)
    DoseVerification.objects.filter(pk=verification.pk).update(dispensed_doses={}, dose_inputs={})
    verification.refresh_from_db()
    assert verification.dispensed_for(_oxaliplatin(cycle.course).pk, 1) == CALCULATED
    assert _record(cycle, treating_clinician, checker, CALCULATED).dispensed_dose_mg is None


def test_a_banded_infusion_stopped_early_counts_against_the_banded_dose(
    oxaliplatin_banded, cycle, pharmacist, treating_clinician, checker
):
    cycle_doses_verify(cycle=cycle, by=pharmacist, dispensed_doses={_key(cycle.course): "160"})
    administration = _record(cycle, treating_clinician, checker, "160")
    # 158 mg is more than the calculated dose but less than the bag held.
    stopped = administration_stop(
        administration=administration,
        amount_given_mg="158",
        reason="Infusion reaction",
        by=treating_clinician,
    )
    assert stopped.dose_given_mg == Decimal("158")
    with pytest.raises(ValidationError):
        administration_stop(
            administration=administration, amount_given_mg="160", reason="x", by=checker
        )


@pytest.mark.parametrize("tolerance", ["0", "10.5", "-5"])
def test_a_dose_banding_tolerance_is_above_0_and_at_most_10_percent(db, tolerance):
    drug = Drug.objects.get(name="fluorouracil")
    drug.dose_banding_tolerance_percent = Decimal(tolerance)
    with pytest.raises(ValidationError) as refused:
        drug.full_clean()
    assert "dose_banding_tolerance_percent" in refused.value.message_dict


# --- REST ---------------------------------------------------------------------------------


def _token_client(user: User) -> Client:
    _, raw = api_token_create(
        user=user, name="test", expires_at=timezone.now() + dt.timedelta(days=7), created_by=user
    )
    return Client(headers={"Authorization": f"Bearer {raw}"})


def _post(client: Client, url: str, body: object) -> object:
    return client.post(url, data=json.dumps(body), content_type="application/json")


def test_rest_verify_takes_a_banded_dose_and_refuses_a_bad_one_naming_the_field(
    oxaliplatin_banded, cycle, pharmacist, treating_clinician, checker
):
    patient_id = cycle.course.patient_id
    url = f"/api/v1/patients/{patient_id}/cycles/{cycle.pk}/verify"
    key = _key(cycle.course)
    api = _token_client(pharmacist)
    for bad in ("170", "-1", "0"):
        refused = _post(api, url, {"dispensed_doses": {key: bad}})
        assert refused.status_code == 400
        assert refused.json()["detail"][0]["loc"][:2] == ["body", "dispensed_doses"]
    not_a_number = _post(api, url, {"dispensed_doses": {key: "lots"}})
    assert not_a_number.status_code == 400
    assert not_a_number.json()["detail"][0]["loc"][:2] == ["body", "dispensed_doses"]
    assert not DoseVerification.objects.exists()

    verified = _post(api, url, {"dispensed_doses": {key: "160"}, "note": "Banded"})
    assert verified.status_code == 201, verified.json()
    body = verified.json()
    assert (body["doses"][key], body["dispensed_doses"][key]) == ("156.4", "160.0")
    assert body["dose_inputs"][key]["bsa_m2"] == "1.84"
    unbanded = next(k for k in body["doses"] if k != key)
    assert body["dispensed_doses"][unbanded] == body["doses"][unbanded]
    listed = api.get(f"/api/v1/patients/{patient_id}/cycles/{cycle.pk}/verifications")
    (row,) = listed.json()["items"]
    assert (row["dispensed_doses"][key], row["dose_inputs"][key]["weight_kg"]) == ("160.0", "72.0")

    recorded = _post(
        _token_client(treating_clinician),
        f"/api/v1/patients/{patient_id}/cycles/{cycle.pk}/administrations",
        {
            "regimen_drug_id": _oxaliplatin(cycle.course).pk,
            "day_of_cycle": 1,
            "given_at": GIVEN_AT.isoformat(),
            "verified_by_id": checker.pk,
            "verifier_password": PASSWORD,
            "label_dose_mg": "160",
        },
    )
    assert recorded.status_code == 201, recorded.json()
    given = recorded.json()
    assert (Decimal(given["dose_mg"]), Decimal(given["dispensed_dose_mg"])) == (CALCULATED, BANDED)


# --- Pages --------------------------------------------------------------------------------


def _page_url(name: str, cycle: ChemoCycle) -> str:
    course = cycle.course
    return reverse(f"treatments:{name}", args=[course.patient_id, course.pk, cycle.number])


def test_the_page_offers_the_band_and_shows_the_banded_line(
    client, login, oxaliplatin_banded, cycle, pharmacist, treating_clinician, checker
):
    login(client, pharmacist)
    page = client.get(_page_url("cycle_detail", cycle)).content.decode()
    assert "Dispensed (banded) dose, mg" in page
    assert "148.6–164.2 mg, ±5%" in page
    field = f"dispensed_{_oxaliplatin(cycle.course).pk}_1"
    assert f'name="{field}"' in page
    seen = re.search(r'name="seen_doses" value="([^"]+)"', page).group(1)

    beyond = client.post(
        _page_url("cycle_verify", cycle),
        {"seen_doses": seen, field: "170"},
        headers={"HX-Request": "true"},
    )
    assert beyond.status_code == 400
    assert "170 mg is more than 5%" in beyond.content.decode()
    # Beside the box to correct, not at the top of the form.
    form = beyond.context["verify_form"]
    assert "170 mg is more than 5%" in form.errors[field][0]
    assert not form.non_field_errors()
    assert not DoseVerification.objects.exists()
    verified = client.post(_page_url("cycle_verify", cycle), {"seen_doses": seen, field: "160"})
    assert verified.status_code == 302
    page = client.get(_page_url("cycle_detail", cycle)).content.decode()
    # The dose column shows the bag's dose large, the calculated one beside it.
    assert '<span class="mg">160 mg</span> <span class="badge ok">verified</span>' in page
    assert "banded from 156.4 mg calculated" in page
    assert "banded, +2.3%" in page  # the verification section: calculated and dispensed
    assert "1.84 m²" in page

    login(client, treating_clinician)
    form = client.get(_page_url("cycle_detail", cycle)).context["administration_form"]
    assert "verified to dispense" in form.fields["label_dose_mg"].help_text
    recorded = client.post(
        _page_url("administration_create", cycle),
        {
            "regimen_drug": _key(cycle.course),
            "given_at": "2026-03-02T10:30",
            "verified_by": checker.pk,
            "checker_password": PASSWORD,
            "label_dose_mg": "160",
            "checklist": "on",
        },
        follow=True,
    )
    content = recorded.content.decode()
    assert "oxaliplatin 160 mg (banded from 156.4 mg calculated, +2.3%) recorded" in content
    assert (
        '160 mg given</strong> <span class="banded">(banded from 156.4 mg calculated, +2.3%)'
        in content
    )


def test_a_drug_the_pharmacy_does_not_band_has_no_dispensed_field(client, login, cycle, pharmacist):
    login(client, pharmacist)
    page = client.get(_page_url("cycle_detail", cycle)).content.decode()
    assert "Dispensed (banded) dose, mg" not in page


def test_a_banded_dose_is_never_above_the_regimens_cap(patient, treating_clinician, pharmacist):
    # Vincristine's 2 mg cap guards against neurotoxicity: banding rounds, it never lifts a cap.
    vincristine = Drug.objects.get(name="vincristine")
    vincristine.dose_banding_tolerance_percent = Decimal("5")
    vincristine.save()
    BodyMeasurementFactory.create(
        patient=patient, measured_on=START, height_cm=Decimal("170"), weight_kg=Decimal("72")
    )
    course = course_start(
        patient=patient,
        regimen=Regimen.objects.get(name="CHOP", version=1),
        start_date=START,
        intent="curative",
        created_by=treating_clinician,
        confirm_past_start=True,
    )
    allergy_status_taken(patient)
    cycle = cycle_give(
        cycle=course.cycles.get(number=1),
        actual_start=START,
        given_by=treating_clinician,
        override_reason="Counts reviewed at the referring hospital",
    )
    key = f"{RegimenDrug.objects.get(phase__regimen=course.regimen, drug=vincristine).pk}:1"
    with pytest.raises(ValidationError) as refused:
        cycle_doses_verify(cycle=cycle, by=pharmacist, dispensed_doses={key: "2.1"})
    assert "above the regimen's cap of 2 mg" in refused.value.message_dict["dispensed_doses"][0]
    verification = cycle_doses_verify(cycle=cycle, by=pharmacist, dispensed_doses={key: "1.9"})
    assert (verification.doses[key], verification.dispensed_doses[key]) == ("2.0", "1.9")


# --- Two doses of one drug on one day; verifying again ---------------------------------------

# mFOLFOX6 gives fluorouracil twice on day 1. At BSA 1.84 m²: the 400 mg/m² bolus is 736 mg
# (5%: 699.2-772.8 mg), the 2400 mg/m² infusion over 46 h 4416 mg (4195.2-4636.8 mg).
BOLUS = "fluorouracil 400 mg/m² IV bolus, day 1"
INFUSION = "fluorouracil 2400 mg/m² IV infusion over 46 h, day 1"


@pytest.fixture
def fluorouracil_banded(db: None) -> Drug:
    return _banded_at_5_percent("fluorouracil")


def _fluorouracil_keys(course: Course) -> tuple[str, str]:
    """The bolus's key and the infusion's."""
    bolus, infusion = (
        RegimenDrug.objects.get(phase__regimen=course.regimen, drug__name="fluorouracil", route=r)
        for r in ("IV bolus", "IV infusion")
    )
    return f"{bolus.pk}:1", f"{infusion.pk}:1"


def _seen(page: str) -> str:
    return re.search(r'name="seen_doses" value="([^"]+)"', page).group(1)


def _box(key: str) -> str:
    return "dispensed_" + key.replace(":", "_")


def test_a_refused_banding_names_which_fluorouracil_dose(fluorouracil_banded, cycle, pharmacist):
    bolus, infusion = _fluorouracil_keys(cycle.course)
    with pytest.raises(ValidationError) as refused:
        # 4416 mg is the infusion's dose: typed in the bolus's box, it is far off the bolus.
        cycle_doses_verify(cycle=cycle, by=pharmacist, dispensed_doses={bolus: "4400"})
    (message,) = refused.value.message_dict["dispensed_doses"]
    assert message.startswith(f"{BOLUS} ({bolus}): 4400 mg is more than 5% from the calculated 736")
    # The drug given once that day keeps its short name.
    with pytest.raises(ValidationError) as refused:
        cycle_doses_verify(cycle=cycle, by=pharmacist, seen_doses={})
    changed = refused.value.message_dict["cycle"][0]
    assert f"{INFUSION}: not shown mg on the page, 4416.0 mg now" in changed
    assert "oxaliplatin day 1: not shown mg" in changed


def test_the_page_tells_the_fluorouracil_bolus_from_the_infusion(
    client, login, fluorouracil_banded, cycle, pharmacist, treating_clinician
):
    bolus, infusion = _fluorouracil_keys(cycle.course)
    login(client, pharmacist)
    response = client.get(_page_url("cycle_detail", cycle))
    page = response.content.decode()
    # Each banding box is labelled with its own dose.
    for key, name, mg in ((bolus, BOLUS, "736"), (infusion, INFUSION, "4416")):
        box_id = f"verify_{_box(key)}"
        assert re.search(
            rf'<label for="{box_id}"><span class="dose-name">{name}</span>: calculated '
            rf"<strong>{mg} mg</strong>",
            page,
        ), name
        assert response.context["verify_form"].fields[_box(key)].label == (
            f"Dispensed (banded) dose of {name}, mg"
        )
    # A refused banding is shown beside its box, naming the dose.
    refused = client.post(
        _page_url("cycle_verify", cycle),
        {"seen_doses": _seen(page), _box(bolus): "4400"},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 400
    assert refused.context["verify_form"].errors[_box(bolus)][0].startswith(f"{BOLUS} ({bolus})")
    assert not DoseVerification.objects.exists()

    client.post(
        _page_url("cycle_verify", cycle), {"seen_doses": _seen(page), _box(infusion): "4400"}
    )
    page = client.get(_page_url("cycle_detail", cycle)).content.decode()
    # What the pharmacist verified: one row per 5-FU dose, each named.
    verified = page.split('id="verified-doses"')[1].split("</table>")[0]
    assert f"<td>{BOLUS}</td>" in verified
    assert f"<td>{INFUSION}</td>" in verified
    assert "<td>fluorouracil day 1</td>" not in verified

    # The nurse's choice of dose at the chair names them apart too.
    login(client, treating_clinician)
    form = client.get(_page_url("cycle_detail", cycle)).context["administration_form"]
    choices = dict(form.fields["regimen_drug"].choices)
    assert (choices[bolus], choices[infusion]) == (BOLUS, INFUSION)


def test_verifying_again_starts_from_the_doses_banded_last(
    client, login, oxaliplatin_banded, fluorouracil_banded, cycle, pharmacist
):
    bolus, infusion = _fluorouracil_keys(cycle.course)
    oxaliplatin = _key(cycle.course)
    cycle_doses_verify(
        cycle=cycle, by=pharmacist, dispensed_doses={oxaliplatin: "160", infusion: "4400"}
    )
    login(client, pharmacist)
    response = client.get(_page_url("cycle_detail", cycle))
    page = response.content.decode()
    form = response.context["verify_form"]
    assert form[_box(oxaliplatin)].value() == "160"  # as typed, not the stored "160.0"
    assert form[_box(infusion)].value() == "4400"
    assert form[_box(bolus)].value() is None  # not banded last time: dispensed as calculated
    assert re.search(rf'name="{_box(oxaliplatin)}" value="160"', page)
    assert page.count("Filled in from the last verification") == 2
    assert "dispensed as 160 mg for the same calculated dose" in page

    # The pharmacist presses Verify again with the boxes as the page filled them in.
    boxes = {
        name: re.search(rf'name="{name}" value="([^"]*)"', page).group(1)
        for name in (_box(oxaliplatin), _box(infusion))
    }
    again = client.post(
        _page_url("cycle_verify", cycle), {"seen_doses": _seen(page), "note": "Again", **boxes}
    )
    assert again.status_code == 302
    latest = cycle.verifications.first()
    assert latest.note == "Again"
    assert (latest.dispensed_doses[oxaliplatin], latest.dispensed_doses[infusion]) == (
        "160.0",
        "4400.0",
    )
    assert latest.dispensed_doses[bolus] == latest.doses[bolus] == "736.0"


def test_a_dose_whose_calculation_changed_is_not_filled_in_and_says_so(
    client, login, oxaliplatin_banded, cycle, pharmacist
):
    oxaliplatin = _key(cycle.course)
    cycle_doses_verify(cycle=cycle, by=pharmacist, dispensed_doses={oxaliplatin: "160"})
    # A lighter weight: oxaliplatin is now 147.9 mg, and 160 mg is outside its band.
    BodyMeasurementFactory.create(
        patient=cycle.course.patient, measured_on=START, weight_kg=Decimal("64")
    )
    login(client, pharmacist)
    response = client.get(_page_url("cycle_detail", cycle))
    page = response.content.decode()
    assert response.context["verify_form"][_box(oxaliplatin)].value() is None
    assert re.search(rf'<input type="number" name="{_box(oxaliplatin)}"(?![^>]*value=)', page)
    assert (
        "The calculation changed since the last banding: 156.4 mg calculated then, dispensed "
        "as 160 mg." in page
    )
    assert "Filled in from the last verification" not in page
