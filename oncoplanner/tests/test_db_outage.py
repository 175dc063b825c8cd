"""Database outage: 503 + Retry-After, never a 500 or a stack trace (SECURITY.md figure 18)."""

from __future__ import annotations

import json
import logging
from typing import NoReturn

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import InterfaceError, OperationalError, connection, transaction
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from oncoplanner.urls import urlpatterns as project_urlpatterns


def _refused(request: HttpRequest) -> NoReturn:
    raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: refused')


def _terminated(request: HttpRequest) -> NoReturn:
    raise InterfaceError("connection already closed")


def _bug(request: HttpRequest) -> NoReturn:
    raise ValueError("a plain bug stays a 500")


def _runaway_query(request: HttpRequest) -> HttpResponse:
    # A statement that outlives the server's statement_timeout is cancelled by PostgreSQL.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = '100ms'")
        cursor.execute("SELECT pg_sleep(3)")
    return HttpResponse("finished")


urlpatterns = [
    path("page/", _refused),
    path("api/v1/things/", _refused),
    path("graphql/", _refused),
    path("terminated/", _terminated),
    path("bug/", _bug),
    path("runaway/", _runaway_query),
    *project_urlpatterns,  # the middleware reverses the login URL
]

pytestmark = [pytest.mark.urls("oncoplanner.tests.test_db_outage")]


def _assert_outage(response: HttpResponse) -> str:
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.content.decode()
    assert "Traceback" not in body
    assert "OperationalError" not in body
    assert "5432" not in body  # nothing about the database server reaches the client
    return body


def test_db_outage_page_gets_503_with_retry_after(client: Client) -> None:
    body = _assert_outage(client.get("/page/"))
    assert "Temporarily unavailable" in body


def test_db_outage_api_gets_json_503(client: Client) -> None:
    response = client.get("/api/v1/things/")
    body = _assert_outage(response)
    assert response.headers["Content-Type"].startswith("application/json")
    assert "try again" in json.loads(body)["detail"]


def test_db_outage_graphql_gets_json_errors(client: Client) -> None:
    response = client.post("/graphql/", data={"query": "{ x }"}, content_type="application/json")
    body = _assert_outage(response)
    assert json.loads(body)["data"] is None
    assert json.loads(body)["errors"][0]["message"]


def test_db_outage_htmx_gets_short_plain_text(client: Client) -> None:
    response = client.get("/page/", headers={"HX-Request": "true"})
    body = _assert_outage(response)
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "<" not in body


def test_db_outage_interface_error_is_503(client: Client) -> None:
    _assert_outage(client.get("/terminated/"))


def test_db_outage_is_logged(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="oncoplanner.db_outage"):
        client.get("/page/")
    assert "database unavailable: GET /page/ -> 503 (OperationalError" in caplog.text


def test_db_outage_other_errors_stay_500() -> None:
    response = Client(raise_request_exception=False).get("/bug/")
    assert response.status_code == 500
    assert "Retry-After" not in response.headers


def test_db_outage_in_middleware_is_503(
    db: None, monkeypatch: pytest.MonkeyPatch, settings: object
) -> None:
    # The session (and with it the user) is loaded by middleware, not by the view: an outage
    # there must be a 503 too.
    def refuse(self: SessionStore) -> NoReturn:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(SessionStore, "load", refuse)
    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = "x" * 32
    _assert_outage(client.get("/page/"))


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_db_outage_statement_timeout_is_503(client: Client) -> None:
    _assert_outage(client.get("/runaway/"))


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_db_outage_postgres_connections_carry_a_statement_timeout() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        (value,) = cursor.fetchone()
    assert value == "15s"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True
