"""Operations: liveness and readiness for the load balancer, Prometheus metrics for the
monitoring (requests, bookings, refusals, the queue, the ledger's lag), and structured logs with
no secret and no patient in them."""

import json
import logging
import re
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from creneau.agenda.models import Slot
from creneau.booking.services import appointment_book
from creneau.operations.log_redaction import JsonFormatter

pytestmark = pytest.mark.django_db


def metric(text: str, name: str, **labels) -> float:
    """The value of one sample of the exposition text (0 when it is not there yet)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        sample, _space, value = line.rpartition(" ")
        found = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})?", sample)
        if found and found.group(1) == name:
            have = ",".join(sorted((found.group(2) or "").split(","))) if found.group(2) else ""
            if have == wanted:
                return float(value)
    return 0.0


def test_liveness_asks_nothing_and_readiness_asks_the_database_and_the_cache(client):
    assert client.get("/healthz").json() == {"status": "alive"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok" and ready.json()["cache"] == "ok"


def test_a_cache_that_does_not_answer_makes_the_server_unready(client):
    unreachable = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5},
        }
    }
    with override_settings(CACHES=unreachable):
        answer = client.get("/readyz")
    assert answer.status_code == 503 and answer.json()["cache"] == "unreachable"
    assert client.get("/healthz").status_code == 200  # alive all the same


def test_metrics_count_requests_bookings_refusals_the_queue_and_the_ledger(
    client,
    pitie_neurosurgeon,
    private_neurosurgeon,
    open_agenda,
    public_scope,
    patient,
    django_capture_on_commit_callbacks,
):
    open_agenda(pitie_neurosurgeon)
    open_agenda(private_neurosurgeon)
    before = client.get("/metrics").content.decode()
    client.get("/readyz")
    slot = Slot.objects.filter(practitioner_role=pitie_neurosurgeon).order_by("starts_at")[3]
    with django_capture_on_commit_callbacks(execute=True):  # counted once committed
        appointment_book(scope=public_scope, patient=patient, slot=slot)
    private = Slot.objects.filter(practitioner_role=private_neurosurgeon).first()
    refused = client.post(
        "/api/v1/holds", json.dumps({"slot": private.public_id}), content_type="application/json"
    )
    assert refused.status_code == 403

    answer = client.get("/metrics")

    assert answer["Content-Type"].startswith("text/plain")
    after = answer.content.decode()
    ready = {"method": "GET", "route": "readyz", "status": "2xx"}
    assert metric(after, "creneau_http_requests_total", **ready) == (
        metric(before, "creneau_http_requests_total", **ready) + 1
    )
    booked = {"channel_kind": "public_site"}
    assert metric(after, "creneau_bookings_total", **booked) == (
        metric(before, "creneau_bookings_total", **booked) + 1
    )
    refusal = {"code": "out_of_perimeter"}
    assert metric(after, "creneau_refusals_total", **refusal) == (
        metric(before, "creneau_refusals_total", **refusal) + 1
    )
    assert metric(after, "creneau_messages_waiting") >= 1  # the confirmation
    assert metric(after, "creneau_ledger_entries") >= 2  # the booking and the refusal
    assert metric(after, "creneau_ledger_entries_after_checkpoint") >= 2
    assert patient.last_name not in after and patient.phone not in after


def test_metrics_answer_only_the_monitoring_networks(client):
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 404
    with override_settings(CRENEAU_METRICS_ALLOWED_NETWORKS=()):
        assert client.get("/metrics").status_code == 404


def test_structured_logs_are_json_lines_without_secrets():
    record = logging.LogRecord(
        "django.request", logging.WARNING, __file__, 1, "Not Found: %s", ("/a/SECRETTOKEN",), None
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "WARNING" and line["logger"] == "django.request"
    assert line["message"] == "Not Found: /a/[redacted]"
    assert line["time"].endswith("+00:00")


def test_the_benchmarks_baseline_is_not_served_outside_a_benchmark(client, aphp):
    establishment = aphp.establishments.first()
    assert client.get(f"/bench/baseline/{establishment.pk}").status_code == 404


# Every parameter of the hub's routes, said to be a secret (CAPABILITIES) or not: a new route
# fails here until someone decides which it is.
NOT_SECRET = {
    # ids that open nothing alone (a manage token or a staff session is needed as well), and
    # the admin's own
    "appointment_id",
    "entry_id",
    "practitioner_id",
    "establishment_id",
    "role_id",
    "rule_id",
    "block_id",
    "department_id",
    "resource_type",
    "resource_id",
    "name",
    "path",
    "kind",
    "public_id",
    "object_id",
    "content_type_id",
    "id",
    "pk",
    "app_label",
    "url",
    # a widget's or platform's key is published with it (the embed snippet, SMART files)
    "channel_key",
}


def _routes(patterns=None, prefix=""):
    from django.urls import URLResolver, get_resolver

    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern)


def test_every_capability_in_a_route_is_redacted_from_the_logs():
    """Issue 27, point 16: each route whose path carries a secret, with a marker in its place,
    comes out of the log redaction without the marker; every other parameter is listed."""
    from creneau.operations.log_redaction import CAPABILITIES, redact

    parameter = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)")
    carrying = []
    for route in _routes():
        names = [a or b for a, b in parameter.findall(route)]
        assert set(names) <= CAPABILITIES | NOT_SECRET, (route, names)
        if CAPABILITIES & set(names):
            path = "/" + parameter.sub(
                lambda m: "s3cretMarker" if (m.group(1) or m.group(2)) in CAPABILITIES else "x",
                route.lstrip("^").rstrip("$"),
            )
            carrying.append(path)
            logged = redact(f'GET {path}?lang=fr HTTP/1.1" 200')
            assert "s3cretMarker" not in logged, (route, logged)
    # the agenda feed, the short links, a platform's link and the holds' pages at least
    assert len(carrying) >= 10, carrying


def test_the_public_reads_only_whether_the_hub_is_ready(client, pitie_neurosurgeon, clock):
    """Issue 27, point 17: which practitioners' agendas are withdrawn is for monitoring."""
    from creneau.agenda.sources.services import agenda_source_connect

    source = agenda_source_connect(
        role=pitie_neurosurgeon, kind="calendar", url="https://calendar.example/x.ics"
    )
    type(source).objects.filter(pk=source.pk).update(
        stale_after=timezone.now() - timedelta(hours=1)
    )
    outside = client.get("/readyz", REMOTE_ADDR="192.0.2.10")
    assert outside.status_code == 200 and outside.json() == {"status": "degraded"}
    inside = client.get("/readyz").json()  # loopback: the monitoring network by default
    assert inside["agenda_sources"]["withdrawn_from_search"] == [pitie_neurosurgeon.public_id]
