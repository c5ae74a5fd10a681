"""SAS appointment feedback (INT_R03) against a real HTTP server on loopback that plays the
platform: a booking brought by the SAS is POSTed, every later change PUT conditionally on its
identifier, each exactly once, retried with back-off, in the order they happened, each payload
checked against the required elements of the FrAppointmentSAS profile."""

import json
import re
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.utils import timezone
from fhir.resources.R4B.appointment import Appointment as FhirAppointment

from creneau.agenda.queries import offerable_slots
from creneau.booking.services import (
    appointment_cancel,
    appointment_reschedule,
    appointment_status_set,
)
from creneau.channels.queries import channel_scope_for_key
from creneau.notify.models import Message
from creneau.notify.services import messages_sweep
from tests.fhir.test_sas import _book_through, by_type, sas_query

pytestmark = pytest.mark.django_db

FR_V2_0203 = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
IDNPS = "urn:oid:1.2.250.1.71.4.2.1"


class Platform:
    """The SAS's FHIR base, on loopback: records each request, answers the next status."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.statuses: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.received.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "type": self.headers.get("Content-Type"),
                        "key": self.headers.get("X-Request-Id"),
                        "if_none_exist": self.headers.get("If-None-Exist"),
                        "body": body,
                    }
                )
                status = outer.statuses.pop(0) if outer.statuses else 201
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Location", f"/Appointment/{len(outer.received)}")
                self.end_headers()
                self.wfile.write(b"{}")

            do_POST = do_PUT = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/sas/fhir"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def appointments(self) -> list[dict]:
        return [r for r in self.received if "/Appointment" in r["path"]]


@pytest.fixture
def platform(sas, settings):
    settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = (ip_network("127.0.0.0/8"),)
    receiver = Platform()
    setting = sas.platform
    setting.feedback_url = receiver.url
    setting.save()
    yield receiver
    receiver.close()


def check_profile(resource: dict) -> None:
    """The elements FrAppointmentSAS requires (StructureDefinition-FrAppointmentSAS.json)."""
    FhirAppointment.model_validate(resource)
    assert resource["meta"]["profile"] == [
        "http://sas.fr/fhir/StructureDefinition/FrAppointmentSAS"
    ]
    (operator,) = [e for e in resource["extension"] if e["url"].endswith("FrAppointmentOperator")]
    identifier = operator["valueReference"]["identifier"]
    assert len(identifier["type"]["coding"]) == 1
    assert identifier["type"]["coding"][0]["system"] == FR_V2_0203
    assert identifier["type"]["coding"][0]["code"] and identifier["system"] and identifier["value"]
    assert len(resource["identifier"]) == 1
    assert resource["identifier"][0]["system"] and resource["identifier"][0]["value"]
    assert resource["start"] and resource["end"] and resource["created"]
    for participant in resource["participant"]:
        actor = participant["actor"]["identifier"]
        assert actor["type"]["coding"] == [{"system": FR_V2_0203, "code": "IDNPS"}]
        assert actor["system"] == IDNPS and actor["value"]
        assert participant["status"] in ("accepted", "declined", "tentative", "needs-action")
    assert not re.search(r"Dupont|Camille|0612345678|1985", json.dumps(resource))  # no patient


def booked_by_sas(client, sas_client, role, open_agenda, index: int = 0):
    open_agenda(role)
    bundle = sas_client.json("Slot", sas_query(role))
    link = by_type(bundle, "Slot")[index]["comment"]
    return _book_through(client, link, "?origin=sas&regulator=810000000042")


def test_booking_then_cancellation_reach_the_platform_once_each(
    client, sas_client, platform, pitie_neurosurgeon, open_agenda, clock
):
    appointment = booked_by_sas(client, sas_client, pitie_neurosurgeon, open_agenda)
    messages_sweep()
    messages_sweep()  # a second sweep sends nothing again
    (post,) = platform.appointments()
    assert post["method"] == "POST" and post["path"] == "/sas/fhir/Appointment"
    assert post["type"] == "application/fhir+json"
    check_profile(post["body"])
    assert post["body"]["status"] == "booked"
    assert post["body"]["identifier"][0]["value"] == appointment.public_id
    # A conditional create: a retried POST whose answer was lost makes no second resource.
    assert post["if_none_exist"] == "identifier=" + quote(
        f"{post['body']['identifier'][0]['system']}|{appointment.public_id}", safe=""
    )
    regulator = post["body"]["extension"][0]["valueReference"]["identifier"]
    assert regulator["value"] == "810000000042"
    assert post["body"]["participant"][0]["actor"]["identifier"]["value"] == (
        "8" + pitie_neurosurgeon.practitioner.rpps
    )

    appointment_cancel(appointment=appointment, reason="")
    messages_sweep()
    messages_sweep()
    assert len(platform.appointments()) == 2
    put = platform.appointments()[1]
    assert put["method"] == "PUT"
    query = parse_qs(urlsplit(put["path"]).query)
    assert query["identifier"] == [
        f"{post['body']['identifier'][0]['system']}|{appointment.public_id}"
    ]
    check_profile(put["body"])
    assert put["body"]["status"] == "cancelled"


def test_a_move_a_no_show_and_a_visit_done_are_reported(
    client, sas_client, sas, platform, pitie_neurosurgeon, open_agenda, clock
):
    first = booked_by_sas(client, sas_client, pitie_neurosurgeon, open_agenda, 0)
    second = booked_by_sas(client, sas_client, pitie_neurosurgeon, open_agenda, 0)
    messages_sweep()
    # Moved (by the SAS's own channel), to a later slot of the same visit.
    scope = channel_scope_for_key(sas.key)
    later = (
        offerable_slots(scope, timezone.now())
        .filter(visit_type_id=first.visit_type_id, starts_at__gt=first.starts_at)
        .order_by("-starts_at")
        .first()
    )
    appointment_reschedule(appointment=first, scope=scope, slot=later)
    messages_sweep()
    moved = platform.appointments()[-1]
    assert (moved["method"], moved["body"]["status"]) == ("PUT", "booked")
    assert moved["body"]["start"] == later.starts_at.isoformat()
    clock.shift(timedelta(days=40))
    first.refresh_from_db()
    appointment_status_set(appointment=first, status="no_show")
    appointment_status_set(appointment=second, status="done")
    messages_sweep()
    statuses = [(r["method"], r["body"]["status"]) for r in platform.appointments()]
    assert sorted(statuses) == [
        ("POST", "booked"),
        ("POST", "booked"),
        ("PUT", "booked"),
        ("PUT", "fulfilled"),
        ("PUT", "noshow"),
    ]
    for request in platform.appointments():
        check_profile(request["body"])


def test_a_refusing_platform_is_retried_in_order_with_the_same_key(
    client, sas_client, platform, pitie_neurosurgeon, open_agenda, clock
):
    platform.statuses = [503]
    appointment = booked_by_sas(client, sas_client, pitie_neurosurgeon, open_agenda)
    messages_sweep()
    assert [r["method"] for r in platform.appointments()] == ["POST"]
    report = Message.objects.get(appointment=appointment, medium="fhir", kind="confirmation")
    assert report.status == "failed" and report.answer == "POST 503"
    # Cancelled while the booking's report waits for its retry: the PUT waits behind it.
    appointment_cancel(appointment=appointment, reason="")
    messages_sweep()
    assert [r["method"] for r in platform.appointments()] == ["POST"]
    clock.shift(timedelta(minutes=2))
    messages_sweep()
    messages_sweep()
    methods = [r["method"] for r in platform.appointments()]
    assert methods == ["POST", "POST", "PUT"]
    keys = [r["key"] for r in platform.appointments()]
    assert keys[0] == keys[1] != keys[2]
    assert set(
        Message.objects.filter(appointment=appointment, medium="fhir").values_list(
            "status", flat=True
        )
    ) == {"sent"}


def test_a_booking_of_another_channel_is_not_reported(
    client, platform, pitie_neurosurgeon, open_agenda, clock
):
    open_agenda(pitie_neurosurgeon)
    from creneau.agenda.models import Slot
    from tests.conftest import NOW, PATIENT

    slot = Slot.objects.filter(
        practitioner_role=pitie_neurosurgeon, starts_at__gt=NOW + timedelta(days=1)
    ).first()
    answer = client.post(
        "/api/v1/appointments",
        json.dumps({"slot": slot.public_id, "patient": PATIENT}),
        content_type="application/json",
    )
    assert answer.status_code == 201
    messages_sweep()
    assert platform.appointments() == []
