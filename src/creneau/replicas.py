"""Reads on PostgreSQL's streaming replicas (``CRENEAU_DATABASE_REPLICA_URLS``).

What may be read on a replica is the answer anybody could be given a moment late: searches,
availability, the directory, the FHIR and SMART publications, the public ledger. Everything else
reads and writes on the primary: bookings and their transactions, a patient's own appointment,
sign-in, tokens, limits.

No patient sees their own booking vanish: their appointment's pages always read on the primary,
and a client that wrote carries the primary's log position of its write in a cookie; a replica
serves it again only once it has replayed that far. A replica that does not answer is left aside
for a while and the primary serves its reads.
"""

import random
import re
import time
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

# The views whose GET and HEAD may be answered from a replica (by URL name).
REPLICA_VIEWS = frozenset(
    {
        "api:slots_list",
        "api:practitioner_availability",
        "api:specialties_list",
        "api:visit_types_list",
        "api:establishments_list",
        "api:establishment_detail",
        "api:practitioners_list",
        "api:practitioner_detail",
        "fhir:metadata",
        "fhir:search",
        "fhir:read",
        "fhir:bulk_publish",
        "fhir:bulk_file",
        "site:home",
        "site:search",
        "site:practitioner",
        "embed:home",
        "embed:search",
        "embed:practitioner",
    }
)
REPLICA_NAMESPACES = frozenset({"ledger"})
# The data a replica may serve: the directory, agendas, channels, bookings' public side and the
# ledger. Accounts, sessions, tokens, second factors and counters are always the primary's.
REPLICA_APPS = frozenset({"directory", "agenda", "channels", "booking", "ledger", "fhir"})

COOKIE = "creneau_lsn"
LSN = re.compile(r"^[0-9A-F]{1,8}/[0-9A-F]{1,8}$")
# A replica that failed to connect is asked again after this many seconds.
RETRY_AFTER = 10.0

_reading_from: ContextVar[str | None] = ContextVar("creneau_replica", default=None)
_down_until: dict[str, float] = {}


def replica_aliases() -> list[str]:
    return [alias for alias in settings.DATABASES if alias != DEFAULT_DB_ALIAS]


class ReplicaRouter:
    """Every read of a replica-served request goes to its replica, unless it happens inside a
    transaction of the primary (a search that records its offers reads the ledger's head
    there). Every write goes to the primary, whatever database its object was read from."""

    def db_for_read(self, model, **hints) -> str:
        alias = _reading_from.get()
        if (
            alias is None
            or model._meta.app_label not in REPLICA_APPS
            or connections[DEFAULT_DB_ALIAS].in_atomic_block
        ):
            return DEFAULT_DB_ALIAS
        return alias

    def db_for_write(self, model, **hints) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # the replicas hold the primary's rows

    def allow_migrate(self, db, app_label, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS


def _replica_caught_up(alias: str, position: str | None) -> bool:
    """The replica answers, and has replayed the client's last write if it made one: one
    round trip, which is also the connection's health check (the replicas have Django's own
    turned off)."""
    if _down_until.get(alias, 0.0) > time.monotonic():
        return False
    connection = connections[alias]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [position or "0/0"])
            return bool(cursor.fetchone()[0])
    except DatabaseError:
        connection.close()
        _down_until[alias] = time.monotonic() + RETRY_AFTER
        return False


def _primary_position() -> str | None:
    # The insert position, not the write position: with synchronous_commit off, a commit
    # returns before its record is written, and the write position may still be before it.
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
            return cursor.fetchone()[0]
    except DatabaseError:
        return None


class ReplicaMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.aliases = replica_aliases()

    def __call__(self, request):
        if not self.aliases:
            return self.get_response(request)
        try:
            response = self.get_response(request)
        finally:
            token = getattr(request, "_creneau_replica_token", None)
            if token is not None:
                _reading_from.reset(token)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            position = _primary_position()
            if position:
                response.set_cookie(
                    COOKIE,
                    position,
                    max_age=settings.CRENEAU_REPLICA_READ_YOUR_WRITES,
                    secure=settings.SESSION_COOKIE_SECURE,
                    httponly=True,
                    samesite="Lax",
                )
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not self.aliases or request.method not in ("GET", "HEAD"):
            return None
        match = request.resolver_match
        if match is None or not (
            match.view_name in REPLICA_VIEWS or match.namespace in REPLICA_NAMESPACES
        ):
            return None
        position = request.COOKIES.get(COOKIE)
        if position is not None and not LSN.match(position):
            position = None
        alias = random.choice(self.aliases)
        if _replica_caught_up(alias, position):
            request._creneau_replica_token = _reading_from.set(alias)
        return None
