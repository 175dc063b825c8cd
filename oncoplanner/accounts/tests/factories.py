from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

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


class ClinicianFactory(UserFactory):
    role = User.Role.CLINICIAN
    discipline = User.Discipline.ONCOLOGIST


class AdministratorFactory(UserFactory):
    role = User.Role.ADMINISTRATOR
    is_staff = True
