"""The hospital information system as a practitioner's agenda (HL7 v2 SIU over MLLP): a
fictional HIS, in the test, sends its desk's appointments to Créneau's MLLP listener over a real
loopback connection and reads the ACKs; Créneau's own SIU go to an MLLP server the test runs,
acknowledged or refused as a HIS would. The messages are real HL7 v2.5 text."""

import json
import socket
import threading
import time
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from hl7apy.parser import parse_message

from creneau.agenda.models import AgendaSource, BusyInterval, Slot
from creneau.agenda.sources import mllp
from creneau.agenda.sources.his import siu_receive
from creneau.agenda.sources.services import agenda_source_connect
from creneau.booking.models import PARIS
from creneau.booking.services import (
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    appointment_status_set,
)
from creneau.notify.models import Message
from creneau.notify.services import messages_sweep

pytestmark = pytest.mark.django_db


def siu(trigger: str, role, *, start: str, minutes: int = 60, filler: str = "RDV-1001", **more):
    """An SIU of the fictional HIS ("DxCare") for ``role``'s practitioner, in v2.5."""
    rpps = more.get("rpps", role.practitioner.rpps)
    segments = [
        f"MSH|^~\\&|DXCARE|PITIE|CRENEAU|APHP|20270315080000+0100||SIU^{trigger}^SIU_{trigger}|"
        f"{more.get('control', 'MSG' + filler)}|P|2.5",
        f"SCH|{more.get('placer', '')}|{filler}^DXCARE|||||CONSULT^Consultation|||{minutes}|min"
        + "|" * 15
        + "Booked",
        f"TQ1|1||||||{start}|",
        "PID|1||IPP-778899^^^PITIE^PI||LEGRAND^PAUL||19621224|M",
        "RGS|1|A",
        f"AIS|1|A|CONSULT^Consultation|{start}|||{minutes}|min",
        f"AIL|1|A|NCH^^^{role.establishment.finess}",
        f"AIP|1|A|{rpps}^MORIN^BENOIT",
    ]
    return "\r".join(segments)


def _sch_duration(message: str, value: str) -> str:
    """The message with its length only in SCH-9 (AIS-7 left empty), as ``value``."""
    return message.replace("|||60|min|", f"||{value}|min||", 1).replace("|||60|min", "|||", 1)


def exchange(messages: list[str]) -> list[str]:
    """Send ``messages`` on one MLLP connection to Créneau's listener (served in this thread,
    where the test's database is) and return the ACKs."""
    listener = mllp.InlineListener(("127.0.0.1", 0), lambda text: siu_receive(text).ack)
    answers: list[str] = []

    def his() -> None:
        with socket.create_connection(listener.server_address[:2], timeout=10) as connection:
            stream = connection.makefile("rb")
            for text in messages:
                connection.sendall(mllp.frame(text))
                answers.append(mllp.read_frame(stream) or "")

    sender = threading.Thread(target=his)
    sender.start()
    listener.handle_request()
    sender.join(timeout=10)
    listener.server_close()
    return answers


def msa(ack: str) -> tuple[str, str, str]:
    parsed = parse_message(ack, find_groups=False)
    fields = parsed.msa.to_er7().split("|")
    return fields[1], fields[2], fields[3] if len(fields) > 3 else ""


def offered(role, day: datetime) -> list[str]:
    return [
        f"{s.starts_at.astimezone(PARIS):%H:%M}"
        for s in Slot.objects.filter(
            practitioner_role=role,
            is_offered=True,
            visit_type__code="neurosurgery-first",
            starts_at__gte=day,
            starts_at__lt=day + timedelta(days=1),
        ).order_by("starts_at")
    ]


@pytest.fixture
def his_role(pitie_neurosurgeon, open_agenda, clock):
    open_agenda(pitie_neurosurgeon)
    agenda_source_connect(role=pitie_neurosurgeon, kind=AgendaSource.Kind.HIS)
    return pitie_neurosurgeon


TUESDAY = datetime(2027, 3, 16, tzinfo=PARIS)
WEDNESDAY = datetime(2027, 3, 17, tzinfo=PARIS)


def test_the_desks_appointments_occupy_the_practitioners_time_and_each_is_acknowledged(
    his_role,
):
    before = offered(his_role, TUESDAY)
    assert before[:6] == ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]

    answers = exchange(
        [
            siu("S12", his_role, start="202703161000+0100"),
            siu("S12", his_role, start="20270316113000", minutes=30, filler="RDV-1002"),
        ]
    )

    assert [msa(a)[:2] for a in answers] == [("AA", "MSGRDV-1001"), ("AA", "MSGRDV-1002")]
    assert "ACK^S12^ACK" in answers[0].split("\r")[0]
    assert offered(his_role, TUESDAY) == ["09:00", "09:30", "11:00"]
    out = StringIO()
    call_command(
        "agenda",
        "busy",
        his_role.public_id,
        "--from",
        "2027-03-16",
        "--to",
        "2027-03-16",
        "--json",
        stdout=out,
    )
    assert json.loads(out.getvalue()) == [
        {"start": "2027-03-16T09:00:00Z", "end": "2027-03-16T10:00:00Z"},
        {"start": "2027-03-16T10:30:00Z", "end": "2027-03-16T11:00:00Z"},
    ]

    # Moved to Wednesday (S13), then the other one cancelled (S15).
    answers = exchange(
        [
            siu("S13", his_role, start="202703170900+0100"),
            siu("S15", his_role, start="20270316113000", minutes=30, filler="RDV-1002"),
        ]
    )
    assert [msa(a)[0] for a in answers] == ["AA", "AA"]
    assert offered(his_role, TUESDAY) == before
    assert offered(his_role, WEDNESDAY)[:2] == ["10:00", "10:30"]
    assert BusyInterval.objects.filter(source__practitioner_role=his_role).count() == 1


@pytest.mark.parametrize(
    ("message", "code", "field"),
    [
        (lambda role: siu("S12", role, start="202703161000", rpps="10000000000"), "AE", "AIP-3"),
        (lambda role: siu("S12", role, start="16/03/2027 10:00"), "AE", "TQ1-7"),
        (lambda role: siu("S12", role, start="202703161000", filler="", minutes=0), "AE", "SCH-2"),
        (lambda role: siu("S12", role, start="202703161000", minutes=0), "AE", "AIS-7"),
        (lambda role: "this is not HL7 at all", "AR", "HL7"),
        # Poison messages (issue 27, point 14): each gets its AE, the connection stays.
        (
            lambda role: siu("S12", role, start="202703161000").replace(
                "TQ1|1||||||202703161000|", "TQ1|1||||||202703161000|99991231235959-1400"
            ),
            "AE",
            "TQ1-8",
        ),
        (
            lambda role: _sch_duration(siu("S12", role, start="202703161000"), "1e308"),
            "AE",
            "SCH-9",
        ),
        (lambda role: _sch_duration(siu("S12", role, start="202703161000"), "inf"), "AE", "SCH-9"),
        (lambda role: _sch_duration(siu("S12", role, start="202703161000"), "nan"), "AE", "SCH-9"),
        (
            lambda role: siu("S12", role, start="202703161000").replace(
                "SIU^S12^SIU_S12", "ADT^A01"
            ),
            "AR",
            "ADT",
        ),
    ],
)
def test_a_message_that_cannot_be_applied_is_refused_by_its_field_and_changes_nothing(
    his_role, message, code, field
):
    before = offered(his_role, TUESDAY)

    (answer,) = exchange([message(his_role)])

    found_code, _control, text = msa(answer)
    assert found_code == code and field in text, answer
    assert offered(his_role, TUESDAY) == before
    assert not BusyInterval.objects.filter(source__practitioner_role=his_role).exists()


def test_a_booked_slot_under_the_desks_appointment_is_kept_and_reported(
    his_role, public_scope, patient
):
    from tests.agenda.test_calendar_source import staff

    staff(his_role)
    slot = Slot.objects.get(
        practitioner_role=his_role,
        visit_type__code="neurosurgery-first",
        starts_at=datetime(2027, 3, 16, 10, tzinfo=PARIS),
    )
    booked = appointment_book(scope=public_scope, patient=patient, slot=slot).appointment

    (answer,) = exchange([siu("S12", his_role, start="202703161000+0100")])

    assert msa(answer)[0] == "AA"
    slot.refresh_from_db()
    assert slot.booked == 1
    source = AgendaSource.objects.get(practitioner_role=his_role)
    assert source.last_report["booked_in_busy_time"] == [slot.public_id]
    told = Message.objects.filter(kind="conflict", appointment=booked)
    assert sorted(told.values_list("recipient", flat=True)) == [
        "dr@hopital.example",
        "secretary@hopital.example",
    ]
    # The HIS echoing Créneau's own booking back (SCH-1 is the hub's id) occupies nothing more.
    (echo,) = exchange(
        [siu("S12", his_role, start="202703161100+0100", filler="RDV-2", placer=booked.public_id)]
    )
    assert msa(echo)[0] == "AA"
    assert BusyInterval.objects.filter(source=source).count() == 1


class FictionalHis:
    """The HIS's MLLP server: keeps what it receives, refuses the first message (AE) as a HIS
    whose patient index is busy would, acknowledges the others."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.refuse_next = True
        self.server = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._serve, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                connection, _address = self.server.accept()
            except OSError:
                return
            with connection, connection.makefile("rb") as stream:
                while (text := mllp.read_frame(stream)) is not None:
                    self.received.append(text)
                    control = text.split("\r")[0].split("|")[9]
                    code = "AE" if self.refuse_next else "AA"
                    self.refuse_next = False
                    ack = (
                        f"MSH|^~\\&|DXCARE|PITIE|CRENEAU|APHP|20270315080000||ACK^S12^ACK|A{control}"
                        f"|P|2.5\rMSA|{code}|{control}|{'busy' if code == 'AE' else 'ok'}"
                    )
                    connection.sendall(mllp.frame(ack))


def test_the_hubs_bookings_moves_cancellations_and_no_shows_reach_the_his_until_acknowledged(
    his_role, public_scope, patient, settings, clock
):
    his = FictionalHis()
    settings.CRENEAU_HIS_ADDRESS = his.address
    slots = list(
        Slot.objects.filter(
            practitioner_role=his_role, visit_type__code="neurosurgery-first", is_offered=True
        ).order_by("starts_at")[4:7]
    )
    booked = appointment_book(scope=public_scope, patient=patient, slot=slots[0]).appointment

    messages_sweep()
    first = Message.objects.get(appointment=booked, medium="his")
    assert (first.status, first.attempts) != ("sent", 1)  # refused once (AE): to be retried
    clock.shift(timedelta(hours=1))
    messages_sweep()
    first.refresh_from_db()
    assert first.status == "sent"
    sent = parse_message(his.received[-1], find_groups=False)
    assert sent.msh.msh_9.to_er7() == "SIU^S12^SIU_S12"
    assert sent.msh.msh_10.to_er7() == first.idempotency_key[:20]
    assert sent.sch.sch_1.to_er7() == f"{booked.public_id}^CRENEAU"
    assert sent.tq1.tq1_7.to_er7() == slots[0].starts_at.astimezone(PARIS).strftime(
        "%Y%m%d%H%M%S%z"
    )
    assert sent.pid.pid_5.to_er7() == f"{patient.last_name.upper()}^{patient.first_name}"
    assert sent.aip.aip_3.to_er7().startswith(his_role.practitioner.rpps)
    # The retry is the same message (its control id, every segment), sent at its own time.
    first_try, retry = (m.split("\r") for m in his.received)
    assert first_try[1:] == retry[1:] and first_try[0].split("|")[9] == retry[0].split("|")[9]

    appointment_reschedule(appointment=booked, scope=public_scope, slot=slots[1])
    messages_sweep()
    appointment_status_set(appointment=booked, status="no_show")
    messages_sweep()
    other = appointment_book(scope=public_scope, patient=patient, slot=slots[2]).appointment
    appointment_cancel(appointment=other, reason="")
    messages_sweep()
    messages_sweep()
    triggers = [parse_message(m, find_groups=False).msh.msh_9.to_er7() for m in his.received]
    assert triggers == [
        "SIU^S12^SIU_S12",
        "SIU^S12^SIU_S12",
        "SIU^S13^SIU_S13",
        "SIU^S26^SIU_S26",
        "SIU^S12^SIU_S12",
        "SIU^S15^SIU_S15",
    ]
    assert set(Message.objects.filter(medium="his").values_list("status", flat=True)) == {"sent"}
    # Créneau's own SIU, echoed back by the HIS, occupy nothing.
    (echo,) = exchange([his.received[2].replace("CRENEAU|APHP", "DXCARE|PITIE", 1)])
    assert msa(echo)[0] == "AA"
    assert not BusyInterval.objects.filter(source__practitioner_role=his_role).exists()
    his.server.close()


def test_creneau_mllp_listens_and_acknowledges(tmp_path):
    """The command itself, as the supervisor runs it (its own process and database)."""
    import subprocess
    import sys
    import time

    from tests.cli import free_port, hub_env

    port = free_port()
    env = hub_env(tmp_path)
    migrated = subprocess.run(
        [sys.executable, "-m", "creneau", "migrate", "-v", "0"], env=env, capture_output=True
    )
    assert migrated.returncode == 0, migrated.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "creneau", "mllp", "--bind", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "Listening for HL7 SIU" in process.stdout.readline()
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = mllp.send(
                    f"127.0.0.1:{port}", "MSH|^~\\&|X|Y|Z|W|2027||ADT^A01|7|P|2.5", timeout=5
                )
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert msa(answer)[:2] == ("AR", "7")
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def listener(settings):
    """The threaded listener, as `creneau mllp` serves it, acknowledging every message."""
    settings.CRENEAU_MLLP_MAX_CONNECTIONS = 3
    settings.CRENEAU_MLLP_IDLE_SECONDS = 1
    settings.CRENEAU_MLLP_MESSAGE_SECONDS = 1
    served = mllp.Listener(("127.0.0.1", 0), lambda text: "MSH|^~\\&|ACK")
    threading.Thread(target=served.serve_forever, daemon=True).start()
    yield served.server_address[:2]
    served.shutdown()
    served.server_close()


def _closed(connection: socket.socket, within: float) -> bool:
    connection.settimeout(within)
    try:
        return connection.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_the_listener_caps_its_connections_and_closes_slow_ones(listener):
    """Issue 27, point 14: half-open connections are bounded, a byte now and then renews none."""
    held = [socket.create_connection(listener, timeout=5) for _ in range(3)]
    extra = socket.create_connection(listener, timeout=5)
    assert _closed(extra, within=2)  # refused at once: three are open
    trickling = held[0]
    trickling.sendall(mllp.START)
    started = time.monotonic()
    for _ in range(4):
        time.sleep(0.4)
        try:
            trickling.sendall(b"M")
        except OSError:
            break
    assert _closed(trickling, within=3) and time.monotonic() - started < 4
    assert all(_closed(c, within=3) for c in held[1:])  # idle: closed after a second
    after = socket.create_connection(listener, timeout=5)  # their places are free again
    after.sendall(mllp.frame("MSH|^~\\&|HIS"))
    assert mllp.read_frame(after.makefile("rb")) == "MSH|^~\\&|ACK"
    for connection in [*held, extra, after]:
        connection.close()
