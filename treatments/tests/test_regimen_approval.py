"""A regimen version is approved by an oncologist and a pharmacist before anyone prescribes it.

ASCO/ONS chemotherapy safety standards: an order template is reviewed and approved by a
physician and a pharmacist. Before, an administrator's new version was offered the moment
"Offered for new courses" was ticked, and nobody clinical had checked its doses.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.models import AccessLog
from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import (
    AdministratorFactory,
    ClinicianFactory,
    sign_in,
)
from patients.tests.factories import BodyMeasurementFactory
from treatments.forms import CourseStartForm
from treatments.models import Regimen, RegimenApproval, RegimenDrug
from treatments.regimen_versions import (
    regimen_approve,
    regimen_missing_approvals,
    regimen_new_version,
)
from treatments.services import course_start

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-staple"  # UserFactory's


@pytest.fixture
def author(admin_user) -> User:
    return admin_user


@pytest.fixture
def draft(author) -> Regimen:
    """CHOP v2, made from the reference CHOP v1 by an administrator: nobody approved it."""
    return regimen_new_version(regimen=Regimen.objects.get(name="CHOP", version=1), by=author)


@pytest.fixture
def oncologist() -> User:
    return ClinicianFactory.create(first_name="Ona", last_name="Approverova")


@pytest.fixture
def pharmacist() -> User:
    return ClinicianFactory.create(
        discipline=User.Discipline.PHARMACIST, first_name="Phil", last_name="Checkwell"
    )


def _approve(regimen: Regimen, by: User, **overrides) -> RegimenApproval:
    kwargs = {"password": PASSWORD, "checked": True} | overrides
    return regimen_approve(regimen=regimen, by=by, **kwargs)


def test_a_new_version_cannot_be_prescribed_or_offered_until_both_approve(
    draft, oncologist, pharmacist, patient, treating_clinician
):
    assert regimen_missing_approvals(regimen=draft) == ["oncologist", "pharmacist"]
    draft.is_active = True
    with pytest.raises(ValidationError) as offered:
        draft.full_clean()  # the admin's "Offered for new courses" tick
    assert "approved" in str(offered.value.message_dict["is_active"])
    Regimen.objects.filter(pk=draft.pk).update(is_active=True)  # even if forced past the form
    draft.refresh_from_db()
    assert draft not in CourseStartForm().fields["regimen"].queryset
    with pytest.raises(ValidationError) as refused:
        course_start(
            patient=patient,
            regimen=draft,
            start_date=timezone.localdate(),
            intent="curative",
            created_by=treating_clinician,
        )
    assert "not been approved" in refused.value.message_dict["regimen"][0]

    _approve(draft, oncologist)
    draft.refresh_from_db()
    assert draft.approved_at is None
    assert regimen_missing_approvals(regimen=draft) == ["pharmacist"]
    _approve(draft, pharmacist, note="Checked against NCCN")
    draft.refresh_from_db()
    assert draft.approved_at is not None
    assert regimen_missing_approvals(regimen=draft) == []
    assert draft in CourseStartForm().fields["regimen"].queryset


def test_the_author_a_nurse_or_an_administrator_cannot_approve(draft, author, oncologist):
    nurse = ClinicianFactory.create(discipline=User.Discipline.NURSE)
    with pytest.raises(PermissionDenied):
        _approve(draft, nurse)
    with pytest.raises(PermissionDenied):
        _approve(draft, AdministratorFactory.create())
    # An oncologist who built the version does not approve it either.
    own = regimen_new_version(regimen=draft, by=oncologist)
    with pytest.raises(ValidationError, match="You built"):
        _approve(own, oncologist)
    assert not RegimenApproval.objects.exists()


def test_one_person_and_one_discipline_approve_once(draft, oncologist):
    _approve(draft, oncologist)
    with pytest.raises(ValidationError, match="approved .* already"):
        _approve(draft, oncologist)
    with pytest.raises(ValidationError, match="as oncologist already"):
        _approve(draft, ClinicianFactory.create())
    assert RegimenApproval.objects.filter(regimen=draft).count() == 1


def test_a_wrong_password_or_no_check_writes_nothing_and_is_logged(draft, pharmacist):
    with pytest.raises(ValidationError) as unchecked:
        _approve(draft, pharmacist, checked=False)
    assert "checked" in unchecked.value.message_dict
    with pytest.raises(ValidationError) as wrong:
        _approve(draft, pharmacist, password="not-mine")
    assert "password" in wrong.value.message_dict
    assert not RegimenApproval.objects.exists()
    failure = AccessLog.objects.get(action=AccessLog.Action.LOGIN_FAILED)
    assert failure.detail["door"] == "regimen approval"


def test_one_approval_freezes_the_version(draft, oncologist):
    drug = RegimenDrug.objects.filter(phase__regimen=draft).first()
    drug.dose = Decimal("751")
    drug.save()  # still a draft: editable
    _approve(draft, oncologist)
    drug.dose = Decimal("752")
    with pytest.raises(ValidationError, match="approved for prescribing"):
        drug.save()
    assert RegimenDrug.objects.get(pk=drug.pk).dose == Decimal("751")


def test_a_version_without_drugs_cannot_be_approved(author, oncologist):
    empty = Regimen.objects.create(name="Empty", version=1, created_by=author)
    with pytest.raises(ValidationError, match="finish it first"):
        _approve(empty, oncologist)


def test_the_library_in_use_when_approval_came_in_stays_prescribable():
    # Migration treatments 0012: the reference versions were offered, so they stay approved
    # (with no approval rows: the page says "approved before approvals were recorded").
    chop = Regimen.objects.get(name="CHOP", version=1)
    assert chop.approved_at is not None
    assert chop.offered
    assert not chop.approvals.exists()


# --- The pages -----------------------------------------------------------------------------


def test_the_library_lists_versions_awaiting_approval_and_patients_get_a_404(
    client, draft, oncologist
):
    sign_in(client, oncologist)
    page = client.get(reverse("treatments:regimen_library"))
    assert page.status_code == 200
    awaiting = page.content.split(b"All versions")[0]
    assert b"CHOP v2" in awaiting
    assert b"CHOP v1" not in awaiting
    detail = client.get(reverse("treatments:regimen_detail", args=[draft.pk]))
    assert b"cyclophosphamide" in detail.content.lower()
    assert b"Approve as oncologist" in detail.content

    client.logout()
    from oncoplanner.accounts.tests.factories import UserFactory

    sign_in(client, UserFactory.create())  # a patient's portal account
    assert client.get(reverse("treatments:regimen_library")).status_code == 404
    assert client.get(reverse("treatments:regimen_detail", args=[draft.pk])).status_code == 404


def test_approving_on_the_page_with_a_wrong_password_is_a_400_naming_the_field(
    client, draft, pharmacist
):
    sign_in(client, pharmacist)
    url = reverse("treatments:regimen_approve", args=[draft.pk])
    refused = client.post(url, {"checked": "on", "password": "nope"})
    assert refused.status_code == 400
    assert b"Your password was not accepted" in refused.content
    assert not RegimenApproval.objects.exists()

    done = client.post(url, {"checked": "on", "password": PASSWORD, "note": "Doses checked"})
    assert done.status_code == 302
    approval = RegimenApproval.objects.get()
    assert (approval.approved_by, approval.discipline, approval.note) == (
        pharmacist,
        "pharmacist",
        "Doses checked",
    )
    page = client.get(reverse("treatments:regimen_detail", args=[draft.pk]))
    assert b"You approved this version; it awaits the oncologist" in page.content


def test_a_nurse_posting_an_approval_gets_a_403(client, draft):
    nurse = ClinicianFactory.create(discipline=User.Discipline.NURSE)
    sign_in(client, nurse)
    url = reverse("treatments:regimen_approve", args=[draft.pk])
    response = client.post(url, {"checked": "on", "password": PASSWORD})
    assert response.status_code == 403
    assert not RegimenApproval.objects.exists()


def test_the_course_form_offers_an_approved_version_once_offered(
    client, draft, oncologist, pharmacist, patient, treating_clinician
):
    BodyMeasurementFactory.create(patient=patient)
    _approve(draft, oncologist)
    _approve(draft, pharmacist)
    draft.refresh_from_db()
    draft.is_active = True
    draft.full_clean()
    draft.save()
    sign_in(client, treating_clinician)
    form = client.get(reverse("treatments:course_create", args=[patient.pk]))
    assert f'value="{draft.pk}"'.encode() in form.content


@pytest.mark.parametrize("door", ["form", "save"])
def test_a_vinca_alkaloid_is_never_ordered_intrathecally(draft, door):
    # A reviewer saved vincristine... intrathecal in admin with no warning: a never event.
    vincristine = RegimenDrug.objects.get(phase__regimen=draft, drug__name="vincristine")
    vincristine.route = "IT"
    with pytest.raises(ValidationError) as refused:
        vincristine.full_clean() if door == "form" else vincristine.save()
    assert "fatal if given intrathecally" in refused.value.message_dict["route"][0]
    assert RegimenDrug.objects.get(pk=vincristine.pk).route == "IV"


def test_wrong_approval_passwords_pause_approving_but_not_co_signing_at_the_chair(
    draft, pharmacist
):
    # A reviewer's typos on the approval page had paused their co-signing of chemotherapy.
    from oncoplanner.accounts.cosign import COSIGN_FAILURE_LIMIT, colleague_cosign

    messages = []
    for _ in range(COSIGN_FAILURE_LIMIT):
        with pytest.raises(ValidationError) as wrong:
            _approve(draft, pharmacist, password="typo")
        messages.append(wrong.value.message_dict["password"][0])
    assert "1 more wrong password will pause this" in messages[-2]
    with pytest.raises(ValidationError, match="Signing regimen approvals is paused"):
        _approve(draft, pharmacist)  # even the right password, until the pause ends
    colleague_cosign(checker=pharmacist, password=PASSWORD, field="checker_password")


def test_a_tenfold_anthracycline_is_shown_against_v1_and_its_limit_and_not_approved(
    client, draft, oncologist
):
    # A reviewer set doxorubicin 600 mg/m2 (for 60) in a new AC-T... here CHOP v2: 50 -> 500.
    # Both approvals went through: nothing on the page showed the change or the limit.
    doxorubicin = RegimenDrug.objects.get(phase__regimen=draft, drug__name="doxorubicin")
    doxorubicin.dose = Decimal("500")
    doxorubicin.save()
    sign_in(client, oncologist)
    page = client.get(reverse("treatments:regimen_detail", args=[draft.pk])).content.decode()
    assert "was 50 mg/m² (BSA), IV, day 1 in v1" in page
    assert "the whole plan gives 3000 mg/m² at 100%, of a lifetime limit of 450" in page
    assert "above the limit" in page
    with pytest.raises(ValidationError, match="above its lifetime limit of 450 mg/m²"):
        _approve(draft, oncologist)
    assert not RegimenApproval.objects.exists()


def test_a_nurse_is_told_who_approves(client, draft):
    sign_in(client, ClinicianFactory.create(discipline=User.Discipline.NURSE))
    page = client.get(reverse("treatments:regimen_detail", args=[draft.pk]))
    assert b"Only an oncologist and a pharmacist approve regimen versions." in page.content
    assert b"Approve as" not in page.content


def test_a_non_medical_prescriber_approves_as_their_discipline_never_as_the_oncologist(
    client, draft
):
    # Prescribing rights (User.sact_prescriber) do not make a pharmacist the oncologist.
    prescribing_pharmacist = ClinicianFactory.create(
        discipline=User.Discipline.PHARMACIST, sact_prescriber=True
    )
    sign_in(client, prescribing_pharmacist)
    page = client.get(reverse("treatments:regimen_detail", args=[draft.pk]))
    assert b"Approve as pharmacist" in page.content
    assert b"Approve as oncologist" not in page.content

    approval = _approve(draft, prescribing_pharmacist)
    assert approval.discipline == RegimenApproval.Discipline.PHARMACIST
    assert regimen_missing_approvals(regimen=draft) == ["oncologist"]
    another = ClinicianFactory.create(discipline=User.Discipline.PHARMACIST, sact_prescriber=True)
    with pytest.raises(ValidationError, match="as pharmacist already"):
        _approve(draft, another)
    with pytest.raises(PermissionDenied):
        _approve(
            draft,
            ClinicianFactory.create(discipline=User.Discipline.NURSE, sact_prescriber=True),
        )
    draft.refresh_from_db()
    assert draft.approved_at is None
    assert RegimenApproval.objects.filter(regimen=draft).count() == 1
