"""``/healthz``: what a load balancer and hospital IT need to know at a glance. 200 while the
database answers (``degraded`` when an external agenda's slots are withdrawn from search or
the worker's schedule has stopped), 503 when it does not."""

from datetime import timedelta

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from creneau.agenda.models import AgendaSource
from creneau.operations.models import ScheduledJob


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    now = timezone.now()
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
    except DatabaseError:
        return JsonResponse({"status": "down", "database": "unreachable"}, status=503)
    worker_ok = last_run is not None and last_run > now - timedelta(minutes=10)
    return JsonResponse(
        {
            "status": "ok" if worker_ok and not withdrawn else "degraded",
            "database": "ok",
            "worker_last_run": last_run.isoformat() if last_run else None,
            "agenda_sources": {
                "external": external.count(),
                "failing": failing,
                "withdrawn_from_search": withdrawn,
            },
        }
    )
