"""Supportive care on a regimen version: premedication, antiemetics, growth factor, hydration.

Part of the version (frozen with it), seeded for the reference regimens, shown on the regimen,
course and cycle pages, and at the chair: a drug with a required premedication (paclitaxel) is
recorded only once the nurse confirms the premedication was given, on every door that records
administrations (the page, the service, REST; GraphQL records none).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import RestrictedError
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from oncoplanner.accounts.api_tokens import api_token_create
from treatments.dosing import dose_compute
from treatments.models import (
    Administration,
    ChemoCycle,
    Course,
    DoseBasis,
    Regimen,
    RegimenDrug,
    SupportiveMedication,
)
from treatments.regimen_versions import regimen_new_version
from treatments.services import (
    PremedicationToConfirm,
    administration_record,
    course_start,
    cycle_give,
)
from treatments.tests.factories import pharmacy_verified, regimen_approved, regimen_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_20_march_2026")]

START = dt.date(2026, 3, 2)
GIVEN_AT = "2026-03-02T10:30"
PASSWORD = "correct-horse-battery-staple"  # every factory user's (UserFactory)
REVIEWED = "Counts reviewed at the referring hospital"
TAXOL = "Paclitaxel (Taxol) prescribing information"
REGIMEN = "Paclitaxel q14 (supportive care test)"


def _supportive(regimen: Regimen, **fields: object) -> SupportiveMedication:
    values: dict[str, object] = {
        "regimen": regimen,
        "category": SupportiveMedication.Category.PREMEDICATION,
        "medication": "dexamethasone",
        "dose_route": "20 mg PO",
        "timing": "about 12 h and 6 h before paclitaxel",
        "days": "1",
        "source": TAXOL,
    } | fields
    sm = SupportiveMedication(**values)
    sm.full_clean()
    sm.save()
    return sm


@pytest.fixture
def draft() -> Regimen:
    """A paclitaxel regimen still being built (not approved, no course): editable."""
    return regimen_create(
        name=REGIMEN,
        phases=((14, 4, (("paclitaxel", "175", DoseBasis.MG_M2),)),),
        approved=False,
    )


def _paclitaxel(regimen: Regimen) -> RegimenDrug:
    return RegimenDrug.objects.get(phase__regimen=regimen, drug__name="paclitaxel")


@pytest.fixture
def premedicated(draft) -> Regimen:
    """The draft with paclitaxel's label premedication, required before it; then approved."""
    paclitaxel = _paclitaxel(draft)
    _supportive(draft, required_before=paclitaxel, order=1)
    _supportive(
        draft,
        medication="diphenhydramine",
        dose_route="50 mg IV",
        timing="30 to 60 min before paclitaxel",
        required_before=paclitaxel,
        order=2,
    )
    _supportive(
        draft,
        category=SupportiveMedication.Category.GROWTH_FACTOR,
        medication="filgrastim (G-CSF)",
        dose_route="5 mcg/kg SC",
        timing="daily",
        days="3-10",
        source="CALGB 9741",
        order=3,
    )
    return regimen_approved(draft)


# --- The model: validation ----------------------------------------------------------------


def test_supportive_medication_required_before_a_drug_takes_its_phase(draft):
    sm = _supportive(draft, required_before=_paclitaxel(draft))
    assert sm.phase == _paclitaxel(draft).phase


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"source": ""}, "source", "Say where this comes from"),
        ({"medication": "  "}, "medication", "Name the medication"),
        ({"days": "day one"}, "days", "Days look like"),
        ({"days": "15"}, "days", "beyond the cycle length"),
        ({"category": "vitamin"}, "category", "not a valid choice"),
    ],
)
def test_supportive_medication_bad_values_are_refused_naming_the_field(draft, fields, field, words):
    with pytest.raises(ValidationError) as refused:
        _supportive(draft, **fields)
    assert words in " ".join(refused.value.message_dict[field])
    assert not SupportiveMedication.objects.filter(regimen=draft).exists()


def test_supportive_medication_required_before_a_drug_of_another_version_is_refused(draft):
    other = regimen_create(name="Other (supportive test)", approved=False)
    with pytest.raises(ValidationError) as refused:
        _supportive(draft, required_before=RegimenDrug.objects.get(phase__regimen=other))
    assert "not a drug of this regimen version" in refused.value.message_dict["required_before"][0]


def test_supportive_medication_required_before_a_drug_on_a_day_it_is_not_given(draft):
    with pytest.raises(ValidationError) as refused:
        _supportive(draft, required_before=_paclitaxel(draft), days="1,8")
    assert "given on day(s) 1: not on day 8" in refused.value.message_dict["days"][0]


def test_supportive_medication_of_another_versions_phase_is_refused(draft):
    other = regimen_create(name="Other phase (supportive test)", approved=False)
    with pytest.raises(ValidationError) as refused:
        _supportive(draft, phase=other.phases.get())
    assert "another regimen version" in refused.value.message_dict["phase"][0]


# --- Frozen with its version --------------------------------------------------------------


def test_supportive_care_is_frozen_once_the_version_is_approved(premedicated):
    sm = premedicated.supportive_medications.get(medication="dexamethasone")
    sm.dose_route = "2 mg PO"
    with pytest.raises(ValidationError, match="approved for prescribing"):
        sm.save()
    with pytest.raises(ValidationError, match="approved for prescribing"):
        sm.delete()
    with pytest.raises(ValidationError, match="approved for prescribing"):
        SupportiveMedication(
            regimen=premedicated, category="other", medication="x", source="y"
        ).save()
    sm.refresh_from_db()
    assert sm.dose_route == "20 mg PO"


def test_supportive_care_is_frozen_once_a_course_uses_the_version(draft, patient, admin_user):
    sm = _supportive(draft)
    Course.objects.create(
        patient=patient,
        regimen=draft,
        start_date=START,
        intent="curative",
        created_by=admin_user,
    )
    sm.timing = "whenever"
    with pytest.raises(ValidationError, match="used by 1 course"):
        sm.full_clean()


def test_a_drug_with_a_required_premedication_cannot_be_deleted_alone(draft):
    _supportive(draft, required_before=_paclitaxel(draft))
    with pytest.raises(RestrictedError):
        _paclitaxel(draft).delete()  # the premedication would silently stop being asked for
    draft.phases.get().delete()  # the whole phase goes with its supportive care
    assert not SupportiveMedication.objects.filter(regimen=draft).exists()


def test_a_new_version_copies_supportive_care_onto_its_own_drugs(premedicated, admin_user):
    new = regimen_new_version(regimen=premedicated, by=admin_user)
    copied = list(new.supportive_medications.order_by("order"))
    assert [sm.medication for sm in copied] == [
        "dexamethasone",
        "diphenhydramine",
        "filgrastim (G-CSF)",
    ]
    assert copied[0].required_before == _paclitaxel(new)  # the new version's, not the old
    assert copied[0].phase == new.phases.get()
    assert copied[2].phase is None
    assert copied[2].required_before is None
    copied[0].dose_route = "10 mg IV"  # the copy is editable; the old version is not
    copied[0].full_clean()
    copied[0].save()


# --- Seeded for the reference regimens ----------------------------------------------------


def test_paclitaxel_of_dose_dense_ac_t_has_its_label_premedication_required():
    ac_t = Regimen.objects.get(name="Dose-dense AC-T", version=1)
    paclitaxel = RegimenDrug.objects.get(phase__regimen=ac_t, drug__name="paclitaxel")
    premeds = SupportiveMedication.objects.filter(required_before=paclitaxel).order_by("order")
    assert [(sm.medication.split()[0], sm.dose_route) for sm in premeds] == [
        ("dexamethasone", "20 mg PO"),
        ("diphenhydramine", "50 mg IV"),
        ("cimetidine", "300 mg IV"),
    ]
    assert all("Taxol" in sm.source and sm.category == "premedication" for sm in premeds)
    assert all(sm.phase.name == "T" for sm in premeds)


def test_seeded_supportive_care_of_the_reference_regimens():
    def rows(name: str) -> set[tuple[str | None, str, str]]:
        return {
            (sm.phase.name if sm.phase else None, sm.category, sm.medication.split()[0])
            for sm in SupportiveMedication.objects.filter(regimen__name=name, regimen__version=1)
        }

    # AC (anthracycline + cyclophosphamide): high emetic risk, four drugs; G-CSF every phase.
    assert {
        ("AC", "antiemetic", "NK1"),
        ("AC", "antiemetic", "5-HT3"),
        ("AC", "antiemetic", "dexamethasone"),
        ("AC", "antiemetic", "olanzapine"),
        (None, "growth_factor", "filgrastim"),
    } <= rows("Dose-dense AC-T")
    assert rows("mFOLFOX6") == {
        ("mFOLFOX6", "antiemetic", "5-HT3"),
        ("mFOLFOX6", "antiemetic", "dexamethasone"),
    }
    assert ("CHOP", "antiemetic", "NK1") in rows("CHOP")
    seeded = SupportiveMedication.objects.filter(regimen__version=1)
    assert seeded.count() == 14
    assert all(sm.source.strip() for sm in seeded)
    # Only paclitaxel's premedication gates the chair.
    assert {sm.required_before.drug.name for sm in seeded if sm.required_before} == {"paclitaxel"}
    for sm in seeded:
        sm.full_clean()  # valid as the models see them (clean() is not refused: unchanged)


def test_seeding_again_changes_nothing_and_unseeding_removes_only_the_seed(draft):
    migration = importlib.import_module("treatments.migrations.0015_seed_supportive_care")
    _supportive(draft)  # not reference data: left alone
    before = list(SupportiveMedication.objects.order_by("pk").values())
    migration.seed(apps, None)
    assert list(SupportiveMedication.objects.order_by("pk").values()) == before
    migration.unseed(apps, None)
    assert list(SupportiveMedication.objects.values_list("regimen__name", flat=True)) == [REGIMEN]


# --- Shown on the regimen, course and cycle pages -----------------------------------------


@pytest.fixture
def as_clinician(client, login, treating_clinician):
    return login(client, treating_clinician)


def test_regimen_detail_shows_supportive_care_with_its_source(as_clinician):
    ac_t = Regimen.objects.get(name="Dose-dense AC-T", version=1)
    page = as_clinician.get(reverse("treatments:regimen_detail", args=[ac_t.pk])).content.decode()
    section = page.split('id="supportive-care"')[1].split("</section>")[0]
    assert "Supportive care" in section
    assert "20 mg PO" in section
    assert "about 12 h and 6 h before paclitaxel" in section
    assert "required before paclitaxel" in section
    assert "Taxol" in section
    assert "per local protocol" in section  # the 5-HT3 receptor antagonist: class, no dose


def test_regimen_detail_shows_supportive_changes_from_the_previous_version(
    as_clinician, premedicated, admin_user
):
    new = regimen_new_version(regimen=premedicated, by=admin_user)
    new.supportive_medications.get(medication="diphenhydramine").delete()  # dropped
    changed = new.supportive_medications.get(medication="dexamethasone")
    changed.dose_route = "10 mg IV"
    changed.save()
    _supportive(new, category="antiemetic", medication="ondansetron", dose_route="8 mg PO")
    page = as_clinician.get(reverse("treatments:regimen_detail", args=[new.pk])).content.decode()
    section = page.split('id="supportive-care"')[1].split("</section>")[0]
    assert (
        "was 20 mg PO, day 1, about 12 h and 6 h before paclitaxel, required before paclitaxel in v1"
        in section
    )
    assert "new in v2" in section
    assert "Removed since v1" in section
    assert "diphenhydramine" in section.split("Removed")[1]


def test_regimen_detail_says_when_a_version_has_no_supportive_care(as_clinician, draft):
    page = as_clinician.get(reverse("treatments:regimen_detail", args=[draft.pk])).content.decode()
    assert "No supportive care recorded for this version" in page


@pytest.fixture
def course(measured, premedicated, treating_clinician) -> Course:
    return course_start(
        patient=measured,
        regimen=premedicated,
        start_date=START,
        intent="adjuvant",
        created_by=treating_clinician,
        confirm_past_start=True,
    )


@pytest.fixture
def given_cycle(course, treating_clinician) -> ChemoCycle:
    cycle = cycle_give(
        cycle=course.cycles.get(number=1),
        actual_start=START,
        given_by=treating_clinician,
        override_reason=REVIEWED,
    )
    return pharmacy_verified(cycle)


def _label_dose(cycle: ChemoCycle) -> Decimal:
    return dose_compute(
        regimen_drug=_paclitaxel(cycle.course.regimen),
        patient=cycle.course.patient,
        on_date=cycle.start,
        percent=Decimal(100),
    ).dose_mg


def test_course_page_shows_the_regimens_supportive_care(as_clinician, course):
    url = reverse("treatments:course_detail", args=[course.patient_id, course.pk])
    section = as_clinician.get(url).content.decode().split('id="supportive-care"')[1]
    section = section.split("</section>")[0]
    assert "dexamethasone" in section
    assert "required before paclitaxel" in section
    assert "filgrastim (G-CSF)" in section
    assert "every phase" in section


def test_cycle_page_shows_supportive_care_due_by_day_and_the_premedication_tick(
    as_clinician, course, given_cycle
):
    url = reverse("treatments:cycle_detail", args=[course.patient_id, course.pk, 1])
    page = as_clinician.get(url).content.decode()
    section = page.split('id="supportive-care"')[1].split("</section>")[0]
    assert "day 1 · Mon 2 Mar" in section
    assert "day 3 · Wed 4 Mar" in section
    assert "day 10 · Wed 11 Mar" in section
    assert section.index("dexamethasone") < section.index("filgrastim")
    assert 'name="confirm_premedication"' in page  # asked up front, not only after a refusal


# --- At the chair: every door that records an administration ------------------------------


def _record(cycle, nurse, checker, **kwargs):
    return administration_record(
        cycle=cycle,
        regimen_drug=_paclitaxel(cycle.course.regimen),
        day_of_cycle=1,
        given_at=timezone.make_aware(dt.datetime(2026, 3, 2, 10, 30)),
        administered_by=nurse,
        verified_by=checker,
        label_dose_mg=_label_dose(cycle),
        **kwargs,
    )


def test_service_refuses_paclitaxel_until_its_premedication_is_confirmed(
    given_cycle, treating_clinician, colleague
):
    with pytest.raises(PremedicationToConfirm) as refused:
        _record(given_cycle, treating_clinician, colleague)
    message = refused.value.message_dict["confirm_premedication"][0]
    assert "paclitaxel is given only after its required premedication" in message
    assert "dexamethasone 20 mg PO (about 12 h and 6 h before paclitaxel)" in message
    assert "diphenhydramine 50 mg IV" in message
    assert "filgrastim" not in message  # not required before anything
    assert refused.value.confirm_with == "confirm_premedication"
    assert not Administration.objects.exists()

    administration = _record(given_cycle, treating_clinician, colleague, confirm_premedication=True)
    assert administration.premedication_confirmed == [
        "dexamethasone 20 mg PO (about 12 h and 6 h before paclitaxel)",
        "diphenhydramine 50 mg IV (30 to 60 min before paclitaxel)",
    ]
    assert administration.confirmed_warnings == []  # a confirmation, not a warning overruled


def test_a_drug_without_required_premedication_asks_for_nothing(
    measured, treating_clinician, colleague
):
    regimen = regimen_create(
        name="No premedication (supportive test)",
        phases=((14, 4, (("oxaliplatin", "85", DoseBasis.MG_M2),)),),
    )
    course = course_start(
        patient=measured,
        regimen=regimen,
        start_date=START,
        intent="adjuvant",
        created_by=treating_clinician,
        confirm_past_start=True,
    )
    cycle = pharmacy_verified(
        cycle_give(
            cycle=course.cycles.get(number=1),
            actual_start=START,
            given_by=treating_clinician,
            override_reason=REVIEWED,
        )
    )
    rd = RegimenDrug.objects.get(phase__regimen=regimen)
    administration = administration_record(
        cycle=cycle,
        regimen_drug=rd,
        day_of_cycle=1,
        given_at=timezone.make_aware(dt.datetime(2026, 3, 2, 10, 30)),
        administered_by=treating_clinician,
        verified_by=colleague,
    )
    assert administration.premedication_confirmed == []


def _form_data(cycle: ChemoCycle, checker) -> dict[str, object]:
    return {
        "regimen_drug": f"{_paclitaxel(cycle.course.regimen).pk}:1",
        "given_at": GIVEN_AT,
        "verified_by": checker.pk,
        "checker_password": PASSWORD,
        "label_dose_mg": str(_label_dose(cycle)),
        "checklist": "on",
    }


def test_page_refuses_paclitaxel_without_the_premedication_tick_naming_it(
    as_clinician, course, given_cycle, colleague
):
    url = reverse("treatments:administration_create", args=[course.patient_id, course.pk, 1])
    data = _form_data(given_cycle, colleague)
    refused = as_clinician.post(url, data, headers={"HX-Request": "true"})
    assert refused.status_code == 400
    content = refused.content.decode()
    assert b"<html" not in refused.content
    assert "is given only after its required premedication" in content
    assert content.index("required premedication") > content.index('id="confirm-premedication"')
    assert not Administration.objects.exists()

    recorded = as_clinician.post(url, {**data, "confirm_premedication": "on"})
    assert recorded.status_code == 302
    administration = Administration.objects.get()
    assert len(administration.premedication_confirmed) == 2
    page = as_clinician.get(
        reverse("treatments:cycle_detail", args=[course.patient_id, course.pk, 1])
    ).content.decode()
    assert "Premedication confirmed given: dexamethasone 20 mg PO" in page


def _token_client(user) -> Client:
    _, raw = api_token_create(
        user=user, name="test", expires_at=timezone.now() + dt.timedelta(days=7), created_by=user
    )
    return Client(headers={"Authorization": f"Bearer {raw}"})


def test_rest_refuses_paclitaxel_without_confirm_premedication(
    course, given_cycle, treating_clinician, colleague
):
    client = _token_client(treating_clinician)
    url = f"/api/v1/patients/{course.patient_id}/cycles/{given_cycle.pk}/administrations"
    given_at = timezone.make_aware(dt.datetime(2026, 3, 2, 10, 30))
    body = {
        "regimen_drug_id": _paclitaxel(course.regimen).pk,
        "day_of_cycle": 1,
        "given_at": given_at.isoformat(),
        "verified_by_id": colleague.pk,
        "verifier_password": PASSWORD,
        "label_dose_mg": str(_label_dose(given_cycle)),
    }

    def post(payload):
        return client.post(url, data=json.dumps(payload), content_type="application/json")

    refused = post(body)
    assert refused.status_code == 400
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "confirm_premedication"]
    assert error["type"] == "confirmation_required"
    assert error["confirm_with"] == "confirm_premedication"
    assert "required premedication" in error["msg"]
    assert not Administration.objects.exists()

    recorded = post({**body, "confirm_premedication": True})
    assert recorded.status_code == 201, recorded.json()
    assert recorded.json()["premedication_confirmed"][0].startswith("dexamethasone 20 mg PO")


def test_rest_regimen_detail_lists_supportive_medications(treating_clinician):
    ac_t = Regimen.objects.get(name="Dose-dense AC-T", version=1)
    body = _token_client(treating_clinician).get(f"/api/v1/regimens/{ac_t.pk}").json()
    paclitaxel = _paclitaxel(ac_t)
    required = [s for s in body["supportive_medications"] if s["required_before_id"]]
    assert {s["required_before_id"] for s in required} == {paclitaxel.pk}
    assert len(body["supportive_medications"]) == 8


# --- Admin ----------------------------------------------------------------------------------


@pytest.fixture
def as_admin(client, admin_user):
    client.force_login(admin_user)
    session = client.session
    session["_op_mfa_enrolled"] = True  # past MFA enrolment, as after a TOTP login
    session.save()
    return client


def _inline(admin_user, regimen):
    request = RequestFactory().get("/")
    request.user = admin_user
    regimen_admin = admin.site._registry[Regimen]
    [inline] = [
        i
        for i in regimen_admin.get_inline_instances(request, regimen)
        if i.model is SupportiveMedication
    ]
    return request, inline


def test_admin_supportive_care_inline_is_read_only_once_frozen(admin_user, premedicated, draft):
    request, inline = _inline(admin_user, premedicated)
    assert inline.has_view_permission(request, premedicated)
    assert not inline.has_add_permission(request, premedicated)
    assert not inline.has_change_permission(request, premedicated)
    assert not inline.has_delete_permission(request, premedicated)


def test_admin_supportive_care_inline_offers_only_the_versions_own_phases_and_drugs(
    admin_user, draft
):
    regimen_create(name="Elsewhere (supportive test)", approved=False)
    request, inline = _inline(admin_user, draft)
    assert inline.has_add_permission(request, draft)
    fields = inline.get_formset(request, draft).form.base_fields
    assert list(fields["required_before"].queryset) == [_paclitaxel(draft)]
    assert list(fields["phase"].queryset) == list(draft.phases.all())


def test_admin_labels_offered_for_new_courses_the_same_in_list_and_form(as_admin):
    chop = Regimen.objects.get(name="CHOP", version=1)
    listing = as_admin.get(reverse("admin:treatments_regimen_changelist")).content.decode()
    form = as_admin.get(reverse("admin:treatments_regimen_change", args=[chop.pk]))
    assert "Offered for new courses" in listing
    assert "Is active" not in listing
    assert form.context["adminform"].form.fields["is_active"].label == "Offered for new courses"


def _management(regimen: Regimen) -> dict[str, object]:
    data: dict[str, object] = {}
    for prefix, count in (
        ("phases", regimen.phases.count()),
        ("precycle_rules", regimen.precycle_rules.count()),
        ("supportive_medications", regimen.supportive_medications.count()),
        ("approvals", regimen.approvals.count()),
    ):
        data |= {f"{prefix}-TOTAL_FORMS": count, f"{prefix}-INITIAL_FORMS": count}
    return data


def test_admin_offering_a_new_version_asks_to_confirm_retiring_the_old_one(as_admin, admin_user):
    chop = Regimen.objects.get(name="CHOP", version=1)
    new = regimen_approved(regimen_new_version(regimen=chop, by=admin_user))
    url = reverse("admin:treatments_regimen_change", args=[new.pk])
    data = {"is_active": "on", **_management(new)}

    asked = as_admin.post(url, data)
    assert asked.status_code == 200  # re-shown, nothing saved
    errors = asked.context["adminform"].form.errors["confirm_retire"]
    assert "stops offering CHOP v1 for new courses" in errors[0]
    chop.refresh_from_db()
    new.refresh_from_db()
    assert (chop.is_active, new.is_active) == (True, False)

    confirmed = as_admin.post(url, {**data, "confirm_retire": "on"})
    assert confirmed.status_code == 302
    chop.refresh_from_db()
    new.refresh_from_db()
    assert (chop.is_active, new.is_active) == (False, True)


def test_admin_adds_supportive_care_inline_on_a_draft_and_names_a_bad_field(as_admin, draft):
    url = reverse("admin:treatments_regimen_change", args=[draft.pk])
    form = as_admin.get(url).context["adminform"].form
    # Not offered (a draft is not approved): only the supportive care is in question here.
    skip = {"confirm_retire", "is_active"}
    data = {name: form[name].value() for name in form.fields if name not in skip}
    data = {k: ("" if v is None else v) for k, v in data.items() if v is not False}
    phase = draft.phases.get()
    data |= _management(draft)
    data |= {
        "phases-0-id": phase.pk,
        "phases-0-regimen": draft.pk,
        "phases-0-order": phase.order,
        "phases-0-name": phase.name,
        "phases-0-cycle_length_days": phase.cycle_length_days,
        "phases-0-planned_cycles": phase.planned_cycles,
        "supportive_medications-TOTAL_FORMS": 1,
        "supportive_medications-0-regimen": draft.pk,
        "supportive_medications-0-order": 1,
        "supportive_medications-0-category": "premedication",
        "supportive_medications-0-medication": "dexamethasone",
        "supportive_medications-0-dose_route": "20 mg PO",
        "supportive_medications-0-days": "8",
        "supportive_medications-0-required_before": _paclitaxel(draft).pk,
        "supportive_medications-0-source": TAXOL,
    }
    refused = as_admin.post(url, data)
    assert refused.status_code == 200
    assert "not on day 8" in refused.content.decode()
    assert not SupportiveMedication.objects.filter(regimen=draft).exists()

    saved = as_admin.post(url, {**data, "supportive_medications-0-days": "1"})
    assert saved.status_code == 302
    sm = SupportiveMedication.objects.get(regimen=draft)
    assert (sm.phase, sm.required_before) == (phase, _paclitaxel(draft))
