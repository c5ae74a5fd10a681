"""The waiting room: when a campaign opens and more patients arrive than the hub can serve,
they are let in in the order they arrived, at a steady rate, and the others are told their
place and when to come back, instead of all searching and holding at once (issue 18, point 3).

``CRENEAU_WAITING_ROOM_RATE`` patients a second are let in (0: no waiting room). Each patient
arriving without a ticket takes the next admission time in one atomic statement: the later of
now and the previous patient's time plus 1/rate (so arrivals are ordered by the database, on
every worker and server). Up to ``CRENEAU_WAITING_ROOM_BURST`` patients ahead are let in at
once: in ordinary hours everybody is in at once. The ticket is signed (it cannot be moved
forward) and kept by the patient (a cookie, or the ``X-Creneau-Ticket`` header for an API
client); once in, it stays valid ``CRENEAU_WAITING_ROOM_PASS_MINUTES`` minutes, time to search,
hold and book. Checking a ticket reads no database.

Only the channels without a contract wait (the public site and widgets): operators, partner
platforms and the hospital's desks have their own quotas. Every door that reads or takes slots
for a patient goes through the room: the API's search, holds and bookings, the patient pages
that search, show a practitioner's week, hold, book and move, and the public FHIR Slot search.

A ticket is the patient's: it carries a keyed hash of the address it was given to, and another
address presenting it takes a turn of its own; and it admits at most
``CRENEAU_WAITING_ROOM_PASS_REQUESTS`` requests (counted in the cache), then takes a new turn.

Once everything is taken, waiting is for nothing: a first page of results that an admitted
patient's search found empty is remembered ``EMPTY_SECONDS`` (in the cache, per channel,
perimeter version and query), and the patients waiting to make the same search are let through
at once, to run it and read that nothing is left (they may find a place given back meanwhile:
the search is run, never replayed). A search let through that finds something again forgets it.
A patient whose turn is further away is asked to come back within ``POLL_SECONDS``, to learn it
then rather than at their turn.
"""

import hashlib
import math
import time

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import connections, router
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from creneau.channels.queries import ChannelScope
from creneau.errors import DomainError
from creneau.operations.models import WaitingRoom

COOKIE = "creneau_ticket"
HEADER = "X-Creneau-Ticket"
_SALT = "creneau.waiting-room"
# How long a first page found empty lets the same search through the waiting room.
EMPTY_SECONDS = 10
# The longest a waiting patient is asked to wait before asking again.
POLL_SECONDS = 60
# What in a search's address does not change what it finds.
_NOT_THE_QUERY = {"ticket", "cursor", "limit", "page", "lang"}


class Waiting(DomainError):
    status = 429

    def __init__(self, ticket: str, admitted_at: float, now: float, rate: float) -> None:
        self.ticket = ticket
        self.turn_in = turn_in = max(1, math.ceil(admitted_at - now))
        # Asked to come back within POLL_SECONDS even when their turn is later: a search
        # found empty meanwhile lets them through to read it then.
        self.retry_after = min(turn_in, POLL_SECONDS)
        self.position = max(1, math.ceil((admitted_at - now) * rate))
        super().__init__(
            "waiting_room",
            _(
                "Many patients are booking at this moment: you are in the waiting room, about "
                "%(position)s patients ahead of you. Your turn comes in about %(seconds)s "
                "seconds; keep this page open."
            )
            % {"position": self.position, "seconds": turn_in},
        )

    def details(self) -> dict[str, object]:
        return {
            "position": self.position,
            "retry_after": self.retry_after,
            "turn_in_seconds": self.turn_in,
            "ticket": self.ticket,
        }


def _take_turn(now: float, rate: float) -> float:
    """The next admission time, in one atomic statement on the database every server shares."""
    interval = 1.0 / rate
    database = router.db_for_write(WaitingRoom)
    connection = connections[database]
    later = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE operations_waitingroom SET next_admission = "  # noqa: S608 (a function name)
            f"{later}(next_admission + %s, %s) WHERE id = 1 RETURNING next_admission",
            [interval, now],
        )
        row = cursor.fetchone()
        if row is None:  # the first patient ever: the row is made once
            WaitingRoom.objects.get_or_create(pk=1, defaults={"next_admission": 0.0})
            return _take_turn(now, rate)
    return float(row[0])


def _holder(request: HttpRequest) -> str:
    from creneau.booking.throttling import client_key

    return client_key(request)[:16]


def _ticket_of(request: HttpRequest, raw: str) -> float | None:
    """The admission time of the request's own ticket: none for a forged one, one given to
    another address, or one that has been used its number of times."""
    if not raw:
        return None
    try:
        ticket = signing.loads(raw, salt=_SALT)
        admitted_at = float(ticket["at"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    if ticket.get("for") != _holder(request):
        return None
    uses = f"creneau:waiting-room:uses:{hashlib.sha256(raw.encode()).hexdigest()[:32]}"
    if cache.add(uses, 1, settings.CRENEAU_WAITING_ROOM_PASS_MINUTES * 60 + 60):
        return admitted_at
    try:
        used = cache.incr(uses)
    except ValueError:  # expired between the two calls
        return admitted_at
    return admitted_at if used <= settings.CRENEAU_WAITING_ROOM_PASS_REQUESTS else None


def _waits(scope: ChannelScope) -> bool:
    return bool(settings.CRENEAU_WAITING_ROOM_RATE) and (
        scope.contract is None and scope.channel.kind != "desk"
    )


def _empty_key(request: HttpRequest, scope: ChannelScope) -> str:
    asked = sorted((k, v) for k, v in request.GET.lists() if k not in _NOT_THE_QUERY)
    digest = hashlib.sha256(repr(asked).encode()).hexdigest()[:32]
    return f"creneau:waiting-room:empty:{scope.channel.pk}:{scope.version.pk}:{digest}"


def admit(request: HttpRequest, scope: ChannelScope, *, search: bool = False) -> None:
    """Let the request in, or raise Waiting with the patient's ticket and place. A
    ``search`` known to find nothing is let in at once."""
    if not _waits(scope):
        return
    if search and cache.get(_empty_key(request, scope)):
        request.creneau_known_empty = True
        return
    rate = settings.CRENEAU_WAITING_ROOM_RATE
    now = time.time()
    admitted_at = _ticket_of(request, _raw(request))
    pass_seconds = settings.CRENEAU_WAITING_ROOM_PASS_MINUTES * 60
    if admitted_at is None or now > admitted_at + pass_seconds:
        admitted_at = _take_turn(now, rate)
        request.creneau_ticket = signing.dumps(
            {"at": admitted_at, "for": _holder(request)}, salt=_SALT
        )
    # Those a burst ahead of now are in at once.
    admitted_at -= settings.CRENEAU_WAITING_ROOM_BURST / rate
    if admitted_at > now:
        raise Waiting(
            getattr(request, "creneau_ticket", "") or _raw(request), admitted_at, now, rate
        )


def searched(request: HttpRequest, scope: ChannelScope, *, first_page: bool, found: bool) -> None:
    """Remember a first page found empty (the waiting room lets the same search through), or
    forget it when a search let through finds something again."""
    if not first_page or not _waits(scope):
        return
    if not found:
        cache.set(_empty_key(request, scope), True, EMPTY_SECONDS)
    elif getattr(request, "creneau_known_empty", False):
        cache.delete(_empty_key(request, scope))


def _raw(request: HttpRequest) -> str:
    """The ticket an API client sends in its header, a page in its address (a widget inside
    another site's page keeps no cookie), or a browser in its cookie."""
    return (
        request.headers.get(HEADER) or request.GET.get("ticket") or request.COOKIES.get(COOKIE, "")
    )


def carried(request: HttpRequest) -> str:
    """The ticket a widget's links and forms carry on (the one just given, or the one in the
    address)."""
    return getattr(request, "creneau_ticket", None) or request.GET.get("ticket", "")


class WaitingRoomMiddleware:
    """Gives a patient who just took a ticket its cookie and header, whatever the answer."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        ticket = getattr(request, "creneau_ticket", None)
        if ticket:
            response[HEADER] = ticket
            response.set_cookie(
                COOKIE,
                ticket,
                max_age=settings.CRENEAU_WAITING_ROOM_PASS_MINUTES * 60 + 3600,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response
