"""What a request must be for Créneau to read it at all: no NUL character, anywhere.

PostgreSQL refuses NUL in text (a DataError, so a server error) and SQLite stores it, making a
name that looks like another. No form, address or identifier ever needs one, so a request
carrying one in its path, query, headers, form fields or JSON body is answered 400 before any
view sees it."""

import re

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils.translation import gettext as _

NUL = "\x00"
# JSON writes a NUL character as an escape: \u0000.
_JSON_NUL = re.compile(rb"\\u0000", re.IGNORECASE)


def carries_nul(request: HttpRequest) -> bool:
    if NUL in request.path_info:
        return True
    for name, value in request.META.items():
        if name.startswith("HTTP_") and isinstance(value, str) and NUL in value:
            return True
    if any(NUL in key or any(NUL in v for v in values) for key, values in request.GET.lists()):
        return True
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return False
    if "json" in (request.content_type or ""):
        return bool(NUL.encode() in request.body or _JSON_NUL.search(request.body))
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        # Uploaded files may hold any byte; the form's text fields may not.
        return any(
            NUL in key or any(NUL in v for v in values) for key, values in request.POST.lists()
        )
    return False


class RefuseNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not carries_nul(request):
            return self.get_response(request)
        message = _("The request contains a NUL character, which no field or address may hold.")
        if request.path_info.startswith("/api/"):
            return JsonResponse({"code": "invalid_character", "message": message}, status=400)
        if request.path_info.startswith("/fhir/"):
            from creneau.fhir.responses import fhir_response, outcome

            return fhir_response(outcome(400, "invalid_character", message), status=400)
        if request.path_info.startswith("/oauth/"):
            # The token endpoint's errors, as RFC 6749 §5.2 shapes them.
            return JsonResponse(
                {"error": "invalid_request", "error_description": message}, status=400
            )
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
