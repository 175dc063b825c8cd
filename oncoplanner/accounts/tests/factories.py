from __future__ import annotations

from typing import Any

import factory
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.test import Client
from factory.django import DjangoModelFactory

from oncoplanner.accounts.mfa import mfa_required_for
from oncoplanner.accounts.models import User


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    role = User.Role.PATIENT
    password = factory.django.Password("correct-horse-battery-staple")

    @factory.post_generation
    def totp(obj: User, create: bool, extracted: Any, **kwargs: Any) -> None:  # noqa: N805
        """An activated authenticator app, by default for the users who must have one
        (clinicians, administrators, staff; see oncoplanner.accounts.mfa) and not for patients;
        `totp=False` / `totp=True` overrides. The secret is left on `user.totp_secret` so tests
        can compute codes."""
        wanted = mfa_required_for(obj) if extracted is None else extracted
        if create and wanted:
            obj.totp_secret = generate_totp_secret()  # type: ignore[attr-defined]
            TOTP.activate(obj, obj.totp_secret)  # type: ignore[attr-defined]


class ClinicianFactory(UserFactory):
    role = User.Role.CLINICIAN
    discipline = User.Discipline.ONCOLOGIST


class AdministratorFactory(UserFactory):
    role = User.Role.ADMINISTRATOR
    is_staff = True


def sign_in(client: Client, user: User) -> Client:
    """Sign `user` in on a test client past the MFA enrolment step (tested in
    oncoplanner.accounts), as after a TOTP login."""
    client.force_login(user)
    session = client.session
    session["_op_mfa_enrolled"] = True
    session.save()
    return client
