"""A practitioner whose agenda is another hub's: two Créneau hubs. Hub B is `creneau demo` in a
process of its own, publishing through its FHIR/IHE server; hub A is this test's (its database
the suite's), federating one of B's practitioners through a loopback link that the tests can
cut; hub A2, another `creneau demo` process, federates the same practitioner to race A for
B's slots. Nothing stands in for a hub: every call goes over HTTP to a real one."""

import base64
import contextlib
import json
import socket
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path

import pytest
from django.utils import timezone

from creneau.agenda.models import AgendaSource, Slot
from creneau.agenda.queries import offerable_slots
from creneau.agenda.sources.services import agenda_source_connect, agenda_source_sync
from creneau.booking.models import Appointment
from creneau.ledger.models import Entry
from tests.cli import free_port, hub_database, hub_env, run_creneau, start_demo_hub, suite_engine
from tests.conftest import PATIENT

pytestmark = pytest.mark.django_db


class Link:
    """A TCP relay on loopback between hub A and hub B, which a test can cut ("down": each
    connection closed at once) or leave hanging ("hang": nothing answered): B itself keeps
    running, as when the network between two hospitals fails."""

    def __init__(self, port: int, target: int) -> None:
        self.port, self.target, self.mode = port, target, "up"
        # How many answers to a $book to lose on the way back (B books, A never hears).
        self.lose_book_answers = 0
        self.server = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _address = self.server.accept()
            except OSError:
                return
            if self.mode == "down":
                near.close()
                continue
            if self.mode == "hang":
                threading.Timer(10, near.close).start()
                continue
            far = socket.create_connection(("127.0.0.1", self.target))
            first = near.recv(65536)
            far.sendall(first)
            if self.lose_book_answers and b"/Appointment/$book" in first.split(b"\r\n", 1)[0]:
                self.lose_book_answers -= 1
                threading.Thread(target=self._lose, args=(near, far), daemon=True).start()
                continue
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _lose(near: socket.socket, far: socket.socket) -> None:
        """Let the rest of the request through, wait for B's whole answer, then hang up on A."""
        threading.Thread(target=Link._pump, args=(near, far), daemon=True).start()
        with contextlib.suppress(OSError):
            while far.recv(65536):
                pass
        for end in (near, far):
            with contextlib.suppress(OSError):
                end.close()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()


def _start(data_dir, env):
    try:
        return start_demo_hub(data_dir, env)
    except RuntimeError as error:
        pytest.fail(str(error))


@pytest.fixture(scope="module")
def hubs(tmp_path_factory):
    """B behind its link (its public address is the link's, so that its CapabilityStatement
    names the token address A reaches it by), and A2; both started at once."""
    engine = suite_engine()
    b_dir, a2_dir = tmp_path_factory.mktemp("hub-b"), tmp_path_factory.mktemp("hub-a2")
    link_port = free_port()
    quiet = {
        "CRENEAU_HORIZON_WEEKS": "2",
        "CRENEAU_RATE_BOOKINGS": "0",
        "CRENEAU_RATE_BOOKINGS_PER_PHONE": "0",
        "CRENEAU_RATE_HOLDS": "0",
    }
    with (
        hub_database(engine, b_dir) as (b_engine, b_database),
        hub_database(engine, a2_dir) as (a2_engine, _a2_database),
    ):
        b_env = hub_env(
            tmp_path_factory.mktemp("b-home"),
            CRENEAU_PUBLIC_URL=f"http://127.0.0.1:{link_port}",
            **quiet,
            **b_engine,
        )
        a2_env = hub_env(tmp_path_factory.mktemp("a2-home"), **quiet, **a2_engine)
        with ThreadPoolExecutor(2) as pool:
            started_b = pool.submit(_start, b_dir, b_env)
            started_a2 = pool.submit(_start, a2_dir, a2_env)
            (b_base, b_process), (a2_base, a2_process) = started_b.result(), started_a2.result()
        link = Link(link_port, int(b_base.rsplit(":", 1)[1]))
        credentials = json.loads((Path(b_dir) / "demo-credentials.json").read_text())
        partner = next(p for p in credentials["platforms"] if p["kind"] == "fhir_partner")
        yield {
            "b_base": b_base,
            "b_fhir": f"http://127.0.0.1:{link_port}/fhir",
            "b_db": b_database,
            "partner": partner,
            "link": link,
            "a2_base": a2_base,
            "a2_env": {
                **a2_env,
                "CRENEAU_DATA_DIR": str(a2_dir),
                "CRENEAU_OUTGOING_ALLOWED_NETWORKS": "127.0.0.0/8",
            },
            "tmp": tmp_path_factory.mktemp("secrets"),
        }
        link.close()
        for process in (b_process, a2_process):
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture
def link(hubs):
    hubs["link"].mode, hubs["link"].lose_book_answers = "up", 0
    yield hubs["link"]
    hubs["link"].mode, hubs["link"].lose_book_answers = "up", 0


def b_role(hubs, role) -> str:
    """B's id of the same practitioner at the same hospital (the two hubs hold one network)."""
    rows = hubs["b_db"].rows(
        "select r.public_id from directory_practitionerrole r "
        "join directory_practitioner p on p.id = r.practitioner_id "
        "join directory_establishment e on e.id = r.establishment_id "
        f"where p.rpps = '{role.practitioner.rpps}' and e.finess = '{role.establishment.finess}'"
    )
    assert len(rows) == 1
    return rows[0][0]


@pytest.fixture
def federated(hubs, link, pitie_neurosurgeon, public_scope, settings):
    settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = (ip_network("127.0.0.0/8"),)
    settings.CRENEAU_AGENDA_TIMEOUT_SECONDS = 2
    source = agenda_source_connect(
        role=pitie_neurosurgeon,
        kind=AgendaSource.Kind.FHIR,
        url=hubs["b_fhir"],
        username=hubs["partner"]["client_id"],
        secret=hubs["partner"]["client_secret"],
        remote_schedule=b_role(hubs, pitie_neurosurgeon),
    )
    assert agenda_source_sync(source=source).ok
    return source


def b_free_slots(hubs, schedule: str) -> set[str]:
    rows = hubs["b_db"].rows(
        "select s.public_id from agenda_slot s join directory_practitionerrole r "
        "on r.id = s.practitioner_role_id "
        f"where r.public_id = '{schedule}' and s.booked = 0 and s.is_offered "
        "and (s.held = 0 or s.held_until < CURRENT_TIMESTAMP)"
    )
    return {row[0] for row in rows}


def b_appointment(hubs, public_id: str) -> tuple[str, str]:
    rows = hubs["b_db"].rows(
        "select a.status, s.public_id from booking_appointment a "
        f"join agenda_slot s on s.id = a.slot_id where a.public_id = '{public_id}'"
    )
    assert len(rows) == 1, rows
    return rows[0]


def payload(entry: Entry) -> dict:
    data = json.loads(entry.data)
    return data.get("payload", data)


def post(client, path, body, **headers):
    return client.post(path, json.dumps(body), content_type="application/json", headers=headers)


def remote_slots(role):
    return Slot.objects.filter(practitioner_role=role, source=Slot.Source.FHIR).order_by(
        "starts_at"
    )


@pytest.mark.parametrize("api", ["ihe", "rest"])
def test_a_patient_of_hub_a_books_moves_and_cancels_in_hub_bs_agenda(
    client, hubs, federated, pitie_neurosurgeon, api
):
    """Through IHE ITI Scheduling ($hold, $book), or plain FHIR REST (Appointment create and
    update), which hub B also serves."""
    AgendaSource.objects.filter(pk=federated.pk).update(remote_api=api)
    federated.refresh_from_db()
    schedule = federated.remote_schedule
    mine = remote_slots(pitie_neurosurgeon)
    # A offers B's free slots of that practitioner, and nothing of its own rules.
    assert {s.external_id for s in mine} == b_free_slots(hubs, schedule)
    assert mine.count() >= 10
    assert not Slot.objects.filter(
        practitioner_role=pitie_neurosurgeon, source=Slot.Source.BUILTIN, booked=0
    ).exists()
    found = client.get(
        "/api/v1/slots",
        {
            "specialty": "neurosurgery",
            "practitioner": pitie_neurosurgeon.practitioner.public_id,
            "limit": 5,
        },
    ).json()["items"]
    assert found and {i["id"] for i in found} <= {s.public_id for s in mine}

    hold = post(client, "/api/v1/holds", {"slot": found[0]["id"]})
    assert hold.status_code == 201, hold.content
    remote_hold = Slot.objects.get(public_id=found[0]["id"]).holds.get().external_id
    held_there = Slot.objects.get(public_id=found[0]["id"]).external_id not in b_free_slots(
        hubs, schedule
    )
    # IHE holds there too; plain REST has no hold: the booking takes the slot there at once.
    assert (bool(remote_hold), held_there) == ((True, True) if api == "ihe" else (False, False))
    booked = post(client, "/api/v1/appointments", {"hold": hold.json()["id"], "patient": PATIENT})
    assert booked.status_code == 201, booked.content
    appointment = Appointment.objects.get(public_id=booked.json()["id"])
    first = Slot.objects.get(public_id=found[0]["id"])
    assert b_appointment(hubs, appointment.external_id) == ("booked", first.external_id)
    token = booked.json()["manage_token"]

    # A sync afterwards keeps the booked slot (B no longer lists it as free).
    assert agenda_source_sync(source=federated).ok
    first.refresh_from_db()
    assert first.booked == 1

    second = remote_slots(pitie_neurosurgeon).filter(visit_type=first.visit_type, booked=0).last()
    moved = post(
        client,
        f"/api/v1/appointments/{appointment.public_id}/reschedule",
        {"slot": second.public_id},
        **{"X-Manage-Token": token},
    )
    assert moved.status_code == 200, moved.content
    assert b_appointment(hubs, appointment.external_id) == ("booked", second.external_id)
    assert first.external_id in b_free_slots(hubs, schedule)

    cancelled = post(
        client,
        f"/api/v1/appointments/{appointment.public_id}/cancel",
        {"reason": "mieux"},
        **{"X-Manage-Token": token},
    )
    assert cancelled.status_code == 200, cancelled.content
    assert b_appointment(hubs, appointment.external_id)[0] == "cancelled_operator"
    assert second.external_id in b_free_slots(hubs, schedule)


def b_token(hubs) -> str:
    partner = hubs["partner"]
    pair = f"{partner['client_id']}:{partner['client_secret']}".encode()
    request = urllib.request.Request(
        hubs["b_base"] + "/oauth/token/",
        data=b"grant_type=client_credentials",
        headers={"Authorization": "Basic " + base64.b64encode(pair).decode()},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["access_token"]


def test_a_slot_taken_in_bs_agenda_meanwhile_is_refused_cleanly_and_recorded(
    client, hubs, federated, pitie_neurosurgeon
):
    slot = remote_slots(pitie_neurosurgeon).last()
    # Someone books it directly on B (B's own public site) before A syncs again.
    taken = urllib.request.Request(
        hubs["b_base"] + "/api/v1/appointments",
        data=json.dumps({"slot": slot.external_id, "patient": PATIENT}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(taken, timeout=10) as answer:
        assert answer.status == 201
    entries = Entry.objects.count()

    refused = post(client, "/api/v1/appointments", {"slot": slot.public_id, "patient": PATIENT})

    assert (refused.status_code, refused.json()["code"]) == (409, "slot_taken_remotely")
    slot.refresh_from_db()
    assert (slot.booked, slot.held, slot.is_offered) == (0, 0, False)
    assert not Appointment.objects.filter(slot=slot).exists()
    refusal = Entry.objects.order_by("-pk").first()
    assert Entry.objects.count() == entries + 1
    assert refusal.kind == "refusal"
    said = payload(refusal)
    assert said["code"] == "slot_taken_remotely"
    assert said["slot"] == slot.public_id and said["remote"]
    assert "Martin" not in refusal.data
    # The next sync drops it: B no longer lists it.
    assert agenda_source_sync(source=federated).ok
    assert not Slot.objects.filter(pk=slot.pk).exists()


@pytest.mark.parametrize("mode", ["down", "hang"])
def test_hub_b_offline_refuses_bookings_then_withdraws_its_slots_and_offers_them_again(
    client, hubs, federated, link, pitie_neurosurgeon, public_scope, mode
):
    slot = remote_slots(pitie_neurosurgeon).first()
    link.mode = mode

    refused = post(client, "/api/v1/appointments", {"slot": slot.public_id, "patient": PATIENT})
    assert (refused.status_code, refused.json()["code"]) == (503, "agenda_unavailable")
    slot.refresh_from_db()
    assert (slot.booked, slot.held) == (0, 0)
    assert slot.external_id in b_free_slots(hubs, federated.remote_schedule)
    assert payload(Entry.objects.order_by("-pk").first())["code"] == "agenda_unavailable"

    # Within the freshness limit the slots stay; past it, a failed sync leaves them withdrawn.
    later = timezone.now() + timedelta(minutes=federated.freshness_minutes + 1)
    outcome = agenda_source_sync(source=federated, now=later)
    assert not outcome.ok and outcome.source.last_error
    assert (
        not offerable_slots(public_scope, later)
        .filter(practitioner_role=pitie_neurosurgeon)
        .exists()
    )

    link.mode = "up"
    assert agenda_source_sync(source=federated, now=later).ok
    assert (
        offerable_slots(public_scope, later).filter(practitioner_role=pitie_neurosurgeon).exists()
    )


def test_a_booking_whose_answer_is_lost_is_undone_there(
    client, hubs, federated, link, pitie_neurosurgeon
):
    """B books, and its answer never reaches A: A tells the patient 503 and cancels what B
    booked for that booking (found by the hub's reference), so that neither side keeps it."""
    slot = remote_slots(pitie_neurosurgeon).first()
    link.lose_book_answers = 1

    refused = post(client, "/api/v1/appointments", {"slot": slot.public_id, "patient": PATIENT})

    assert (refused.status_code, refused.json()["code"]) == (503, "agenda_unavailable")
    assert link.lose_book_answers == 0, "the $book answer was lost on the way"
    slot.refresh_from_db()
    assert (slot.booked, slot.held) == (0, 0)
    on_b = hubs["b_db"].rows(
        "select a.status from booking_appointment a join agenda_slot s on s.id = a.slot_id "
        f"where s.public_id = '{slot.external_id}'"
    )
    assert [status for (status,) in on_b] == ["cancelled_operator"]
    assert slot.external_id in b_free_slots(hubs, federated.remote_schedule)


def a2_post(hubs, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        hubs["a2_base"] + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_two_hubs_racing_for_the_same_remote_slots_one_wins_each(
    client, hubs, federated, pitie_neurosurgeon
):
    schedule = federated.remote_schedule
    secret = hubs["tmp"] / "b-secret"
    secret.write_text(hubs["partner"]["client_secret"])
    a2_role = run_creneau(
        "shell",
        "-c",
        "from creneau.directory.models import PractitionerRole as R; print(R.objects.get("
        f"practitioner__rpps='{pitie_neurosurgeon.practitioner.rpps}', "
        f"establishment__finess='{pitie_neurosurgeon.establishment.finess}').public_id)",
        env=hubs["a2_env"],
    ).stdout.split()[-1]
    connected = run_creneau(
        "agenda",
        "connect",
        a2_role,
        "--fhir",
        hubs["b_fhir"],
        "--client-id",
        hubs["partner"]["client_id"],
        "--client-secret-file",
        str(secret),
        "--schedule",
        schedule,
        env=hubs["a2_env"],
    )
    assert connected.returncode == 0, connected.stderr
    assert "free slots there" in connected.stdout
    a2_slots = json.loads(
        urllib.request.urlopen(
            f"{hubs['a2_base']}/api/v1/slots?specialty=neurosurgery&practitioner="
            f"{pitie_neurosurgeon.practitioner.rpps}&limit=50",
            timeout=10,
        ).read()
    )["items"]
    assert agenda_source_sync(source=federated).ok
    mine = {
        (s.starts_at.isoformat().replace("+00:00", "Z"), s.visit_type.code): s
        for s in remote_slots(pitie_neurosurgeon).select_related("visit_type")
    }
    # No two contested slots overlap (B keeps a practitioner's time: a booking makes the
    # overlapping slots of other visit types busy there).
    contested, free_from = [], None
    for theirs in sorted(a2_slots, key=lambda item: item["starts_at"]):
        ours = mine.get((theirs["starts_at"], theirs["visit_type"]["code"]))
        if ours is not None and (free_from is None or ours.starts_at >= free_from):
            free_from = ours.ends_at
            contested.append((theirs, ours))
    contested = contested[:8]
    assert len(contested) >= 4

    results = []
    for number, (theirs, ours) in enumerate(contested):
        start = threading.Barrier(2)
        caller = {**PATIENT, "phone": f"06 12 34 57 {number:02d}"}

        def other_hub(slot_id=theirs["id"], barrier=start, caller=caller):
            barrier.wait()
            return a2_post(hubs, "/api/v1/appointments", {"slot": slot_id, "patient": caller})

        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(other_hub)
            start.wait()
            here = post(client, "/api/v1/appointments", {"slot": ours.public_id, "patient": caller})
            there = pending.result()
        results.append((here.status_code, there[0]))
        statuses = sorted([here.status_code, there[0]])
        assert statuses == [201, 409], (here.content, there)
        # B booked that slot once, for whichever hub won.
        booked_on_b = hubs["b_db"].rows(
            "select count(*) from booking_appointment a join agenda_slot s on s.id = a.slot_id "
            f"where s.public_id = '{ours.external_id}' and a.status = 'booked'"
        )[0][0]
        assert booked_on_b == 1
        ours.refresh_from_db()
        assert ours.booked == (here.status_code == 201)
    print("hub A, hub A2:", results)


class Broken:
    """A FHIR server on loopback that signs in properly, then answers its Slot search with
    what ``answer`` says: a good page, or one of the ways a vendor's server goes wrong."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self
        self.answer = "good"

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: bytes, kind: str = "application/fhir+json"):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                token = {"access_token": "t", "token_type": "Bearer", "expires_in": 3600}
                self._send(200, json.dumps(token).encode(), "application/json")

            def do_GET(self):
                base = f"http://127.0.0.1:{self.server.server_port}"
                if self.path.startswith("/fhir/metadata"):
                    uris = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
                    statement = {
                        "resourceType": "CapabilityStatement",
                        "rest": [
                            {
                                "security": {
                                    "extension": [
                                        {
                                            "url": uris,
                                            "extension": [
                                                {"url": "token", "valueUri": base + "/token"}
                                            ],
                                        }
                                    ]
                                }
                            }
                        ],
                    }
                    return self._send(200, json.dumps(statement).encode())
                start = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
                slot = {
                    "resourceType": "Slot",
                    "id": "remote-1",
                    "serviceType": [{"coding": [{"code": "neurosurgery-first"}]}],
                    "status": "free",
                    "start": start.isoformat(),
                    "end": (start + timedelta(minutes=30)).isoformat(),
                }
                bundle = {"resourceType": "Bundle", "type": "searchset", "entry": []}
                kind = outer.answer
                if kind == "not_json":
                    return self._send(200, b"<html>maintenance</html>", "text/html")
                if kind == "error":
                    return self._send(500, b'{"resourceType": "OperationOutcome"}')
                if kind == "no_end":
                    del slot["end"]
                if kind == "elsewhere":
                    bundle["link"] = [{"relation": "next", "url": "http://10.0.0.1/fhir/Slot"}]
                bundle["entry"] = [{"resource": slot}]
                return self._send(200, json.dumps(bundle).encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_port}/fhir"


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ("not_json", "remote_invalid"),
        ("error", "remote_error"),
        ("no_end", "remote_invalid"),
        ("elsewhere", "remote_invalid"),
    ],
)
def test_a_broken_fhir_server_changes_nothing_and_says_why(
    pitie_neurosurgeon, settings, answer, code
):
    settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = (ip_network("127.0.0.0/8"),)
    broken = Broken()
    try:
        source = agenda_source_connect(
            role=pitie_neurosurgeon,
            kind=AgendaSource.Kind.FHIR,
            url=broken.base,
            username="hub-a",
            secret="s3cret",
            remote_schedule="their-role",
        )
        assert agenda_source_sync(source=source).ok
        before = list(remote_slots(pitie_neurosurgeon).values_list("external_id", "starts_at"))
        assert [external for external, _start in before] == ["remote-1"]

        broken.answer = answer
        outcome = agenda_source_sync(source=source)

        assert not outcome.ok
        source.refresh_from_db()
        assert source.last_error and source.last_success_at < source.last_attempt_at
        assert list(remote_slots(pitie_neurosurgeon).values_list("external_id", "starts_at")) == (
            before
        )
        from creneau.agenda.sources.fhir_agenda import FhirAgenda, RemoteUnavailable

        with pytest.raises(RemoteUnavailable) as raised:
            FhirAgenda(source).slots(now=timezone.now(), until=timezone.now() + timedelta(weeks=2))
        assert raised.value.code == code
        assert "s3cret" not in source.last_error
    finally:
        broken.server.shutdown()
