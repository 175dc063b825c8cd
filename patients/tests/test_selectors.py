from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.http import Http404

from oncoplanner import access_context
from oncoplanner.accounts.tests.factories import AdministratorFactory, UserFactory
from oncoplanner.signals import record_read
from patients.models import Patient
from patients.selectors import (
    CHANGE,
    PHI_PATIENT_PATHS,
    course_get_for_user,
    cycle_get_for_user,
    lab_result_get_for_user,
    lab_results_for,
    patient_get_for_user,
    patient_list_visible_to,
    portal_lab_results_for,
    portal_patient_for,
    scoped,
)
from patients.services import care_team_remove_member, patient_create
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def _patient_in(team, mrn: str) -> Patient:
    fields = PatientFactory.build(mrn=mrn)
    return patient_create(
        created_by=None,
        care_team=team,
        mrn=mrn,
        given_name=fields.given_name,
        family_name=fields.family_name,
        date_of_birth=fields.date_of_birth,
        sex=fields.sex,
    )


@pytest.fixture
def reads():
    captured: list[dict] = []

    def receiver(sender, **kwargs):
        captured.append({"sender": sender, **kwargs})

    record_read.connect(receiver, weak=False)
    yield captured
    record_read.disconnect(receiver)


def test_patient_list_visible_to_shows_team_patients_only(patient, treating_clinician):
    outsider_patient = PatientFactory.create()
    visible = list(patient_list_visible_to(user=treating_clinician))
    assert visible == [patient]
    assert outsider_patient not in visible


def test_patient_list_visible_to_hides_everything_from_outsider(patient, other_clinician):
    assert not patient_list_visible_to(user=other_clinician).exists()


def test_patient_list_visible_to_superuser_without_team_sees_nothing(patient, admin_user):
    assert admin_user.is_superuser
    assert not patient_list_visible_to(user=admin_user).exists()


def test_patient_list_visible_to_model_wide_perm_opens_nothing(patient, other_clinician):
    other_clinician.user_permissions.add(
        Permission.objects.get(codename="view_patient"),
        Permission.objects.get(codename="change_patient"),
    )
    assert other_clinician.has_perm("patients.view_patient")  # model-wide, on purpose
    assert not patient_list_visible_to(user=other_clinician).exists()


def test_patient_list_visible_to_patient_user_never_passes_clinician_gate(patient, care_team):
    portal_user = UserFactory.create()  # role patient
    portal_user.groups.add(care_team.group)  # even if wrongly put in a care-team group
    assert not patient_list_visible_to(user=portal_user).exists()
    with pytest.raises(Http404):
        patient_get_for_user(user=portal_user, patient_id=patient.pk)


def test_patient_list_visible_to_inactive_user_sees_nothing(patient, treating_clinician):
    treating_clinician.is_active = False
    treating_clinician.save()
    assert not patient_list_visible_to(user=treating_clinician).exists()


def test_an_administrator_in_a_team_group_still_sees_no_chart(patient, care_team, admin_user):
    # Administrators cannot join a team; a membership made around the service (a group added
    # in the database) still opens nothing: the gate lets clinicians only.
    admin_user.groups.add(care_team.group)
    assert not patient_list_visible_to(user=admin_user).exists()
    with pytest.raises(Http404):
        patient_get_for_user(user=admin_user, patient_id=patient.pk)


def test_patient_get_for_user_returns_patient_and_sends_read(patient, treating_clinician, reads):
    assert patient_get_for_user(user=treating_clinician, patient_id=patient.pk) == patient
    assert reads[-1]["target"] == patient
    assert reads[-1]["patients"] == [patient]


def test_patient_get_for_user_missing_and_forbidden_are_the_same_404(patient, other_clinician):
    with pytest.raises(Http404) as forbidden:
        patient_get_for_user(user=other_clinician, patient_id=patient.pk)
    with pytest.raises(Http404) as missing:
        patient_get_for_user(user=other_clinician, patient_id=patient.pk + 1000)
    assert str(forbidden.value) == str(missing.value)


def test_patient_get_for_user_rejects_non_numeric_ids_as_404(treating_clinician):
    for bad in ("1 OR 1=1", "", None, "1.5"):
        with pytest.raises(Http404):
            patient_get_for_user(user=treating_clinician, patient_id=bad)


def test_patient_get_for_user_revocation_takes_effect_at_once(
    patient, care_team, treating_clinician, admin_user
):
    patient_get_for_user(user=treating_clinician, patient_id=patient.pk)
    care_team_remove_member(team=care_team, clinician=treating_clinician, revoked_by=admin_user)
    fresh = type(treating_clinician).objects.get(pk=treating_clinician.pk)  # the next request
    with pytest.raises(Http404):
        patient_get_for_user(user=fresh, patient_id=patient.pk)


def test_patient_get_for_user_inactive_patient_is_404(patient, treating_clinician):
    patient.is_active = False
    patient.save()
    with pytest.raises(Http404):
        patient_get_for_user(user=treating_clinician, patient_id=patient.pk)


def test_scoped_filters_children_to_visible_patients(
    patient, treating_clinician, other_clinician, make_course, make_lab_result
):
    from labs.models import LabResult
    from treatments.models import ChemoCycle, Course

    make_course(patient)
    make_lab_result(patient)
    other = PatientFactory.create()
    make_course(other)
    make_lab_result(other)
    assert list(scoped(Course, user=treating_clinician).values_list("patient", flat=True)) == [
        patient.pk
    ]
    assert scoped(ChemoCycle, user=treating_clinician).count() == 1
    assert scoped(LabResult, user=treating_clinician).get().patient == patient
    assert not scoped(LabResult, user=other_clinician).exists()


def test_course_get_for_user_parent_mine_child_theirs_is_404(
    patient, treating_clinician, make_course
):
    mine = make_course(patient)
    theirs = make_course(PatientFactory.create())
    assert (
        course_get_for_user(user=treating_clinician, patient_id=patient.pk, course_id=mine.pk)
        == mine
    )
    with pytest.raises(Http404):
        course_get_for_user(user=treating_clinician, patient_id=patient.pk, course_id=theirs.pk)


def test_cycle_get_for_user_child_of_other_patient_is_404(patient, treating_clinician, make_course):
    mine = make_course(patient).cycles.get()
    theirs = make_course(PatientFactory.create()).cycles.get()
    assert (
        cycle_get_for_user(user=treating_clinician, patient_id=patient.pk, cycle_id=mine.pk) == mine
    )
    with pytest.raises(Http404):
        cycle_get_for_user(user=treating_clinician, patient_id=patient.pk, cycle_id=theirs.pk)
    with pytest.raises(Http404):  # under the other patient's id: the parent is not mine
        cycle_get_for_user(
            user=treating_clinician, patient_id=theirs.course.patient_id, cycle_id=theirs.pk
        )


def test_lab_results_for_lists_one_patient_and_needs_access(
    patient, treating_clinician, other_clinician, make_lab_result
):
    result = make_lab_result(patient, value="0.8")
    make_lab_result(PatientFactory.create(), value="4.1")
    assert list(lab_results_for(user=treating_clinician, patient_id=patient.pk)) == [result]
    with pytest.raises(Http404):
        lab_results_for(user=other_clinician, patient_id=patient.pk)
    with pytest.raises(Http404):
        lab_result_get_for_user(
            user=other_clinician, patient_id=patient.pk, lab_result_id=result.pk
        )


def test_portal_patient_for_returns_own_record_only(patient, treating_clinician):
    portal_user = UserFactory.create()
    patient.portal_user = portal_user
    patient.save()
    assert portal_patient_for(user=portal_user) == patient
    with pytest.raises(Http404):
        portal_patient_for(user=treating_clinician)  # clinicians have no portal record
    with pytest.raises(Http404):
        portal_patient_for(user=UserFactory.create())  # a patient user with no record


def test_portal_lab_results_for_shows_only_released(patient, make_lab_result):
    portal_user = UserFactory.create()
    patient.portal_user = portal_user
    patient.save()
    released = make_lab_result(patient, released=True, value="2.3")
    make_lab_result(patient, released=False, value="0.4")
    assert list(portal_lab_results_for(user=portal_user)) == [released]


def test_phi_patient_paths_cover_every_model_linked_to_a_patient():
    """A new model with a path to Patient must be classified, or the gate cannot scope it."""

    def reaches_patient(model, depth: int = 0) -> bool:
        if model is Patient:
            return True
        if depth > 3:
            return False
        return any(
            f.many_to_one
            and f.related_model is not None
            and reaches_patient(f.related_model, depth + 1)
            for f in model._meta.get_fields()
            if getattr(f, "concrete", False)
        )

    unclassified = [
        model._meta.label
        for label in ("patients", "treatments", "labs")
        for model in apps.get_app_config(label).get_models()
        if reaches_patient(model)
        and model._meta.label not in PHI_PATIENT_PATHS
        and not model._meta.label.endswith("ObjectPermission")
    ]
    assert unclassified == []
    for label, path in PHI_PATIENT_PATHS.items():  # and every path resolves
        model = apps.get_model(label)
        model._default_manager.filter(**{f"{path}__pk" if path else "pk": 1}).exists()


def test_scoped_change_perm_follows_team(patient, treating_clinician, other_clinician):
    assert list(scoped(Patient, user=treating_clinician, perm=CHANGE)) == [patient]
    assert not scoped(Patient, user=other_clinician, perm=CHANGE).exists()
    assert not access_context.current().break_glass


def test_administrator_without_team_sees_no_chart(patient):
    administrator = AdministratorFactory.create()
    with pytest.raises(Http404):
        patient_get_for_user(user=administrator, patient_id=patient.pk)
    assert not patient_list_visible_to(user=administrator).exists()


def test_patient_get_for_user_logs_denial_as_denied_read(patient, other_clinician, reads):
    with pytest.raises(Http404):
        patient_get_for_user(user=other_clinician, patient_id=patient.pk)
    assert reads[-1]["outcome"] == "denied"
    assert reads[-1]["target"] is None
    assert reads[-1]["detail"] == {"requested_id": str(patient.pk)}


def test_the_gate_reads_the_patient_permission_ids_once_until_migrate_runs_again(
    treating_clinician, patient
):
    from django.core.management.sql import emit_post_migrate_signal
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from patients.selectors import VIEW, _patient_permission_id, patient_get_for_user

    assert _patient_permission_id(VIEW) is not None
    with CaptureQueriesContext(connection) as kept:
        patient_get_for_user(user=treating_clinician, patient_id=patient.pk)
    assert not any('"auth_permission"' in q["sql"] for q in kept.captured_queries)

    # migrate and flush may give the permissions new ids: they are read again, not trusted.
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    with CaptureQueriesContext(connection) as fresh:
        assert patient_get_for_user(user=treating_clinician, patient_id=patient.pk) == patient
    assert sum('"auth_permission"' in q["sql"] for q in fresh.captured_queries) == 1
