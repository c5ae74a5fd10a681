"""FHIR's answers and refusals: ``application/fhir+json`` resources, and OperationOutcome for
every error, with the status FHIR's RESTful API gives it (R4 §3.1.0.4)."""

import functools
import json

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from creneau.errors import DomainError
from creneau.ledger.services import refusal_append

FHIR_JSON = "application/fhir+json"
# What a client may ask for: FHIR's JSON under its current and its DSTU2 names, plain JSON.
ACCEPTED = {FHIR_JSON, "application/json+fhir", "application/json", "*/*", "application/*"}
FORMATS = {"json", FHIR_JSON, "application/json+fhir", "application/json"}
ERROR_SYSTEM = "https://creneau.fr/fhir/CodeSystem/error"

# An HTTP status and the OperationOutcome issue type that says the same (R4 valueset
# issue-type).
_ISSUE_TYPES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    415: "not-supported",
    422: "processing",
    429: "throttled",
}


class FhirError(DomainError):
    """A refusal of the FHIR server (its ``code`` is the stable snake_case code Créneau's API
    gives for the same refusal)."""


def outcome(status: int, code: str, message: str) -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error" if status < 500 else "fatal",
                "code": _ISSUE_TYPES.get(status, "exception"),
                "details": {"coding": [{"system": ERROR_SYSTEM, "code": code}], "text": message},
                "diagnostics": message,
            }
        ],
    }


def fhir_response(resource: dict, status: int = 200, **headers: str) -> HttpResponse:
    response = HttpResponse(
        json.dumps(resource, ensure_ascii=False, separators=(",", ":")),
        content_type=f"{FHIR_JSON}; charset=utf-8",
        status=status,
    )
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def error_response(error: DomainError) -> HttpResponse:
    refusal_append(error)  # an out-of-perimeter attempt is recorded, after its rollback
    response = fhir_response(outcome(error.status, error.code, error.message), error.status)
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response["Retry-After"] = str(max(1, int(retry_after)))
    if error.status == 401:
        response["WWW-Authenticate"] = f'Bearer realm="creneau", error="{error.code}"'
    return response


def _check_format(request: HttpRequest) -> None:
    asked = request.GET.get("_format")
    if asked is not None and asked not in FORMATS:
        raise FhirError(
            "format_not_supported",
            _("This server answers in FHIR JSON only (_format=json)."),
            status=406,
        )
    accept = request.headers.get("Accept", "")
    if accept and not any(
        part.split(";")[0].strip() in ACCEPTED for part in accept.split(",") if part.strip()
    ):
        raise FhirError(
            "format_not_supported",
            _("This server answers in FHIR JSON only (Accept: application/fhir+json)."),
            status=406,
        )


def fhir_endpoint(*methods: str):
    """A FHIR interaction: the methods it answers, the formats it speaks, and every refusal
    turned into an OperationOutcome. A bearer token, a client certificate or nothing (the
    public site) authenticates: there is no cookie to forge, hence no CSRF token."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise FhirError(
                        "method_not_allowed",
                        _("This address answers %(methods)s only.")
                        % {"methods": ", ".join(methods)},
                        status=405,
                    )
                _check_format(request)
                if request.method in ("POST", "PUT") and request.content_type not in FORMATS:
                    raise FhirError(
                        "unsupported_media_type",
                        _("Send the body as FHIR JSON (Content-Type: application/fhir+json)."),
                        status=415,
                    )
                return view(request, *args, **kwargs)
            except DomainError as error:
                return error_response(error)

        return csrf_exempt(wrapper)

    return decorate
