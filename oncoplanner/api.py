"""The REST API root: /api/v1/ (django-ninja, OpenAPI 3.1, pydantic 2).

One more door to the same records (SECURITY.md): every route reaches patient data only through
patients.selectors (404 for a record the caller may not see, the read logged) and writes only
through the services (validation, transaction, audit). What this module adds is what a JSON
door needs on top of that:

- Authentication: a personal API token (`Authorization: Bearer op_...`, see
  oncoplanner.accounts.api_tokens) or the browser session, whose unsafe requests need the CSRF
  token. A bad token is a 401 straight away, never a fall-back to the session.
- Strict input: JSON bodies only (415 otherwise), at most 1 MB (413), no NaN/Infinity, no NUL
  bytes or lone surrogates (400 naming the field); input schemas forbid unknown fields, and a
  query parameter the route does not declare is a 400 naming it (ninja ignores them by
  default, so a mistyped or injected filter would silently widen a result set).
- Errors: always JSON `{"detail": ...}`; validation errors, ours and pydantic's, are
  `{"detail": [{"loc": ["body", "<field>"], "msg": "...", "type": "..."}]}` with status 400.
- Docs: /api/v1/openapi.json and a Swagger UI playground at /api/v1/docs whose assets come from
  the installed ninja package (no CDN), loaded by script tags carrying the CSP nonce.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from functools import cache
from typing import Annotated, Any, get_args

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from ninja import Field, NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.openapi.docs import Swagger
from ninja.params.models import Query, QueryModel
from ninja.security import APIKeyCookie, HttpBearer
from pydantic import (
    BaseModel,
    ConfigDict,
    PlainSerializer,
    ValidationInfo,
    create_model,
    field_validator,
)
from pydantic_core import PydanticCustomError

from oncoplanner import access_context
from oncoplanner.accounts.api_tokens import INVALID_TOKEN_MESSAGE, api_token_authenticate
from oncoplanner.accounts.models import User
from oncoplanner.confirmation import ConfirmationRequired
from oncoplanner.signals import record_read

MAX_BODY_BYTES = 1024 * 1024
MAX_PAGE = 200
DEFAULT_PAGE = 50
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# --- Errors -----------------------------------------------------------------------------------


class ApiInputError(Exception):
    """Bad input found before a view runs: answered 400 with ninja's error shape."""

    def __init__(self, errors: list[dict[str, Any]], status: int = 400) -> None:
        super().__init__(errors)
        self.errors = errors
        self.status = status


def _error(loc: list[str | int], msg: str, kind: str = "value_error") -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


class ErrorItem(Schema):
    loc: list[str | int]
    msg: str
    type: str
    confirm_with: str | None = Field(
        default=None,
        description='With type "confirmation_required": the value is allowed but looks like a '
        "typo; send the request again with this flag true to record it as it is. A request "
        "with several such warnings gets one item for each, each naming its own flag: send "
        "them all true together.",
    )


class ErrorOut(Schema):
    detail: str | list[ErrorItem]


# Documented on every operation so clients (and schemathesis) know the error bodies.
ERRORS: dict[int, Any] = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    413: ErrorOut,
    415: ErrorOut,
}


# --- Authentication ---------------------------------------------------------------------------


def _check_body(request: HttpRequest) -> None:
    """JSON only, at most 1 MB, no NaN/Infinity, NUL bytes or lone surrogates."""
    if request.method not in UNSAFE_METHODS:
        return
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_BODY_BYTES:
        raise ApiInputError([_error(["body"], "The body is larger than 1 MB.")], status=413)
    try:
        body = request.body
    except RequestDataTooBig:
        raise ApiInputError(
            [_error(["body"], "The body is larger than 1 MB.")], status=413
        ) from None
    if len(body) > MAX_BODY_BYTES:
        raise ApiInputError([_error(["body"], "The body is larger than 1 MB.")], status=413)
    if not body:
        return
    if request.content_type != "application/json":
        raise ApiInputError(
            [_error(["header", "Content-Type"], "Send JSON (Content-Type: application/json).")],
            status=415,
        )
    try:
        data = json.loads(body, parse_constant=lambda name: _NON_FINITE)
    except (ValueError, RecursionError):
        raise ApiInputError(
            [_error(["body"], "The body is not valid JSON.", "json_invalid")]
        ) from None
    errors = list(_bad_values(data, ["body"]))
    if errors:
        raise ApiInputError(errors[:20])


class _NonFinite:
    pass


_NON_FINITE = _NonFinite()


def _bad_values(value: Any, loc: list[str | int], depth: int = 0) -> Iterator[dict[str, Any]]:
    if depth > 32:
        yield _error(loc, "The body is nested too deeply.")
    elif value is _NON_FINITE or (isinstance(value, float) and not math.isfinite(value)):
        yield _error(loc, "NaN and Infinity are not numbers.", "finite_number")
    elif isinstance(value, str):
        yield from _bad_text(value, loc)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _bad_text(key, loc)
            yield from _bad_values(item, [*loc, key], depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _bad_values(item, [*loc, index], depth + 1)


def _bad_text(text: str, loc: list[str | int]) -> Iterator[dict[str, Any]]:
    # NUL bytes and lone surrogates become database errors (500s) unless refused here.
    if "\x00" in text:
        yield _error(loc, "Text cannot contain NUL characters.")
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        yield _error(loc, "Text contains invalid characters.")


def _check_query(request: HttpRequest) -> None:
    for key, values in request.GET.lists():
        for text in (key, *values):
            for error in _bad_text(text, ["query", key]):
                raise ApiInputError([error])


def _authenticated(request: HttpRequest, user: User) -> User:
    _check_query(request)
    _check_body(request)
    return user


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <personal API token>`; no CSRF (no ambient credential)."""

    def __call__(self, request: HttpRequest) -> User | None:
        header = request.headers.get("Authorization")
        if not header:
            return None  # no token: the session may authenticate
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            raise AuthenticationError(401, INVALID_TOKEN_MESSAGE)
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = api_token_authenticate(token)
        if user is None:
            raise AuthenticationError(401, INVALID_TOKEN_MESSAGE)
        return _authenticated(request, user)


class ApiSessionAuth(APIKeyCookie):
    """The browser's Django session; ninja checks CSRF for unsafe methods (403 without it)."""

    param_name = settings.SESSION_COOKIE_NAME

    def authenticate(self, request: HttpRequest, key: str | None) -> User | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_active:
            return None
        access_context.update(user=user, surface="api")
        return _authenticated(request, user)


# --- Strict query parameters and pages --------------------------------------------------------


class StrictQueryModel(QueryModel):
    """A route's query parameters: any key the route does not declare is a 400 naming it."""

    @classmethod
    def _map_data_paths(cls, data: dict[str, Any]) -> dict[str, Any]:
        declared = set(getattr(cls, "__ninja_flatten_map__", {}) or ())
        unknown = sorted(set(data) - declared)
        if unknown:
            raise ApiInputError(
                [
                    _error(
                        ["query", key], f"Unknown query parameter '{key[:40]}'.", "extra_forbidden"
                    )
                    for key in unknown[:20]
                ]
            )
        return super()._map_data_paths(data)


class StrictQuery(Query):  # type: ignore[misc]
    _model = StrictQueryModel

    @classmethod
    def _param_source(cls) -> str:
        return "query"


# Every paged list's query parameters: one page of at most MAX_PAGE rows.
Limit = StrictQuery(DEFAULT_PAGE, ge=1, le=MAX_PAGE)
Offset = StrictQuery(0, ge=0, le=1_000_000)


def no_query(request: HttpRequest) -> None:
    """For routes without query parameters: any query parameter is undeclared."""
    if request.GET:
        raise ApiInputError(
            [
                _error(["query", key], f"Unknown query parameter '{key[:40]}'.", "extra_forbidden")
                for key in sorted(request.GET)[:20]
            ]
        )


class InputSchema(Schema):
    """Base of every request body: unknown fields are refused (no mass assignment)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def patch_field(**constraints: Any) -> Any:
    """A PATCH body field: left out, the stored value is kept (dropped by exclude_unset;
    pydantic does not validate the default). Never null unless the annotation says so: see
    PatchSchema. Typed Any so that `phone: str = patch_field(...)` needs no cast."""
    return Field(None, **constraints)


def _admits_null(annotation: Any) -> bool:
    return annotation is None or type(None) in get_args(annotation)


def _clearable(field: Any) -> bool:
    """A text field without a minimum length: "" is its empty value."""
    return field.annotation is str and not any(
        getattr(item, "min_length", None) for item in field.metadata
    )


class PatchSchema(InputSchema):
    """Base of every partial-update (PATCH) body.

    Many JSON encoders (mobile ones above all) write null for every field the app did not
    set, so a null read as "clear it" would erase a record on an ordinary save. A field left
    out keeps its value; a null is a 400 naming the field and saying how to clear it on
    purpose ("" for text that may be empty), and nothing is written. Only a field whose
    annotation admits None (a number whose empty value is null, such as ECOG) takes null.
    The OpenAPI schema follows: no null type and no null default for the other fields.
    """

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.field_name or ""
        field = cls.model_fields.get(name)
        if value is None and field is not None and not _admits_null(field.annotation):
            how = (
                'send "" to clear it' if _clearable(field) else "it cannot be cleared, only changed"
            )
            raise PydanticCustomError(
                "null_not_allowed",
                f"{name} cannot be null: leave it out to keep the stored value ({how}).",
            )
        return value

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        schema: dict[str, Any] = handler(core_schema)
        properties = handler.resolve_ref_schema(schema).get("properties", {})
        for name, field in cls.model_fields.items():
            prop = properties.get(name)
            if prop is None or _admits_null(field.annotation):
                continue
            if prop.get("default", ...) is None:
                del prop["default"]  # left out means unchanged, not null
            hint = 'Send "" to clear it.' if _clearable(field) else "Cannot be cleared."
            prop["description"] = " ".join(
                filter(None, [prop.get("description"), "Leave out to keep it.", hint])
            )
        return schema


class Page[T](Schema):
    count: int
    limit: int
    offset: int
    items: list[T]


def page_of(queryset: Any, *, limit: int, offset: int) -> tuple[int, list[Any]]:
    """(total count, the rows of one page): two queries whatever the page size."""
    count = queryset.count()
    return count, list(queryset[offset : offset + limit])


def _json_datetime(value: dt.datetime) -> str:
    # The encoder of every other route (ninja's, Django's): milliseconds, UTC written as Z.
    return str(DjangoJSONEncoder().default(value))


_JsonDatetime = Annotated[dt.datetime, PlainSerializer(_json_datetime, when_used="json")]


@cache
def _row_model(schema: type[Schema]) -> type[BaseModel]:
    """A plain pydantic model with `schema`'s fields, for rows that are already dicts."""
    fields: dict[str, Any] = {}
    for name, info in schema.model_fields.items():
        annotation = info.annotation
        if annotation is dt.datetime:
            annotation = _JsonDatetime
        elif annotation == dt.datetime | None:
            annotation = _JsonDatetime | None
        fields[name] = (annotation, ...)
    return create_model(f"{schema.__name__}Row", **fields)


def page_response(
    schema: type[Schema], queryset: Any, *, limit: int, offset: int, **expressions: Any
) -> HttpResponse:
    """One page of a list route, read with `.values()` and serialised by pydantic.

    For the long lists (a patient's lab results): building a model instance per row, then
    validating it through ninja's attribute getter, then encoding with json cost two thirds of
    the 200-result lab list. Rows are still validated against the route's own schema (its
    fields, types and order; `expressions` supply the fields that are not columns), and the
    JSON is the same as ninja's: decimals as strings, times in milliseconds with Z for UTC.
    """
    columns = [name for name in schema.model_fields if name not in expressions]
    count = queryset.count()
    rows = list(queryset.values(*columns, **expressions)[offset : offset + limit])
    body = {"count": count, "limit": limit, "offset": offset, "items": rows}
    page = _page_model(_row_model(schema)).model_validate(body)
    return HttpResponse(page.model_dump_json(), content_type="application/json")


@cache
def _page_model(row: type[BaseModel]) -> type[BaseModel]:
    return create_model(
        f"{row.__name__}Page",
        count=(int, ...),
        limit=(int, ...),
        offset=(int, ...),
        items=(list[row], ...),  # type: ignore[valid-type]
    )


def log_list(model: type[Any], patients: list[Any]) -> None:
    """record_read (action "list") for rows shown by a list route whose selector sent none."""
    if patients:
        record_read.send(sender=model, patients=patients, target=None, action="list")


def user_of(request: HttpRequest) -> User:
    return request.auth  # type: ignore[attr-defined,no-any-return]


def clinical_user(request: HttpRequest) -> User:
    """Clinician and administrator routes: a patient user gets the 404 of a missing record."""
    user = user_of(request)
    if user.is_patient_user:
        raise Http404("Not found.")
    return user


# --- Docs served locally ------------------------------------------------------------------------


class LocalSwagger(Swagger):
    """Swagger UI from the installed ninja package's static files, script tags with the nonce."""

    def render_page(self, request: HttpRequest, api: Any, **kwargs: Any) -> HttpResponse:
        self.settings["url"] = self.get_openapi_url(api, kwargs)
        context = {
            "swagger_settings": json.dumps(self.settings),
            "api": api,
            "add_csrf": True,
        }
        return render(request, "api/docs.html", context)


api = NinjaAPI(
    title="OncoPlanner API",
    version="1",
    description=(
        "REST access to OncoPlanner's records through the same access gate, services and "
        "access log as the pages. Authenticate with a personal API token "
        "(`Authorization: Bearer <token>`, made on /accounts/api-tokens/) or the browser "
        "session (unsafe methods need the X-CSRFToken header)."
    ),
    urls_namespace="api",
    auth=[TokenAuth(), ApiSessionAuth()],
    docs=LocalSwagger(settings={"persistAuthorization": False}),
)


def _respond(request: HttpRequest, body: dict[str, Any], status: int) -> HttpResponse:
    return api.create_response(request, body, status=status)


@api.exception_handler(ApiInputError)
def _input_error(request: HttpRequest, exc: ApiInputError) -> HttpResponse:
    return _respond(request, {"detail": exc.errors}, exc.status)


@api.exception_handler(NinjaValidationError)
def _validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    detail = []
    for item in exc.errors:
        loc = [str(part) if not isinstance(part, int) else part for part in item.get("loc", ())]
        # ninja puts the body argument's name after "body"; every body argument here is
        # "payload", dropped so the field name comes right after "body".
        if len(loc) > 1 and loc[0] == "body" and loc[1] == "payload":
            loc = ["body", *loc[2:]]
        detail.append(
            _error(
                loc, str(item.get("msg", "Invalid value.")), str(item.get("type", "value_error"))
            )
        )
    return _respond(request, {"detail": detail}, 400)


@api.exception_handler(DjangoValidationError)
def _service_error(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    detail = []
    if hasattr(exc, "error_dict"):
        for field, messages in exc.message_dict.items():
            loc: list[str | int] = ["body"] if field == "__all__" else ["body", field]
            detail += [_error(loc, message) for message in messages]
    else:
        detail = [_error(["body"], message) for message in exc.messages]
    if isinstance(exc, ConfirmationRequired):
        # One item per warning, each with its own flag (course_start asks several at once);
        # an error beside them that no flag accepts (a missing reason) stays a value_error.
        flags = {(c.field, c.message): c.confirm_with for c in exc.confirmations}
        for item in detail:
            field = "__all__" if item["loc"] == ["body"] else str(item["loc"][-1])
            flag = flags.get((field, item["msg"]))
            if flag:
                item.update(type="confirmation_required", confirm_with=flag)
    return _respond(request, {"detail": detail}, getattr(exc, "http_status", 400))


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    # A record the user may see, an act their discipline may not do (prescribing).
    return _respond(request, {"detail": str(exc) or "Not allowed."}, 403)


@api.exception_handler(IntegrityError)
def _integrity_error(request: HttpRequest, exc: IntegrityError) -> HttpResponse:
    # A race past the service's own checks (a double submit): nothing was written.
    return _respond(
        request, {"detail": [_error(["body"], "This conflicts with an existing record.")]}, 400
    )


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    # The same answer for missing and forbidden records (never the query in the message).
    return _respond(request, {"detail": "Not found."}, 404)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _respond(request, {"detail": str(exc)}, exc.status_code)


from labs.api import router as labs_router  # noqa: E402 - the routers import the helpers above
from patients.api import router as patients_router  # noqa: E402
from treatments.api import router as treatments_router  # noqa: E402

api.add_router("", patients_router)
api.add_router("", treatments_router)
api.add_router("", labs_router)
