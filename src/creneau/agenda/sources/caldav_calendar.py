"""A CalDAV calendar as an agenda source (RFC 4791), read incrementally: the collection's
sync-token (RFC 6578 sync-collection) brings only what changed since the last sync, applied to
the hub's copy of the calendar's objects, whose busy time is then computed as for a feed
(calendar.busy_from_ics). A token the server no longer knows starts a full sync. The ``caldav``
library speaks the protocol; the server's address is checked as every agenda source's is (no
private network unless allowed)."""

import socket
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import caldav
from django.conf import settings
from django.utils.translation import gettext as _

from creneau.agenda.models import AgendaSource, CalendarObject
from creneau.agenda.sources.calendar import Busy, busy_from_ics, merged
from creneau.agenda.sources.fetch import FetchError, check_address
from creneau.sealing import unseal


def _check_address(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(
            "address_invalid", _("Only http and https addresses can be read."), status=422
        )
    try:
        found = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as error:
        raise FetchError(
            "unreachable",
            _("%(host)s did not answer: %(error)s")
            % {"host": parts.hostname[:100], "error": type(error).__name__},
        ) from error
    for _family, _type, _proto, _name, address in found:
        check_address(parts.hostname, address[0])


def _calendar(source: AgendaSource):
    _check_address(source.url)
    client = caldav.DAVClient(
        url=source.url,
        username=source.username or None,
        password=unseal(source.sealed_secret) or None,
        timeout=settings.CRENEAU_AGENDA_TIMEOUT_SECONDS,
    )
    return client.calendar(url=source.url)


def changes(source: AgendaSource) -> tuple[dict[str, str], str, bool]:
    """(href → data, or "" for a deleted object; the new sync-token; whether it is a full
    sync, which replaces every object the hub held)."""
    calendar = _calendar(source)
    full = not source.sync_token
    try:
        try:
            found = calendar.objects_by_sync_token(
                sync_token=source.sync_token or None, load_objects=True
            )
        except caldav.lib.error.DAVError:
            if full:
                raise
            # The server forgot the token (RFC 6578 §3.2, valid-sync-token): start again.
            found, full = calendar.objects_by_sync_token(load_objects=True), True
        objects = {str(item.url): item.data or "" for item in found}
        token = str(found.sync_token or "")
    except FetchError:
        raise
    except Exception as error:  # the library's and its HTTP client's errors alike
        raise FetchError(
            "source_error",
            _("The CalDAV server did not answer as expected: %(error)s")
            % {"error": f"{type(error).__name__}: {str(error)[:150]}"},
        ) from error
    if sum(len(data) for data in objects.values()) > settings.CRENEAU_AGENDA_MAX_BYTES:
        raise FetchError(
            "too_large",
            _("The answer is larger than %(size)s bytes.")
            % {"size": settings.CRENEAU_AGENDA_MAX_BYTES},
        )
    return objects, token, full


def busy_of(documents: list[str], *, zone, now: datetime, until: datetime) -> list:
    intervals: list = []
    for document in documents:
        intervals += busy_from_ics(document.encode(), zone=zone, start=now, end=until)
    return merged(intervals)


def busy(source: AgendaSource, *, now: datetime, until: datetime, conditional: bool = True) -> Busy:
    """Read what changed; the caller stores it (``Busy.objects``) in its transaction."""
    objects, token, full = changes(source if conditional else _without_token(source))
    held = (
        {}
        if full
        else dict(CalendarObject.objects.filter(source=source).values_list("href", "data"))
    )
    held.update(objects)
    current = {href: data for href, data in held.items() if data}
    zone = source.practitioner_role.establishment.zone
    intervals = busy_of(list(current.values()), zone=zone, now=now, until=until)
    return Busy(intervals=intervals, objects=current, sync_token=token)


def _without_token(source: AgendaSource) -> AgendaSource:
    source.sync_token = ""
    return source


def test(source: AgendaSource, *, now: datetime) -> str:
    found = busy(source, now=now, until=now + timedelta(weeks=2), conditional=False)
    return _("The calendar answers: %(count)s busy periods in the next two weeks.") % {
        "count": len(found.intervals)
    }
