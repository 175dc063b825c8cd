from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.test import RequestFactory
from django.urls import reverse

from audit.models import AccessLog
from audit.services import access_log_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def row(patient) -> AccessLog:
    return access_log_record(
        action=AccessLog.Action.READ,
        patient_ids=[patient.pk],
        object_type="Patient",
        object_id=patient.pk,
    )


def _admin_reads():
    return AccessLog.objects.filter(object_type="AccessLog")


def test_accesslog_admin_grants_no_add_change_or_delete_even_to_superuser(admin_user):
    assert admin_user.is_superuser
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    model_admin = site._registry[AccessLog]
    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert model_admin.get_actions(request) == {}


def test_accesslog_admin_add_and_delete_pages_are_refused(client, admin_user, row):
    client.force_login(admin_user)
    assert client.get(reverse("admin:audit_accesslog_add")).status_code == 403
    delete = reverse("admin:audit_accesslog_delete", args=[row.pk])
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert AccessLog.objects.filter(pk=row.pk).exists()


def test_accesslog_admin_detail_is_read_only_and_logs_its_read(client, admin_user, row):
    client.force_login(admin_user)
    url = reverse("admin:audit_accesslog_change", args=[row.pk])
    response = client.get(url)
    assert response.status_code == 200
    assert b'name="_save"' not in response.content
    read = _admin_reads().get()
    assert (read.action, read.object_id, read.user_id) == ("read", str(row.pk), admin_user.pk)
    assert read.surface == "admin"
    # A POST to the change page changes nothing (no change permission).
    assert client.post(url, {"username": "someone-else"}).status_code == 403
    row.refresh_from_db()
    assert row.username == ""


def test_accesslog_admin_changelist_filters_search_and_logs_its_read(client, admin_user, row):
    client.force_login(admin_user)
    url = reverse("admin:audit_accesslog_changelist")
    response = client.get(url, {"action__exact": "read", "q": str(row.object_id)})
    assert response.status_code == 200
    assert b'name="action"' not in response.content  # no bulk actions at all
    listed = _admin_reads().get()
    assert listed.action == AccessLog.Action.LIST
    assert "action__exact=read" in listed.detail["query"]


def test_accesslog_admin_hidden_from_clinicians(client, treating_clinician, row):
    client.force_login(treating_clinician)
    response = client.get(reverse("admin:audit_accesslog_changelist"))
    assert response.status_code in {302, 403, 404}
    assert not _admin_reads().exists()


def test_accesslog_admin_says_whether_a_row_is_sealed(client, admin_user, row):
    from audit.services import access_log_seal

    client.force_login(admin_user)
    url = reverse("admin:audit_accesslog_change", args=[row.pk])
    assert b"not sealed yet" in client.get(url).content
    listing = client.get(reverse("admin:audit_accesslog_changelist")).content.decode()
    assert "Hash chain" in listing
    assert "not sealed yet" in listing

    access_log_seal()
    row.refresh_from_db()
    page = client.get(url).content.decode()
    assert f"sealed, #{row.seq}" in page
    assert "not sealed yet" not in page
