from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from labs.models import LabResult
from labs.rules import interpretation_flag
from labs.services import applied_range_for
from oncoplanner.accounts.models import User
from oncoplanner.demo.builder import DemoClinic
from patients.models import Patient
from treatments.models import Administration, ChemoCycle, Course

pytestmark = pytest.mark.django_db


def _seed(*args: str) -> None:
    call_command("seed_demo", "--allow-production", *args, stdout=open("/dev/null", "w"))  # noqa: SIM115


def test_seed_demo_builds_a_clinic_through_the_services_and_is_safe_to_run_twice():
    _seed("--patients", "4")
    assert Patient.objects.count() == 4
    assert User.objects.filter(role="clinician").count() == 5
    assert Course.objects.count() == 4
    first_counts = (LabResult.objects.count(), Administration.objects.count())
    assert first_counts[0] > 0
    # Every given cycle's drugs carry their dose inputs (the services computed them).
    for administration in Administration.objects.all():
        assert administration.inputs
        assert administration.verified_by_id != administration.administered_by_id

    _seed("--patients", "4")
    assert Patient.objects.count() == 4
    assert (LabResult.objects.count(), Administration.objects.count()) == first_counts


def test_seed_demo_patients_have_a_date_of_diagnosis_before_their_course_starts():
    _seed("--patients", "4")
    clinic = DemoClinic(today=timezone.localdate())
    teams = {team.name: team for team in clinic_teams()}
    clinic.build_bulk(4, 2, teams, User.objects.get(username="admin"), history_days=35)
    assert Patient.objects.count() == 6
    for patient in Patient.objects.all():
        first_start = min(c.start_date for c in patient.courses.all())
        assert patient.date_of_birth < patient.diagnosed_on < first_start, patient.mrn
        assert patient.diagnosed_on <= timezone.localdate(), patient.mrn


def test_seed_demo_if_empty_leaves_existing_data(patient):
    _seed("--patients", "2", "--if-empty")
    assert Patient.objects.count() == 1


def test_seed_demo_refuses_without_debug_or_explicit_flag():
    with pytest.raises(CommandError, match="DJANGO_DEBUG"):
        call_command("seed_demo", "--patients", "1")


def test_bulk_patients_get_labs_with_flags_from_the_same_rule_and_care_team_access():
    _seed("--patients", "1")
    clinic = DemoClinic(today=timezone.localdate())
    teams = {team.name: team for team in clinic_teams()}
    admin = User.objects.get(username="admin")
    built = clinic.build_bulk(1, 3, teams, admin, history_days=35)
    assert built == 3
    bulk = Patient.objects.exclude(mrn="DEMO-000001")
    assert bulk.count() == 3
    results = LabResult.objects.filter(patient__in=bulk).select_related("test")
    assert results.count() >= 3 * 5 * 4  # five weekly draws of four counts at least
    for result in results[:50]:
        assert result.flag == interpretation_flag(
            result.value,
            applied_range_for(
                test=result.test, patient=result.patient, collected_at=result.collected_at
            ),
        )
    assert ChemoCycle.objects.filter(course__patient__in=bulk).exists()
    gi_nurse = User.objects.get(username="nurse.lindqvist")
    visible = [p for p in bulk if gi_nurse.has_perm("patients.view_patient", p)]
    assert visible == [p for p in bulk if p.care_team.name == "GI oncology"]


def clinic_teams():
    from patients.models import CareTeam

    return CareTeam.objects.all()


@pytest.mark.django_db
def test_seed_demo_if_empty_says_when_the_demo_labs_have_gone_old(settings):
    import datetime as dt
    from io import StringIO

    from labs.tests.factories import LabResultFactory

    settings.DEBUG = True
    old = LabResultFactory.create(collected_at=timezone.now() - dt.timedelta(days=5))
    out = StringIO()
    call_command("seed_demo", "--if-empty", stdout=out)
    assert "demo data left as it is" in out.getvalue()
    assert "For a fresh demo, delete db.sqlite3" in out.getvalue()

    old.collected_at = timezone.now() - dt.timedelta(hours=3)
    old.save()
    out = StringIO()
    call_command("seed_demo", "--if-empty", stdout=out)
    assert "For a fresh demo" not in out.getvalue()


def test_seed_demo_gives_every_team_fictional_numbers_and_keeps_numbers_set_by_admin():
    from oncoplanner.demo.people import BREAST_LYMPHOMA_TEAM, GI_TEAM, TEAM_PHONES
    from patients.models import CareTeam
    from patients.services import care_team_create

    # A demo built before teams had numbers, and a number an administrator has already set.
    care_team_create(name=GI_TEAM)
    care_team_create(name=BREAST_LYMPHOMA_TEAM, phone_24h="020 7946 0777")
    _seed("--patients", "1")
    gi = CareTeam.objects.get(name=GI_TEAM)
    assert (gi.phone_daytime, gi.phone_24h) == TEAM_PHONES[GI_TEAM]
    assert gi.phone_24h_uri == "tel:02079460999"
    breast = CareTeam.objects.get(name=BREAST_LYMPHOMA_TEAM)
    assert (breast.phone_daytime, breast.phone_24h) == ("", "020 7946 0777")
    for team in (gi, breast):
        team.full_clean()  # valid numbers
