"""The JSON API: one NinjaAPI, every domain error mapped to HTTP here and nowhere else."""

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from creneau.booking.api import router as booking_router
from creneau.booking.operator_api import router as operator_router
from creneau.booking.throttling import Throttled
from creneau.channels.api import router as directory_router
from creneau.errors import DomainError
from creneau.ledger.services import refusal_append
from creneau.openapi import openapi_complete


class CreneauAPI(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        return openapi_complete(super().get_openapi_schema(*args, **kwargs))


api = CreneauAPI(
    title="Créneau",
    version="1",
    description=(
        "The booking hub's public API. Every answer is filtered by the requesting channel's "
        "perimeter: name a channel with `?channel=KEY` or the `X-Creneau-Channel` header; "
        "without one, the hub's public site answers. Errors are JSON objects with a stable "
        "snake_case `code` and a human `message`. Operators and partner platforms "
        "authenticate with OAuth2 client credentials (`POST /oauth/token/`) and send "
        "`Authorization: Bearer TOKEN`: the token names their channel."
    ),
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/v1/openapi.json",
)
api.add_router("/v1/", directory_router)
api.add_router("/v1/", booking_router)
api.add_router("/v1/", operator_router)


def error_response(request: HttpRequest, status: int, code: str, message: str, **extra):
    return api.create_response(request, {"code": code, "message": message, **extra}, status=status)


@api.exception_handler(DomainError)
def _domain_error(request: HttpRequest, error: DomainError) -> HttpResponse:
    refusal_append(error)  # an out-of-perimeter attempt is recorded, after its rollback
    response = error_response(request, error.status, error.code, error.message, **error.details())
    retry_after = getattr(error, "retry_after", None)
    if isinstance(error, Throttled) or retry_after is not None:
        response["Retry-After"] = str(max(1, int(retry_after or 1)))
    if error.status == 401:
        response["WWW-Authenticate"] = f'Bearer realm="creneau", error="{error.code}"'
    return response


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, error: ValidationError) -> HttpResponse:
    fields = [
        {"field": ".".join(str(p) for p in e["loc"][1:]) or None, "message": e["msg"]}
        for e in error.errors
    ]
    first = fields[0] if fields else {"field": None, "message": ""}
    message = _("Invalid request: %(field)s: %(message)s") % {
        "field": first["field"] or "body",
        "message": first["message"],
    }
    return error_response(request, 422, "invalid_request", message, errors=fields)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, error: Http404) -> HttpResponse:
    return error_response(request, 404, "not_found", str(error) or _("Not found."))


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return error_response(request, 401, "unauthenticated", _("Authentication required."))


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    """ninja's own refusals: a body it cannot parse (400), and any other status it raises."""
    if error.status_code == 400:
        return error_response(
            request, 400, "invalid_json", _("The request's body is not a readable JSON document.")
        )
    return error_response(request, error.status_code, "http_error", str(error))
