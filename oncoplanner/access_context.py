"""Who is acting, through which door, from where: set once per request, read by audit receivers.

Receivers never need the request (STYLE.md): the middleware (pages, fragments, admin), and the
API, GraphQL and stream entry points set the context; management commands use `acting_as`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from oncoplanner.accounts.models import User


@dataclass
class AccessContext:
    user: User | None = None
    surface: str = "system"  # an audit.AccessLog.Surface value
    source_address: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Set by the access gate when a chart was opened under emergency access; every log row
    # written in this context is then flagged.
    break_glass: bool = False


_current: ContextVar[AccessContext | None] = ContextVar("oncoplanner_access_context", default=None)


def current() -> AccessContext:
    return _current.get() or AccessContext()


def update(**changes: Any) -> None:
    """Change fields of the current context (e.g. surface="api" once a route knows it).

    Only inside a context that a request, a command (`acting_as`) or a task opened: outside
    one there is no end at which the change would be undone, and it would stick to the thread,
    flagging or naming a user on every later log row the thread writes (a task worker's next
    tasks, a test run's next tests)."""
    active = _current.get()
    if active is not None:
        _current.set(replace(active, **changes))


@contextmanager
def acting_as(
    user: User | None, *, surface: str = "command", source_address: str | None = None
) -> Iterator[AccessContext]:
    context = AccessContext(user=user, surface=surface, source_address=source_address)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def _surface_for(request: HttpRequest) -> str:
    path = request.path
    if path.startswith("/admin/"):
        return "admin"
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/graphql"):
        return "graphql"
    if path.startswith("/stream/"):
        return "stream"
    if request.headers.get("HX-Request") == "true":
        return "fragment"
    return "page"


def access_context_middleware(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Sets the context for each request; must sit after AuthenticationMiddleware.

    The user is read lazily at log time (request.user may change during login), so the
    context holds the request's user object as the auth middleware left it, refreshed by
    the login/logout receivers.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        context = AccessContext(
            user=user if user is not None and user.is_authenticated else None,
            surface=_surface_for(request),
            source_address=request.META.get("REMOTE_ADDR"),
            request_id=request.headers.get("X-Request-ID", "")[:64] or uuid.uuid4().hex,
        )
        token = _current.set(context)
        try:
            response = get_response(request)
        finally:
            _current.reset(token)
        response.headers.setdefault("X-Request-ID", context.request_id)
        return response

    return middleware
