"""Prometheus metrics at ``/metrics`` (prometheus_client), for the hospital's monitoring:

- requests answered and their latency, per route pattern (never a path: a path may carry an
  identifier) and status class;
- bookings made, per kind of channel, and refusals answered, per code;
- read at each scrape from the database: messages waiting to be sent, the ledger's size, the
  entries not yet in a checkpoint and the age of the last checkpoint, the worker's last run, the
  external agendas withdrawn from search.

Under ``creneau serve`` every gunicorn worker counts in the files of PROMETHEUS_MULTIPROC_DIR
(set by ``creneau serve`` and ``creneau demo``), and a scrape adds them up, whichever worker
answers. Only the networks of CRENEAU_METRICS_ALLOWED_NETWORKS (loopback by default) get an
answer; anyone else a 404. No patient data in any metric."""

import ipaddress
import os
import time

from django.conf import settings
from django.db.models import Max
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

REQUESTS = Counter("creneau_http_requests", "HTTP requests answered", ["method", "route", "status"])
LATENCY = Histogram(
    "creneau_http_request_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BOOKINGS = Counter("creneau_bookings", "Appointments booked", ["channel_kind"])
REFUSALS = Counter("creneau_refusals", "Refusals recorded in the ledger", ["code"])


class MetricsMiddleware:
    """Counts every answer and its time, by the route's pattern (``api/v1/slots``,
    ``staff/appointments/<str:appointment_id>/``): bounded labels, no identifiers."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.route or match.view_name) if match else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        LATENCY.labels(method, route).observe(time.perf_counter() - started)
        REQUESTS.labels(method, route, f"{response.status_code // 100}xx").inc()
        return response


_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class DatabaseCollector:
    """What the database knows, read at each scrape (a few indexed counts)."""

    def collect(self):
        from creneau.agenda.models import AgendaSource
        from creneau.ledger.models import Checkpoint, Entry
        from creneau.notify.models import Message
        from creneau.operations.models import ScheduledJob

        now = timezone.now()
        queued = Message.objects.filter(
            status__in=[Message.Status.QUEUED, Message.Status.FAILED]
        ).count()
        yield GaugeMetricFamily(
            "creneau_messages_waiting", "Messages queued or to be tried again", value=queued
        )
        sequenced = Entry.objects.aggregate(last=Max("leaf_index"))["last"]
        size = 0 if sequenced is None else sequenced + 1
        pending = Entry.objects.filter(leaf_index__isnull=True).count()
        yield GaugeMetricFamily(
            "creneau_ledger_entries", "Entries in the ledger's tree", value=size + pending
        )
        checkpoint = Checkpoint.objects.order_by("-size").first()
        behind = size + pending - (checkpoint.size if checkpoint else 0)
        yield GaugeMetricFamily(
            "creneau_ledger_entries_after_checkpoint",
            "Entries not yet covered by a signed checkpoint",
            value=behind,
        )
        if checkpoint is not None:
            yield GaugeMetricFamily(
                "creneau_ledger_checkpoint_age_seconds",
                "Time since the last signed checkpoint",
                value=(now - checkpoint.created_at).total_seconds(),
            )
        last_run = ScheduledJob.objects.aggregate(last=Max("last_run_at"))["last"]
        if last_run is not None:
            yield GaugeMetricFamily(
                "creneau_worker_last_run_age_seconds",
                "Time since the worker last ran a periodic job",
                value=(now - last_run).total_seconds(),
            )
        yield GaugeMetricFamily(
            "creneau_agenda_sources_withdrawn",
            "External agendas whose slots are withdrawn from search (stale)",
            value=AgendaSource.objects.exclude(kind=AgendaSource.Kind.BUILTIN)
            .filter(stale_after__lte=now)
            .count(),
        )


def monitoring_allowed(request: HttpRequest) -> bool:
    from creneau.booking.throttling import client_address

    try:
        address = ipaddress.ip_address(client_address(request))
    except ValueError:
        return False
    return any(address in network for network in settings.CRENEAU_METRICS_ALLOWED_NETWORKS)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not monitoring_allowed(request):
        raise Http404("no metrics here")
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)
    else:
        counted = REGISTRY
    database = CollectorRegistry()
    database.register(DatabaseCollector())
    body = generate_latest(counted) + generate_latest(database)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
