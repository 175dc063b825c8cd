"""The data dictionary and ER diagram pages: staff only (clinicians, administrators)."""

from __future__ import annotations

import pytest
from django.test import Client

from oncoplanner.accounts.tests.factories import (
    AdministratorFactory,
    ClinicianFactory,
    UserFactory,
)
from oncoplanner.tests.graphql_support import login

pytestmark = pytest.mark.django_db

PAGES = ("/docs/data-dictionary/", "/docs/er-diagram/")


@pytest.mark.parametrize("url", PAGES)
@pytest.mark.parametrize("factory", [ClinicianFactory, AdministratorFactory])
def test_views_staff_see_the_pages(client: Client, url: str, factory) -> None:
    response = login(client, factory.create()).get(url)
    assert response.status_code == 200


@pytest.mark.parametrize("url", PAGES)
def test_views_patients_get_404(client: Client, url: str) -> None:
    response = login(client, UserFactory.create()).get(url)
    assert response.status_code == 404


@pytest.mark.parametrize("url", PAGES)
def test_views_anonymous_is_sent_to_login(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("url", PAGES)
def test_views_post_is_not_allowed(client: Client, url: str) -> None:
    response = login(client, ClinicianFactory.create()).post(url)
    assert response.status_code == 405


def test_views_data_dictionary_lists_models_fields_and_help_text(client: Client) -> None:
    html = login(client, ClinicianFactory.create()).get(PAGES[0]).content.decode()
    assert 'id="Patient"' in html
    assert "<code>medical_history</code>" in html
    assert "Relevant past medical history." in html  # the field's help_text
    assert "password" not in html


def test_views_er_diagram_shows_mermaid_source_as_text(client: Client) -> None:
    html = login(client, ClinicianFactory.create()).get(PAGES[1]).content.decode()
    assert '<pre class="card" id="er-diagram">erDiagram' in html
    assert "Patient ||--o{ Course : &quot;patient&quot;" in html
    assert "<script>" not in html
