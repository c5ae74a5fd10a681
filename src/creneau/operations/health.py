"""What a load balancer and hospital IT need to know at a glance.

``/healthz`` (liveness): the process answers; nothing else is asked, so a database outage
never gets the servers restarted. ``/readyz`` (readiness): 200 while the database and the
cache answer (``degraded`` when an external agenda's slots are withdrawn from search, the
worker's schedule has stopped or a read replica does not answer), 503 when either does not: the
server should get no traffic. Anyone gets the status; what is behind it (which practitioners'
agendas are withdrawn, the replicas, the worker) only the monitoring networks of /metrics
(CRENEAU_METRICS_ALLOWED_NETWORKS) and the admin's staff."""

import json
from datetime import timedelta

from django.conf import settings
from django.core.cache import caches
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from creneau.agenda.models import AgendaSource
from creneau.operations.metrics import monitoring_allowed
from creneau.operations.models import ScheduledJob


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "alive"})


def _cache_answers() -> bool:
    """The cache that counts the rate limits (Redis when configured) takes a write and gives
    it back."""
    key = "creneau:readyz"
    try:
        caches["default"].set(key, "1", 10)
        return caches["default"].get(key) == "1"
    except Exception:  # any backend's connection error: the cache does not answer
        return False


def _replicas() -> dict[str, dict]:
    """Each streaming replica: does it answer, and how many bytes of the primary's log it has
    still to replay. One that does not answer only degrades the hub: the primary serves its
    reads meanwhile."""
    if len(settings.DATABASES) == 1:
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        primary = cursor.fetchone()[0]
    answers = {}
    for alias in settings.DATABASES:
        if alias == DEFAULT_DB_ALIAS:
            continue
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute(
                    "SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())::bigint",
                    [primary],
                )
                behind = cursor.fetchone()[0]
            answers[alias] = {"status": "ok", "bytes_behind": max(int(behind or 0), 0)}
        except DatabaseError:
            answers[alias] = {"status": "unreachable"}
    return answers


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    answer = _readiness()
    if monitoring_allowed(request) or request.user.is_staff:
        return answer
    return JsonResponse({"status": json.loads(answer.content)["status"]}, status=answer.status_code)


def _readiness() -> JsonResponse:
    now = timezone.now()
    if not _cache_answers():
        return JsonResponse({"status": "down", "cache": "unreachable"}, status=503)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        external = AgendaSource.objects.exclude(kind=AgendaSource.Kind.BUILTIN)
        withdrawn = list(
            external.filter(stale_after__lte=now)
            .order_by("practitioner_role__public_id")
            .values_list("practitioner_role__public_id", flat=True)[:100]
        )
        failing = external.exclude(last_error="").count()
        last_run = (
            ScheduledJob.objects.exclude(last_run_at=None)
            .order_by("-last_run_at")
            .values_list("last_run_at", flat=True)
            .first()
        )
        replicas = _replicas()
    except DatabaseError:
        return JsonResponse({"status": "down", "database": "unreachable"}, status=503)
    worker_ok = last_run is not None and last_run > now - timedelta(minutes=10)
    replicas_ok = all(replica["status"] == "ok" for replica in replicas.values())
    return JsonResponse(
        {
            "status": "ok" if worker_ok and not withdrawn and replicas_ok else "degraded",
            "database": "ok",
            "cache": "ok",
            **({"replicas": replicas} if replicas else {}),
            "worker_last_run": last_run.isoformat() if last_run else None,
            "agenda_sources": {
                "external": external.count(),
                "failing": failing,
                "withdrawn_from_search": withdrawn,
            },
        }
    )


@never_cache
@require_GET
def bench_baseline(request: HttpRequest, pk: int) -> JsonResponse:
    """What a minimal Django view costs on this server: one row by its primary key, as JSON
    (bench.booking measures it beside the search and the booking; off in production)."""
    from creneau.directory.models import Establishment

    row = Establishment.objects.filter(pk=pk).values("public_id", "name", "city").first()
    if row is None:
        return JsonResponse({"code": "not_found"}, status=404)
    return JsonResponse(row)
