"""Session lifetime (SECURITY.md #10): idle 15 min that background requests cannot extend,
12 h absolute, key rotated at login, dead after logout, deactivation and password change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import RequestFactory
from django.urls import reverse

from oncoplanner.accounts.middleware import (
    LAST_ACTIVITY_KEY,
    LOGIN_AT_KEY,
    is_background_request,
)
from oncoplanner.accounts.models import User
from oncoplanner.accounts.tests.conftest import PASSWORD, password_login
from oncoplanner.accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
LOGIN = reverse("account_login")
BACKGROUND = {"X-OncoPlanner-Background": "1", "HX-Request": "true"}


@pytest.fixture
def traveller():
    with time_machine.travel(NOON, tick=False) as t:
        yield t


@pytest.fixture
def logged_in(client, traveller):
    user = UserFactory.create()
    assert password_login(client, user.username).status_code == 302
    return user


def _is_logged_out(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_session_idle_timeout_setting_is_fifteen_minutes() -> None:
    assert settings.SESSION_IDLE_TIMEOUT_SECONDS == 15 * 60


def test_session_survives_fourteen_idle_minutes(client, logged_in, traveller) -> None:
    traveller.shift(timedelta(minutes=14, seconds=59))
    assert client.get("/").status_code == 200


def test_session_ends_after_fifteen_idle_minutes(client, logged_in, traveller) -> None:
    traveller.shift(timedelta(minutes=15))
    response = client.get("/")
    assert _is_logged_out(response)
    assert response["Location"] == f"{LOGIN}?next=/"
    traveller.shift(timedelta(seconds=1))
    assert _is_logged_out(client.get("/"))


def test_session_activity_resets_the_idle_clock(client, logged_in, traveller) -> None:
    for _ in range(4):
        traveller.shift(timedelta(minutes=10))
        assert client.get("/").status_code == 200


def test_session_is_not_rewritten_by_clicks_within_half_a_minute(
    client, logged_in, traveller
) -> None:
    traveller.shift(timedelta(seconds=10))
    client.get("/")
    assert client.session[LAST_ACTIVITY_KEY] == NOON.timestamp()  # no session write
    traveller.shift(timedelta(seconds=20))
    client.get("/")
    assert client.session[LAST_ACTIVITY_KEY] == NOON.timestamp() + 30
    # The clock lags the last click by under 30 s, so an idle session can end up to 30 s
    # early, never late: 15 min after the stamp it is over.
    traveller.shift(timedelta(seconds=29))
    client.get("/")
    traveller.shift(timedelta(minutes=15) - timedelta(seconds=29))
    assert _is_logged_out(client.get("/"))


def test_session_background_header_does_not_extend_idle(client, logged_in, traveller) -> None:
    for _ in range(14):
        traveller.shift(timedelta(minutes=1))
        assert client.get("/", headers=BACKGROUND).status_code == 200
    traveller.shift(timedelta(minutes=1))
    response = client.get("/", headers=BACKGROUND)
    assert response["HX-Redirect"].startswith(LOGIN)
    assert "_auth_user_id" not in client.session


def test_session_stream_requests_do_not_extend_idle(client, logged_in, traveller) -> None:
    traveller.shift(timedelta(minutes=10))
    client.get("/stream/patients/1/")  # no route yet: the middleware still runs first
    assert client.session[LAST_ACTIVITY_KEY] == NOON.timestamp()
    traveller.shift(timedelta(minutes=5))
    assert client.get("/stream/patients/1/").status_code == 401
    assert _is_logged_out(client.get("/"))


def test_session_plain_htmx_click_counts_as_activity(client, logged_in, traveller) -> None:
    traveller.shift(timedelta(minutes=10))
    assert client.get("/", headers={"HX-Request": "true"}).status_code == 200
    traveller.shift(timedelta(minutes=10))
    assert client.get("/").status_code == 200


def test_session_htmx_request_after_expiry_gets_hx_redirect(client, logged_in, traveller) -> None:
    traveller.shift(timedelta(minutes=20))
    response = client.get(
        "/", headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/patients/7/"}
    )
    assert response.status_code == 200
    assert response.content == b""
    assert response["HX-Redirect"] == f"{LOGIN}?next=/patients/7/"


def test_session_absolute_lifetime_is_twelve_hours(client, logged_in, traveller) -> None:
    for _ in range(11 * 6 + 5):  # busy all day: a click every 10 minutes for 11 h 50 min
        traveller.shift(timedelta(minutes=10))
        assert client.get("/").status_code == 200
    traveller.shift(timedelta(minutes=10))  # 12 h after login
    assert _is_logged_out(client.get("/"))


def test_session_without_login_clocks_is_refused(client, logged_in) -> None:
    session = client.session
    del session[LOGIN_AT_KEY]
    session.save()
    assert _is_logged_out(client.get("/"))


def test_session_key_rotates_at_login(client) -> None:
    user = UserFactory.create()
    session = client.session
    session["before_login"] = "anonymous visit"
    session.save()
    anonymous_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    password_login(client, user.username)
    logged_in_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert logged_in_key != anonymous_key
    assert not Session.objects.filter(session_key=anonymous_key).exists()


def test_session_old_cookie_is_dead_after_logout(client, logged_in) -> None:
    old_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    client.post(reverse("account_logout"))
    assert not Session.objects.filter(session_key=old_key).exists()
    client.cookies[settings.SESSION_COOKIE_NAME] = old_key  # replay the stolen cookie
    assert _is_logged_out(client.get("/"))


def test_session_deactivated_user_is_logged_out_everywhere(client, logged_in) -> None:
    other_device = client.__class__()
    password_login(other_device, logged_in.username)
    logged_in.is_active = False
    logged_in.save()
    assert not Session.objects.exists()
    assert _is_logged_out(client.get("/"))
    assert _is_logged_out(other_device.get("/"))
    # Reactivating does not bring the old sessions back.
    logged_in.is_active = True
    logged_in.save()
    assert _is_logged_out(client.get("/"))


def test_session_inactive_user_is_refused_even_without_the_receiver(client, logged_in) -> None:
    # A bulk update sends no signal; Django's ModelBackend.get_user still refuses the user.
    User.objects.filter(pk=logged_in.pk).update(is_active=False)
    assert _is_logged_out(client.get("/"))


def test_session_password_change_ends_every_session(client, logged_in) -> None:
    other_device = client.__class__()
    password_login(other_device, logged_in.username)
    new_password = "Lindisfarne-gospels-1984"
    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": new_password, "password2": new_password},
    )
    assert response.status_code == 302
    assert _is_logged_out(client.get("/"))
    assert _is_logged_out(other_device.get("/"))


def test_session_password_set_elsewhere_ends_sessions(client, logged_in) -> None:
    # An administrator resetting the password in Django admin: the session auth hash changes.
    logged_in.set_password("Lindisfarne-gospels-1984")
    logged_in.save()
    assert _is_logged_out(client.get("/"))


@pytest.mark.parametrize(
    ("path", "headers", "background"),
    [
        ("/stream/patients/4/", {}, True),
        ("/patients/4/labs/", {"X-OncoPlanner-Background": "1"}, True),
        ("/patients/4/labs/", {"HX-Request": "true"}, False),
        ("/patients/4/labs/", {"X-OncoPlanner-Background": "0"}, False),
        ("/patients/4/", {}, False),
    ],
)
def test_is_background_request_rule(path, headers, background) -> None:
    request = RequestFactory().get(path, headers=headers)
    assert is_background_request(request) is background


def test_session_logged_out_htmx_request_gets_hx_redirect(client) -> None:
    response = client.get("/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"{LOGIN}?next=/"
