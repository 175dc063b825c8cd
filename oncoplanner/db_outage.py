"""A database outage answers 503 with Retry-After, never a 500 with a stack trace.

When PostgreSQL is down, restarting, refusing connections, or a statement runs past
DB_STATEMENT_TIMEOUT_MS, psycopg raises and Django wraps it as django.db.OperationalError (or
InterfaceError for a connection that died under us). Nothing was written: every write is one
transaction with its access-log row, so the transaction rolled back with the error. The right
answer is "try again shortly" (SECURITY.md figure 18): 503, `Retry-After: 5`, a short plain
body (JSON for /api/ and /graphql), and one log line for the operators.

Two ways an error reaches us:
- from a view: `process_exception` turns it into the 503 before Django's 500 handling runs;
- from another middleware (the session or the user is loaded by middleware, and the session is
  saved on the way out): Django turns those into a 500 response inside that middleware's layer,
  so the exception never reaches an outer try/except. Django sends `got_request_exception`
  while handling it; our receiver notes the error on the request, and this middleware (placed
  near the top of MIDDLEWARE) swaps the 500 for the 503 on the way out.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("oncoplanner.db_outage")

RETRY_AFTER_SECONDS = 5
DB_ERRORS = (OperationalError, InterfaceError)
_MARK = "_oncoplanner_db_outage_error"
MESSAGE = "The service is briefly unavailable (database). Please try again in a few seconds."

_HTML = (
    "<!doctype html><html lang=en><meta charset=utf-8>"
    "<title>Temporarily unavailable</title>"
    "<h1>Temporarily unavailable</h1><p>{message}</p></html>"
)


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", "/graphql"))


def outage_response(request: HttpRequest) -> HttpResponse:
    """The 503 itself: no template (templates and context processors may need the database)."""
    if _wants_json(request):
        if request.path.startswith("/graphql"):
            body: dict[str, Any] = {"errors": [{"message": MESSAGE}], "data": None}
        else:
            body = {"detail": MESSAGE}
        response = HttpResponse(
            json.dumps(body), status=503, content_type="application/json; charset=utf-8"
        )
    elif request.headers.get("HX-Request") == "true":
        response = HttpResponse(MESSAGE, status=503, content_type="text/plain; charset=utf-8")
    else:
        response = HttpResponse(_HTML.format(message=MESSAGE), status=503)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    # An error page for one user must not be replayed by a cache to another, and needs no
    # scripts or styles (the CSP middleware sits further in and does not see this response).
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    return response


def _log(request: HttpRequest, error: BaseException) -> None:
    # The message of a database error names the host and the failing statement kind, never
    # row values; the traceback stays out of the response but goes to the operators' log.
    logger.error(
        "database unavailable: %s %s -> 503 (%s: %s)",
        request.method,
        request.path,
        type(error).__name__,
        str(error).strip().splitlines()[0] if str(error).strip() else "",
    )


def _note_db_error(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """got_request_exception receiver: remember a database error raised outside a view."""
    error = sys.exc_info()[1]
    if request is not None and isinstance(error, DB_ERRORS):
        setattr(request, _MARK, error)


got_request_exception.connect(_note_db_error, dispatch_uid="oncoplanner.db_outage")


class DatabaseOutageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            response = self.get_response(request)
        except DB_ERRORS as error:  # only if Django's own conversion was bypassed
            _log(request, error)
            return outage_response(request)
        error = getattr(request, _MARK, None)
        if error is not None and response.status_code >= 500:
            _log(request, error)
            return outage_response(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DB_ERRORS):
            _log(request, exception)
            return outage_response(request)
        return None
