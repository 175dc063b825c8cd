"""A regimen version that a course uses is frozen; a change is made on a new version.

DOMAIN.md section 2: "Regimens are versioned: a course keeps the version it started on." The
tester's case: CHOP v1 cyclophosphamide 750 -> 751 mg/m² in admin changed the planned doses of
patients already on CHOP.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from django.urls import reverse

from labs.models import PreCycleRule
from patients.tests.factories import BodyMeasurementFactory
from treatments.dosing import dose_compute
from treatments.models import Course, Regimen, RegimenDrug, RegimenPhase
from treatments.regimen_versions import regimen_new_version
from treatments.services import course_start
from treatments.tests.factories import regimen_approved

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("on_20_march_2026")]

START = dt.date(2026, 3, 2)
FROZEN_NOTE = b"1 course uses this version"


@pytest.fixture
def chop() -> Regimen:
    return Regimen.objects.get(name="CHOP", version=1)  # reference data (labs/migrations)


@pytest.fixture
def cyclophosphamide(chop) -> RegimenDrug:
    return RegimenDrug.objects.get(phase__regimen=chop, drug__name__iexact="cyclophosphamide")


@pytest.fixture
def chop_draft(chop, admin_user) -> Regimen:
    """CHOP v2 as an administrator is building it: no course uses it, nobody approved it."""
    return regimen_new_version(regimen=chop, by=admin_user)


@pytest.fixture
def draft_cyclophosphamide(chop_draft) -> RegimenDrug:
    return RegimenDrug.objects.get(phase__regimen=chop_draft, drug__name__iexact="cyclophosphamide")


@pytest.fixture
def course(chop, patient, treating_clinician) -> Course:
    BodyMeasurementFactory.create(
        patient=patient,
        measured_on=START - dt.timedelta(days=3),
        height_cm=Decimal("170"),
        weight_kg=Decimal("72"),
    )
    return course_start(
        patient=patient,
        regimen=chop,
        start_date=START,
        intent="curative",
        created_by=treating_clinician,
    )


@pytest.fixture
def as_admin(client, admin_user):
    client.force_login(admin_user)
    session = client.session
    session["_op_mfa_enrolled"] = True  # past MFA enrolment, as after a TOTP login
    session.save()
    return client


def _change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def _drug_post(drug: RegimenDrug, **changes: object) -> dict[str, object]:
    data = {
        "phase": drug.phase_id,
        "drug": drug.drug_id,
        "dose": drug.dose,
        "dose_basis": drug.dose_basis,
        "route": drug.route,
        "days": drug.days,
        "duration": drug.duration,
        "max_dose_mg": drug.max_dose_mg or "",
        "order": drug.order,
    }
    return data | changes


def _contents(regimen: Regimen) -> dict[str, list[tuple[object, ...]]]:
    """Everything a course reads from a regimen version, without ids."""
    return {
        "phases": list(
            regimen.phases.order_by("order").values_list(
                "order", "name", "cycle_length_days", "planned_cycles"
            )
        ),
        "drugs": list(
            RegimenDrug.objects.filter(phase__regimen=regimen)
            .order_by("phase__order", "order", "drug__name")
            .values_list(
                "phase__order",
                "order",
                "drug__name",
                "dose",
                "dose_basis",
                "route",
                "days",
                "duration",
                "max_dose_mg",
            )
        ),
        "rules": list(
            PreCycleRule.objects.filter(regimen=regimen)
            .order_by("test__loinc", "priority")
            .values_list(
                "test__loinc",
                "comparator",
                "value",
                "unit",
                "max_age_days",
                "action",
                "action_percent",
                "action_delay_days",
                "priority",
                "source",
            )
        ),
    }


def _planned_doses(course: Course) -> list[tuple[str, Decimal]]:
    cycle = course.cycles.get(number=1)
    return [
        (rd.drug.name, dose_compute(regimen_drug=rd, patient=course.patient, on_date=START).dose_mg)
        for rd in cycle.phase.drugs.order_by("order")
    ]


# --- Admin: a frozen version is read-only for every administrator -----------------------------


def test_frozen_regimen_drug_change_page_refuses_post_for_superuser(
    as_admin, admin_user, course, cyclophosphamide
):
    assert admin_user.is_superuser
    url = _change_url(cyclophosphamide)

    page = as_admin.get(url)
    assert page.status_code == 200
    assert FROZEN_NOTE in page.content
    assert b'name="dose"' not in page.content  # shown, not editable

    response = as_admin.post(url, _drug_post(cyclophosphamide, dose="751"))
    assert response.status_code == 403
    cyclophosphamide.refresh_from_db()
    assert cyclophosphamide.dose == Decimal("750")


def test_frozen_regimen_change_page_says_why_and_how(as_admin, chop, course):
    response = as_admin.get(_change_url(chop))
    assert response.status_code == 200
    assert FROZEN_NOTE in response.content
    assert b"create a new version to change it" in response.content.lower()
    assert b'name="name"' not in response.content
    # Only whether the version is offered for new courses stays editable (it changes no course).
    assert b'name="is_active"' in response.content


def test_frozen_regimen_admins_and_inlines_allow_no_add_change_or_delete(admin_user, chop, course):
    request = RequestFactory().get("/")
    request.user = admin_user
    phase = chop.phases.get()
    rows = {
        RegimenPhase: phase,
        RegimenDrug: phase.drugs.first(),
        PreCycleRule: chop.precycle_rules.first(),
    }
    for model, obj in rows.items():
        model_admin = admin.site._registry[model]
        assert model_admin.has_view_permission(request, obj)
        assert not model_admin.has_change_permission(request, obj), model
        assert not model_admin.has_delete_permission(request, obj), model

    regimen_admin = admin.site._registry[Regimen]
    assert not regimen_admin.has_delete_permission(request, chop)
    assert "name" in regimen_admin.get_readonly_fields(request, chop)
    assert "is_active" not in regimen_admin.get_readonly_fields(request, chop)
    inlines = [
        *regimen_admin.get_inline_instances(request, chop),
        *admin.site._registry[RegimenPhase].get_inline_instances(request, phase),
    ]
    # phases, rules, supportive care, approvals (read-only always); a phase's drugs
    assert len(inlines) == 5
    for inline in inlines:
        parent = phase if inline.model is RegimenDrug else chop
        assert inline.has_view_permission(request, parent)
        assert not inline.has_add_permission(request, parent), inline
        assert not inline.has_change_permission(request, parent), inline
        assert not inline.has_delete_permission(request, parent), inline


def test_frozen_regimen_drugs_survive_the_delete_selected_action(as_admin, chop, course):
    drug_ids = list(RegimenDrug.objects.filter(phase__regimen=chop).values_list("pk", flat=True))
    response = as_admin.post(
        reverse("admin:treatments_regimendrug_changelist"),
        {"action": "delete_selected", "_selected_action": drug_ids, "post": "yes"},
    )
    assert response.status_code == 403  # admin asks each row's has_delete_permission
    assert RegimenDrug.objects.filter(pk__in=drug_ids).count() == len(drug_ids)


def test_an_unused_unapproved_version_stays_editable_in_admin(
    as_admin, chop_draft, draft_cyclophosphamide
):
    assert not chop_draft.courses.exists()
    url = _change_url(draft_cyclophosphamide)
    assert FROZEN_NOTE not in as_admin.get(url).content
    assert b"read-only" not in as_admin.get(url).content

    response = as_admin.post(url, _drug_post(draft_cyclophosphamide, dose="751"))
    assert response.status_code == 302
    draft_cyclophosphamide.refresh_from_db()
    assert draft_cyclophosphamide.dose == Decimal("751")


# --- Below admin: the models refuse the change on every door -------------------------------------


def _change_drug_dose(chop: Regimen) -> None:
    drug = RegimenDrug.objects.filter(phase__regimen=chop).first()
    drug.dose = Decimal("751")
    drug.save()


def _change_phase_cycles(chop: Regimen) -> None:
    phase = chop.phases.get()
    phase.planned_cycles = 8
    phase.save()


def _change_rule_value(chop: Regimen) -> None:
    rule = chop.precycle_rules.first()
    rule.value = rule.value + 1
    rule.save()


def _rename_regimen(chop: Regimen) -> None:
    chop.name = "CHOP (edited)"
    chop.save()


def _add_drug(chop: Regimen) -> None:
    existing = RegimenDrug.objects.filter(phase__regimen=chop).first()
    RegimenDrug.objects.create(
        phase=existing.phase,
        drug=existing.drug,
        dose=Decimal("10"),
        dose_basis=existing.dose_basis,
        route=existing.route,
        days="1",
        order=99,
    )


def _add_phase(chop: Regimen) -> None:
    RegimenPhase.objects.create(
        regimen=chop, order=2, name="Extra", cycle_length_days=21, planned_cycles=2
    )


def _add_rule(chop: Regimen) -> None:
    existing = chop.precycle_rules.first()
    PreCycleRule.objects.create(
        regimen=chop,
        test=existing.test,
        comparator=">=",
        value=Decimal("1"),
        unit=existing.unit,
        action="treat",
        priority=99,
    )


def _delete_drug(chop: Regimen) -> None:
    RegimenDrug.objects.filter(phase__regimen=chop).first().delete()


def _delete_phase(chop: Regimen) -> None:
    chop.phases.get().delete()


def _delete_rule(chop: Regimen) -> None:
    chop.precycle_rules.first().delete()


@pytest.mark.parametrize(
    "change",
    [
        _change_drug_dose,
        _change_phase_cycles,
        _change_rule_value,
        _rename_regimen,
        _add_drug,
        _add_phase,
        _add_rule,
        _delete_drug,
        _delete_phase,
        _delete_rule,
    ],
)
def test_model_guard_refuses_direct_change_of_frozen_regimen(chop, course, change):
    before = _contents(chop)
    with pytest.raises(ValidationError, match="1 course.*Create a new version"):
        change(Regimen.objects.get(pk=chop.pk))
    chop.refresh_from_db()
    assert chop.name == "CHOP"
    assert _contents(chop) == before


def test_model_guard_refuses_moving_a_drug_into_a_frozen_regimen(chop, course):
    other = regimen_new_version(regimen=chop, by=course.created_by)
    drug = RegimenDrug.objects.filter(phase__regimen=other).first()
    drug.phase = chop.phases.get()
    with pytest.raises(ValidationError, match="CHOP v1 is used by 1 course"):
        drug.full_clean()
    with pytest.raises(ValidationError):
        drug.save()


def test_model_guard_allows_unchanged_saves_and_retiring_a_frozen_version(
    chop, course, cyclophosphamide
):
    cyclophosphamide.full_clean()
    cyclophosphamide.save()  # a no-op save changes no course
    chop.is_active = False  # "offered for new courses" changes no course either
    chop.full_clean()
    chop.save()
    assert not Regimen.objects.get(pk=chop.pk).is_active


def test_model_guard_lets_unused_unapproved_regimen_rows_change(chop_draft, draft_cyclophosphamide):
    draft_cyclophosphamide.dose = Decimal("751")
    draft_cyclophosphamide.full_clean()
    draft_cyclophosphamide.save()
    _add_phase(chop_draft)
    _delete_rule(chop_draft)
    assert RegimenDrug.objects.get(pk=draft_cyclophosphamide.pk).dose == Decimal("751")


# --- A new version --------------------------------------------------------------------------------


def test_new_version_action_copies_every_phase_drug_and_rule(as_admin, admin_user, chop, course):
    before = _contents(chop)
    assert len(before["phases"]) == 1
    assert len(before["drugs"]) == 4
    assert len(before["rules"]) == 8

    response = as_admin.post(
        reverse("admin:treatments_regimen_changelist"),
        {"action": "create_new_version", "_selected_action": [chop.pk]},
    )

    new = Regimen.objects.get(name="CHOP", version=2)
    assert response.status_code == 302
    assert response.url == _change_url(new)
    assert any("Created CHOP v2" in str(m) for m in get_messages(response.wsgi_request))
    assert _contents(new) == before
    assert (new.intent, new.indication, new.source) == (chop.intent, chop.indication, chop.source)
    assert not new.is_active  # a draft until the administrator offers it for new courses
    assert LogEntry.objects.filter(
        object_id=str(new.pk), action_flag=ADDITION, user=admin_user
    ).exists()
    # The old version and its course are untouched.
    chop.refresh_from_db()
    assert (chop.version, chop.is_active) == (1, True)
    assert _contents(chop) == before
    course.refresh_from_db()
    assert course.regimen_id == chop.pk
    assert {c.phase.regimen_id for c in course.cycles.all()} == {chop.pk}
    # No course uses the copy: it is editable.
    page = as_admin.get(_change_url(new))
    assert FROZEN_NOTE not in page.content
    assert b'name="name"' in page.content


def test_new_version_action_wants_one_regimen(as_admin, chop):
    mfolfox6 = Regimen.objects.get(name="mFOLFOX6", version=1)
    response = as_admin.post(
        reverse("admin:treatments_regimen_changelist"),
        {"action": "create_new_version", "_selected_action": [chop.pk, mfolfox6.pk]},
    )
    assert response.status_code == 302
    assert not Regimen.objects.filter(version=2).exists()


def test_new_version_numbers_after_the_latest_version(chop, admin_user):
    v2 = regimen_new_version(regimen=chop, by=admin_user)
    v3 = regimen_new_version(regimen=chop, by=admin_user)  # from v1 again: v2 is taken
    assert (v2.version, v3.version) == (2, 3)
    assert _contents(v3) == _contents(chop)


def test_editing_new_version_leaves_planned_doses_of_existing_course(
    as_admin, admin_user, chop, course, cyclophosphamide
):
    planned = _planned_doses(course)
    assert ("cyclophosphamide", Decimal("1380")) in [(n.lower(), d) for n, d in planned]

    new = regimen_new_version(regimen=chop, by=admin_user)
    new_cyclophosphamide = RegimenDrug.objects.get(phase__regimen=new, drug=cyclophosphamide.drug)
    response = as_admin.post(
        _change_url(new_cyclophosphamide), _drug_post(new_cyclophosphamide, dose="751")
    )
    assert response.status_code == 302

    new_cyclophosphamide.refresh_from_db()
    assert new_cyclophosphamide.dose == Decimal("751")
    cyclophosphamide.refresh_from_db()
    assert cyclophosphamide.dose == Decimal("750")
    course = Course.objects.get(pk=course.pk)
    assert _planned_doses(course) == planned


def test_frozen_regimen_change_page_saves_only_offered_for_new_courses(as_admin, chop, course):
    phases, rules = chop.phases.count(), chop.precycle_rules.count()
    supportive = chop.supportive_medications.count()
    response = as_admin.post(
        _change_url(chop),
        {
            "name": "CHOP (edited)",
            "version": "7",
            "intent": "palliative",
            # is_active unticked: retire v1 (its course keeps it)
            "phases-TOTAL_FORMS": phases,
            "phases-INITIAL_FORMS": phases,
            "precycle_rules-TOTAL_FORMS": rules,
            "precycle_rules-INITIAL_FORMS": rules,
            "supportive_medications-TOTAL_FORMS": supportive,
            "supportive_medications-INITIAL_FORMS": supportive,
            "approvals-TOTAL_FORMS": 0,
            "approvals-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302
    chop.refresh_from_db()
    assert (chop.name, chop.version, chop.intent, chop.is_active) == ("CHOP", 1, "curative", False)
    assert (chop.phases.count(), chop.precycle_rules.count()) == (phases, rules)


def test_offering_a_new_version_in_admin_retires_the_old_one(admin_user, chop, course):
    # A reviewer offered CHOP v2 and the planning form showed v1 and v2 side by side with
    # nothing to choose between them.
    from django.contrib.messages.storage.fallback import FallbackStorage

    from treatments.forms import CourseStartForm

    new = regimen_approved(regimen_new_version(regimen=chop, by=admin_user))
    new.is_active = True
    request = RequestFactory().post("/")
    request.user = admin_user
    request.session = {}
    request._messages = FallbackStorage(request)  # type: ignore[attr-defined]
    admin.site._registry[Regimen].save_model(request, new, form=None, change=True)

    chop.refresh_from_db()
    assert (chop.is_active, new.is_active) == (False, True)
    offered = CourseStartForm().fields["regimen"].queryset
    assert list(offered.filter(name="CHOP")) == [new]
    assert any("CHOP v1 no longer offered" in str(m) for m in request._messages)
    assert LogEntry.objects.filter(object_id=str(chop.pk), user=admin_user).exists()
    course.refresh_from_db()
    assert course.regimen_id == chop.pk  # its course keeps the version it started on


def test_admin_history_of_a_drug_names_the_old_and_new_lifetime_limit(as_admin):
    # Raising doxorubicin's limit from 450 to 4500 had left only "Changed Lifetime limit".
    from django.contrib.admin.models import CHANGE

    from treatments.models import Drug

    drug = Drug.objects.get(name__iexact="doxorubicin")
    url = reverse("admin:treatments_drug_change", args=[drug.pk])
    form = as_admin.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    data["lifetime_limit_mg_m2"] = "4500"
    response = as_admin.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = LogEntry.objects.filter(object_id=str(drug.pk), action_flag=CHANGE).latest("pk")
    assert entry.get_change_message() == "Changed Lifetime limit (mg/m²): 450.0 -> 4500."
