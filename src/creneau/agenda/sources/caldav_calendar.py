"""A CalDAV calendar as an agenda source (RFC 4791), read incrementally: the collection's
sync-token (RFC 6578 sync-collection) brings only what changed since the last sync, applied to
the hub's copy of the calendar's objects, whose busy time is then computed as for a feed
(calendar.busy_from_ics). A token the server no longer knows starts a full sync. The ``caldav``
library speaks the protocol; its HTTP session sends every request, redirects included, through
the hub's guarded client (creneau.outgoing: no private network unless allowed, the address
checked before each connection, one deadline for the whole sync, nothing logged)."""

import time
from datetime import datetime, timedelta

import caldav
import niquests
from django.conf import settings
from django.utils.translation import gettext as _

from creneau import outgoing
from creneau.agenda.models import AgendaSource, CalendarObject
from creneau.agenda.sources.calendar import Budget, Busy, busy_from_ics, merged
from creneau.outgoing import OutgoingError
from creneau.sealing import unseal

_WEBDAV_XML = ("PROPFIND", "REPORT")


class _Consumed:
    """Where niquests would read the answer from: here it has been read already (no cookie,
    no connection to give back)."""

    _original_response = None

    def read(self, *args, **kwargs) -> bytes:
        return b""

    def release_conn(self) -> None:
        pass

    def close(self) -> None:
        pass


class _GuardedTransport(niquests.adapters.BaseAdapter):
    """caldav's session sends through creneau.outgoing, by the transport adapter that requests
    and niquests offer for this: each hop the session follows is a new, checked exchange."""

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline

    def send(self, request, *args, **kwargs):
        body = request.body.encode() if isinstance(request.body, str) else request.body
        # No compressed answer: the body is handed to caldav as it came.
        headers = {k: v for k, v in request.headers.items() if k.lower() != "accept-encoding"}
        answer = outgoing.exchange(
            request.url,
            method=request.method,
            body=body,
            headers=headers,
            deadline=self.deadline,
            max_bytes=settings.CRENEAU_AGENDA_MAX_BYTES,
        )
        kind = answer.headers.get("content-type", "")
        if request.method in _WEBDAV_XML and 200 <= answer.status < 300 and "xml" not in kind:
            # The library would log such a body; it is not a CalDAV server's answer anyway.
            raise OutgoingError(
                "source_error",
                _("The CalDAV server answered %(method)s with %(kind)s, not XML.")
                % {"method": request.method, "kind": kind[:60] or "?"},
            )
        response = niquests.Response()
        response.status_code, response.reason = answer.status, answer.reason
        response.headers = niquests.structures.CaseInsensitiveDict(answer.headers)
        response._content, response._content_consumed = answer.body, True
        response.raw = _Consumed()
        response.encoding = niquests.utils.get_encoding_from_headers(response.headers)
        response.url, response.request = request.url, request
        return response

    def close(self) -> None:
        pass


def _calendar(source: AgendaSource):
    client = caldav.DAVClient(
        url=source.url,
        username=source.username or None,
        password=unseal(source.sealed_secret) or None,
        timeout=settings.CRENEAU_AGENDA_TIMEOUT_SECONDS,
        rate_limit_handle=False,  # a server's Retry-After never puts the worker to sleep
    )
    transport = _GuardedTransport(time.monotonic() + settings.CRENEAU_AGENDA_TIMEOUT_SECONDS)
    for scheme in ("http://", "https://"):
        client.session.mount(scheme, transport)
    client.session.max_redirects = outgoing.MAX_REDIRECTS
    client.session.trust_env = False  # no proxy or .netrc of the environment
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
    except OutgoingError:
        raise
    except Exception as error:  # the library's and its HTTP client's errors alike
        raise OutgoingError(
            "source_error",
            _("The CalDAV server did not answer as expected: %(error)s")
            % {"error": f"{type(error).__name__}: {str(error)[:150]}"},
        ) from error
    if sum(len(data) for data in objects.values()) > settings.CRENEAU_AGENDA_MAX_BYTES:
        raise OutgoingError(
            "too_large",
            _("The answer is larger than %(size)s bytes.")
            % {"size": settings.CRENEAU_AGENDA_MAX_BYTES},
        )
    return objects, token, full


def busy_of(documents: list[str], *, zone, now: datetime, until: datetime) -> list:
    intervals: list = []
    budget = Budget()  # one for the whole calendar, whatever its number of documents
    for document in documents:
        intervals += busy_from_ics(
            document.encode(), zone=zone, start=now, end=until, budget=budget
        )
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
