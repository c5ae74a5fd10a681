"""The private feed of a practitioner's bookings: an iCalendar document at a secret address,
for a calendar the hub cannot write to (an ICS source). The address is the key: an unknown or
revoked one is a plain 404."""

import hashlib

from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from creneau.agenda.models import AgendaSource
from creneau.booking.calendar import practitioner_feed_ics


@require_GET
def practitioner_feed(request: HttpRequest, token: str) -> HttpResponse:
    source = (
        AgendaSource.objects.filter(feed_token_hash=hashlib.sha256(token.encode()).hexdigest())
        .exclude(feed_token_hash="")
        .first()
    )
    if source is None:
        raise Http404
    body = practitioner_feed_ics(
        role_id=source.practitioner_role_id, names=source.hosted_by_hospital, now=timezone.now()
    )
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    response["Referrer-Policy"] = "no-referrer"
    return response
