"""Patient pages. Each view resolves the channel, reads through the perimeter, renders."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from creneau.channels.queries import (
    channel_scope_for_request,
    establishments_in_scope,
    specialties_in_scope,
)
from creneau.errors import DomainError


def home(request: HttpRequest) -> HttpResponse:
    try:
        scope = channel_scope_for_request(request)
    except DomainError as error:
        return render(
            request,
            "web/error.html",
            {"title": _("Unavailable"), "message": error.message},
            status=error.status,
        )
    establishments = list(establishments_in_scope(scope))
    return render(
        request,
        "web/home.html",
        {
            "organisation": scope.channel.organisation,
            "establishments": establishments,
            "specialties": list(specialties_in_scope(scope)),
        },
    )


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"code": "not_found", "message": _("No such address.")}, status=404)
    return render(
        request,
        "web/error.html",
        {"title": _("Page not found"), "message": _("This address leads nowhere.")},
        status=404,
    )


def server_error(request: HttpRequest) -> HttpResponse:
    message = _("Something went wrong on our side. Please try again in a moment.")
    if _wants_json(request):
        return JsonResponse({"code": "server_error", "message": message}, status=500)
    return render(
        request, "web/error.html", {"title": _("Server error"), "message": message}, status=500
    )
