"""Non-medical SACT prescribers (User.sact_prescriber): nurse and pharmacist independent
prescribers the trust authorised prescribe cycles after an oncologist's decision to treat
(BOPA/UKONS guidance). The flag means nothing on anyone else, so it cannot be set on them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.factories import (
    AdministratorFactory,
    ClinicianFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("discipline", [User.Discipline.NURSE, User.Discipline.PHARMACIST])
def test_a_nurse_or_pharmacist_may_be_a_non_medical_prescriber(discipline):
    user = ClinicianFactory.create(discipline=discipline, sact_prescriber=True)
    user.full_clean()
    assert user.may_prescribe_cycles
    assert not user.may_decide_to_treat  # starting and stopping a course stay the oncologist's
    assert not user.is_oncologist


def test_without_the_flag_a_nurse_or_pharmacist_prescribes_nothing():
    for discipline in (User.Discipline.NURSE, User.Discipline.PHARMACIST):
        user = ClinicianFactory.create(discipline=discipline)
        assert not user.sact_prescriber  # nobody gains prescribing by default
        assert not user.may_prescribe_cycles
        assert not user.may_decide_to_treat


def test_an_oncologist_decides_to_treat_and_prescribes_cycles_without_the_flag():
    oncologist = ClinicianFactory.create()
    assert oncologist.is_oncologist
    assert oncologist.may_decide_to_treat
    assert oncologist.may_prescribe_cycles


def test_clean_refuses_the_flag_on_an_oncologist_naming_the_field():
    oncologist = ClinicianFactory.build(sact_prescriber=True)
    with pytest.raises(ValidationError) as refused:
        oncologist.full_clean()
    assert refused.value.message_dict["sact_prescriber"] == [
        "An oncologist prescribes anyway: non-medical SACT prescriber is for nurse and "
        "pharmacist independent prescribers."
    ]


@pytest.mark.parametrize(
    "build",
    [
        lambda: UserFactory.build(sact_prescriber=True),
        lambda: AdministratorFactory.build(sact_prescriber=True),
    ],
    ids=["patient", "administrator"],
)
def test_clean_refuses_the_flag_on_a_patient_or_an_administrator(build):
    with pytest.raises(ValidationError) as refused:
        build().full_clean()
    (message,) = refused.value.message_dict["sact_prescriber"]
    assert message.startswith("Only a nurse or a pharmacist clinician can be")


def test_a_prescribing_pharmacist_made_an_oncologist_must_drop_the_flag():
    user = ClinicianFactory.create(discipline=User.Discipline.PHARMACIST, sact_prescriber=True)
    user.discipline = User.Discipline.ONCOLOGIST
    with pytest.raises(ValidationError) as refused:
        user.full_clean()
    assert "sact_prescriber" in refused.value.message_dict
    user.sact_prescriber = False
    user.full_clean()


@pytest.mark.parametrize(
    "fields",
    [
        {"role": User.Role.CLINICIAN, "discipline": User.Discipline.ONCOLOGIST},
        {"role": User.Role.PATIENT, "discipline": ""},
        {"role": User.Role.ADMINISTRATOR, "discipline": ""},
    ],
    ids=["oncologist", "patient", "administrator"],
)
def test_the_database_refuses_the_flag_past_clean(fields):
    user = UserFactory.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=user.pk).update(sact_prescriber=True)


def test_the_user_admin_edits_and_filters_the_flag(client, login, admin_user):
    nmp = ClinicianFactory.create(
        discipline=User.Discipline.NURSE, sact_prescriber=True, username="nurse.nmp"
    )
    ClinicianFactory.create(discipline=User.Discipline.NURSE, username="nurse.plain")
    login(client, admin_user)
    change = client.get(reverse("admin:accounts_user_change", args=[nmp.pk])).content.decode()
    assert 'name="sact_prescriber"' in change
    assert "Non-medical SACT prescriber" in change
    listed = client.get(
        reverse("admin:accounts_user_changelist"), {"sact_prescriber__exact": "1"}
    ).content.decode()
    assert "nurse.nmp" in listed
    assert "nurse.plain" not in listed
