"""The hospital information system as an agenda source (HL7 v2 SIU, STANDARDS.md §5).

In: the HIS sends SIU for the appointments its desk books (S12 new, S13 moved, S14 changed,
S15 cancelled, S26 no-show) to `creneau mllp`; each occupies the practitioner's time in Créneau
(a busy interval keyed by the HIS's appointment id, SCH-2 or else SCH-1), so the overlapping
slots leave search at once, and each message gets its ACK: AA once stored, AE naming the field
when it cannot be applied, AR when it is not an SIU at all. Nothing is stored from a message that
is refused. Messages about Créneau's own appointments (SCH-1 is the hub's id, as in the SIU it
sends) change nothing: that time is already booked here.

Out: ``siu_for`` builds the SIU of a booking, move, cancellation or no-show made in Créneau,
which the worker sends to CRENEAU_HIS_ADDRESS (notify.his), retried until acknowledged.

``hl7apy`` parses and builds every message."""

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import DatabaseError, transaction
from django.utils import timezone
from hl7apy.core import Message
from hl7apy.parser import parse_message

from creneau.agenda.models import AgendaSource, BusyInterval
from creneau.agenda.services import slots_generate
from creneau.booking.models import Appointment
from creneau.directory.models import PractitionerRole

APPLICATION = "CRENEAU"
VERSION = "2.5"
TRIGGERS = {"S12", "S13", "S14", "S15", "S26"}
# Créneau's changes as SIU trigger events, and the filler status (SCH-25) each carries.
OUTGOING = {
    "confirmation": ("S12", "Booked"),
    "moved": ("S13", "Booked"),
    "cancelled": ("S15", "Cancelled"),
    "no_show": ("S26", "Noshow"),
}
# What an agenda's dates and lengths can be: anything else is a poison message, answered AE.
EARLIEST, LATEST = 1900, 2200
LONGEST_MINUTES = 31 * 1440
log = logging.getLogger("creneau.mllp")
DURATION_UNITS = {"": 1, "MIN": 1, "M": 1, "H": 60, "HR": 60, "HOUR": 60, "S": 1 / 60}


class SiuError(Exception):
    """A message that cannot be applied: the field at fault and why (ACK AE)."""

    def __init__(self, field: str, text: str, code: str = "207") -> None:
        super().__init__(f"{field}: {text}")
        self.field, self.text, self.code = field, text, code


@dataclass(frozen=True)
class Received:
    ack: str
    code: str  # AA, AE or AR
    text: str


# ---------------------------------------------------------------------------------------------
# Reading fields


def _segments(message, name: str) -> list:
    return [child for child in message.children if child.name == name]


def _components(segment, number: int) -> list[str]:
    """The components of field ``number`` of ``segment`` (its first repetition), as text."""
    name = f"{segment.name.lower()}_{number}"
    fields = getattr(segment, name, None)
    if fields is None or not len(fields):
        return []
    return fields[0].to_er7().split("^")


def _component(segment, number: int, component: int = 1) -> str:
    found = _components(segment, number) if segment is not None else []
    return found[component - 1].strip() if len(found) >= component else ""


_INSTANT = re.compile(r"^(\d{8})(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?$")


def parse_instant(value: str, zone: ZoneInfo, field: str) -> datetime:
    """An HL7 DTM/TS (YYYYMMDDHHMM[SS][+ZZZZ]); without an offset, the establishment's time."""
    found = _INSTANT.match(value.strip())
    if not found:
        raise SiuError(field, f"{value[:30]!r} is not an HL7 date and time (YYYYMMDDHHMM)", "102")
    day, hour, minute, second, offset = found.groups()
    text = f"{day}{hour or '00'}{minute or '00'}{second or '00'}"
    try:
        if offset:
            moment = datetime.strptime(text + offset, "%Y%m%d%H%M%S%z")
        else:
            moment = datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=zone)
        # An agenda's time, in UTC as it is stored: 9999-12-31 at -14:00 is past datetime's
        # end (the sender must get an AE, not a dropped connection).
        moment.astimezone(UTC)
    except (ValueError, OverflowError) as error:
        raise SiuError(field, f"{value[:30]!r} is not a valid date and time", "102") from error
    if not EARLIEST <= moment.year <= LATEST:
        raise SiuError(field, f"{value[:30]!r} is not a date of an agenda", "102")
    return moment


def _period(message, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """TQ1-7/8 (v2.5), else SCH-11.4/5 (older versions), else AIS-4 and its duration."""
    tq1 = next(iter(_segments(message, "TQ1")), None)
    sch = _segments(message, "SCH")[0]
    ais = next(iter(_segments(message, "AIS")), None)
    for segment, (start_at, end_at), field in (
        (tq1, (7, 8), "TQ1-7"),
        (sch, (11, 11), "SCH-11"),
    ):
        if segment is None:
            continue
        if field == "SCH-11":
            start_text, end_text = _component(sch, 11, 4), _component(sch, 11, 5)
        else:
            start_text, end_text = _component(segment, start_at), _component(segment, end_at)
        if start_text:
            start = parse_instant(start_text, zone, field)
            if end_text:
                return start, parse_instant(end_text, zone, field.replace("7", "8"))
            return start, start + _duration(message, ais, field)
    if ais is not None and _component(ais, 4):
        start = parse_instant(_component(ais, 4), zone, "AIS-4")
        return start, start + _duration(message, ais, "AIS-7")
    raise SiuError("TQ1-7", "the appointment's start is missing (TQ1-7, SCH-11 or AIS-4)", "101")


def _duration(message, ais, field: str) -> timedelta:
    sch = _segments(message, "SCH")[0]
    for segment, value_at, unit_at in ((ais, 7, 8), (sch, 9, 10)):
        if segment is None or not _component(segment, value_at):
            continue
        value, unit = _component(segment, value_at), _component(segment, unit_at).upper()
        try:
            minutes = float(value) * DURATION_UNITS[unit]
        except (ValueError, KeyError) as error:
            raise SiuError(
                f"{segment.name}-{value_at}", f"{value[:10]} {unit[:10]} is not a duration", "102"
            ) from error
        # float() reads "inf", "nan" and "1e308" too: none is an appointment's length.
        if not 0 < minutes <= LONGEST_MINUTES:
            raise SiuError(
                f"{segment.name}-{value_at}",
                f"a duration must be positive and at most {LONGEST_MINUTES // 1440} days",
                "102",
            )
        return timedelta(minutes=minutes)
    raise SiuError(field, "the appointment's end or duration is missing", "101")


def _role(message) -> PractitionerRole:
    """The practitioner (AIP-3: RPPS, or 8 + RPPS as IDNPS) whose agenda is the HIS; the
    place (AIL-3.4: the establishment's FINESS) when they have several such roles."""
    people = [_component(aip, 3) for aip in _segments(message, "AIP")]
    people = [p[1:] if len(p) == 12 and p.startswith("8") else p for p in people if p]
    if not people:
        raise SiuError("AIP-3", "no practitioner (AIP-3, their RPPS) in the message", "101")
    roles = PractitionerRole.objects.select_related("establishment", "agenda_source").filter(
        practitioner__rpps__in=people, agenda_source__kind=AgendaSource.Kind.HIS
    )
    places = [
        _component(ail, 3, 4).split("&")[0]
        for ail in _segments(message, "AIL")
        if _component(ail, 3, 4)
    ]
    if places:
        roles = roles.filter(
            establishment__finess__in=[p.removeprefix("1") for p in places] + places
        )
    found = list(roles[:2])
    if not found:
        raise SiuError(
            "AIP-3",
            "no practitioner whose agenda is the hospital system has the RPPS "
            + ", ".join(people)[:40],
            "204",
        )
    if len(found) > 1:
        raise SiuError(
            "AIL-3", "the practitioner has several such roles: give the place's FINESS", "101"
        )
    return found[0]


# ---------------------------------------------------------------------------------------------
# In


def siu_receive(text: str, *, now: datetime | None = None) -> Received:
    """Apply one message from the HIS; its ACK."""
    now = now or timezone.now()
    text = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r\x0b\x1c ")
    try:
        message = parse_message(text, find_groups=False)
        msh = message.msh
        kind = [part.strip() for part in msh.msh_9.to_er7().split("^")]
    except Exception as error:  # hl7apy raises many kinds for what is not HL7
        return _answer(text, "AR", f"not an HL7 v2 message: {str(error)[:60]}", "100")
    if kind[0] != "SIU" or len(kind) < 2 or kind[1] not in TRIGGERS:
        return _answer(
            text, "AR", f"message type {'^'.join(kind)[:20]} is not accepted here", "200"
        )
    try:
        with transaction.atomic():
            done = _apply(message, kind[1], now)
    except SiuError as error:
        return _answer(text, "AE", str(error), error.code)
    except DatabaseError as error:
        # The hub cannot store it now: refused, so that the sender sends it again later.
        log.error("SIU not stored: %s", type(error).__name__)
        return _answer(text, "AR", "the hub cannot store messages now: send it again", "207")
    except Exception as error:  # anything else: an ACK all the same, or the sender's queue stalls
        log.exception("SIU could not be applied: %s", type(error).__name__)
        return _answer(text, "AE", "the message could not be applied", "207")
    return _answer(text, "AA", done)


def _apply(message, trigger: str, now: datetime) -> str:
    schedules = _segments(message, "SCH")
    if not schedules:
        raise SiuError("SCH", "the SCH segment is missing", "100")
    sch = schedules[0]
    placer, filler = _component(sch, 1), _component(sch, 2)
    if placer and Appointment.objects.filter(public_id=placer).exists():
        return "one of Créneau's own appointments: already booked here"
    external = filler or placer
    if not external:
        raise SiuError("SCH-2", "the appointment has no id (SCH-2, or SCH-1)", "101")
    role = _role(message)
    source = role.agenda_source
    if trigger == "S26":
        return "no-show noted: the time was already occupied"
    existing = BusyInterval.objects.select_for_update().filter(source=source, external_id=external)
    if trigger == "S15":
        gone = existing.delete()[0]
        said = "cancelled: the time is free again" if gone else "cancelled: was not known here"
    else:
        start, end = _period(message, ZoneInfo(role.establishment.time_zone))
        if end <= start:
            raise SiuError("TQ1-8", "the appointment ends before it starts", "102")
        if not existing.update(starts_at=start, ends_at=end):
            BusyInterval.objects.create(
                source=source, external_id=external[:200], starts_at=start, ends_at=end
            )
        said = (
            f"occupied {timezone.localtime(start):%Y-%m-%d %H:%M}-{timezone.localtime(end):%H:%M}"
        )
    from creneau.agenda.sources.services import _horizon_weeks, conflicts_tell

    report = slots_generate(
        roles=PractitionerRole.objects.filter(pk=role.pk),
        now=now,
        horizon_weeks=_horizon_weeks(source, now),
    )
    booked = [slot.public_id for slot in report.orphaned]
    conflicts_tell(source, report.orphaned, now)
    AgendaSource.objects.filter(pk=source.pk).update(
        last_attempt_at=now,
        last_success_at=now,
        last_error="",
        last_report={
            "busy_periods": BusyInterval.objects.filter(source=source).count(),
            "slots_removed": report.removed,
            "booked_in_busy_time": booked,
            "at": now.isoformat(timespec="seconds"),
        },
    )
    if booked:
        said += f"; booked slots in that time, kept: {', '.join(booked)}"
    return f"{said}; {report.removed} slots taken out of search"


def _msh_fields(text: str) -> list[str]:
    first = text.split("\r", 1)[0]
    return first.split("|") if first.startswith("MSH") else ["MSH", "^~\\&"]


def _answer(text: str, code: str, said: str, error_code: str = "") -> Received:
    """The ACK (built with hl7apy) of the message ``text``, whatever state it was in."""
    fields = _msh_fields(text) + [""] * 12
    version = (
        fields[11] if fields[11] in ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6") else VERSION
    )
    trigger = [*fields[8].split("^"), "", ""][1]
    ack = Message("ACK", version=version)
    ack.msh.msh_3 = fields[4] or APPLICATION
    ack.msh.msh_4 = fields[5]
    ack.msh.msh_5 = fields[2]
    ack.msh.msh_6 = fields[3]
    ack.msh.msh_7 = timezone.localtime().strftime("%Y%m%d%H%M%S%z")
    ack.msh.msh_9 = f"ACK^{trigger}^ACK" if trigger else "ACK"
    ack.msh.msh_10 = secrets.token_hex(8)
    ack.msh.msh_11 = fields[10] or "P"
    ack.msa.msa_1 = code
    ack.msa.msa_2 = fields[9][:20]
    ack.msa.msa_3 = _escape(said)[:80]
    if code != "AA" and version >= "2.5":
        err = ack.add_segment("ERR")
        err.err_3 = f"{error_code or '207'}^^HL70357"
        err.err_4 = "E"
        err.err_8 = _escape(said)[:250]
    return Received(ack=ack.to_er7(), code=code, text=said)


def _escape(text: str) -> str:
    """HL7 escapes for the delimiters a free text may hold."""
    return (
        text.replace("\\", "\\E\\")
        .replace("|", "\\F\\")
        .replace("^", "\\S\\")
        .replace("&", "\\T\\")
        .replace("~", "\\R\\")
        .replace("\r", " ")
    )


# ---------------------------------------------------------------------------------------------
# Out


def _instant(moment: datetime, zone: ZoneInfo) -> str:
    return timezone.localtime(moment, zone).strftime("%Y%m%d%H%M%S%z")


def siu_for(appointment: Appointment, kind: str, control_id: str) -> str:
    """The SIU of a change Créneau made to ``appointment`` (OUTGOING's kinds), for the HIS."""
    trigger, status = OUTGOING[kind]
    zone = ZoneInfo(appointment.establishment.time_zone)
    practitioner, establishment = appointment.practitioner, appointment.establishment
    message = Message(f"SIU_{trigger}", version=VERSION)
    message.msh.msh_3 = APPLICATION
    message.msh.msh_4 = _escape(establishment.organisation.short_name or "")[:20]
    message.msh.msh_5 = "HIS"
    message.msh.msh_6 = establishment.finess
    message.msh.msh_7 = timezone.localtime(timezone.now(), zone).strftime("%Y%m%d%H%M%S%z")
    message.msh.msh_9 = f"SIU^{trigger}^SIU_{trigger}"
    message.msh.msh_10 = control_id[:20]
    message.msh.msh_11 = "P"
    message.sch.sch_1 = f"{appointment.public_id}^{APPLICATION}"
    message.sch.sch_7 = f"{appointment.visit_type.code}^{_escape(appointment.visit_type.label_fr)}"
    minutes = int((appointment.ends_at - appointment.starts_at).total_seconds() // 60)
    message.sch.sch_9 = str(minutes)
    message.sch.sch_10 = "min"
    message.sch.sch_25 = status
    tq1 = message.add_segment("TQ1")
    tq1.tq1_1 = "1"
    tq1.tq1_7 = _instant(appointment.starts_at, zone)
    tq1.tq1_8 = _instant(appointment.ends_at, zone)
    patient = message.add_group(f"SIU_{trigger}_PATIENT")
    patient.pid.pid_1 = "1"
    patient.pid.pid_3 = f"{appointment.public_id}^^^{APPLICATION}^PI"
    last, first = appointment.patient_last_name.upper(), appointment.patient_first_name
    patient.pid.pid_5 = f"{_escape(last)}^{_escape(first)}"
    patient.pid.pid_7 = appointment.patient_birth_date.strftime("%Y%m%d")
    telecom = (
        [f"^PRN^PH^^^^^^^^^{_escape(appointment.patient_phone)}"]
        if appointment.patient_phone
        else []
    )
    if appointment.patient_email:
        telecom.append(f"^NET^Internet^{_escape(appointment.patient_email)}")
    patient.pid.pid_13 = "~".join(telecom)
    resources = message.add_group(f"SIU_{trigger}_RESOURCES")
    resources.rgs.rgs_1 = "1"
    service = resources.add_group(f"SIU_{trigger}_SERVICE")
    service.ais.ais_1 = "1"
    service.ais.ais_3 = f"{appointment.visit_type.code}^{_escape(appointment.visit_type.label_fr)}"
    service.ais.ais_4 = _instant(appointment.starts_at, zone)
    service.ais.ais_7 = str(minutes)
    service.ais.ais_8 = "min"
    place = resources.add_group(f"SIU_{trigger}_LOCATION_RESOURCE")
    place.ail.ail_1 = "1"
    department = appointment.practitioner_role.department
    place.ail.ail_3 = f"{_escape(department.code if department else '')}^^^{establishment.finess}"
    person = resources.add_group(f"SIU_{trigger}_PERSONNEL_RESOURCE")
    person.aip.aip_1 = "1"
    person.aip.aip_3 = (
        f"{practitioner.rpps}^{_escape(practitioner.last_name.upper())}^"
        f"{_escape(practitioner.first_name)}"
    )
    return message.to_er7()


def acknowledgement(answer: str) -> tuple[str, str, str]:
    """MSA-1, MSA-2 and MSA-3 of the HIS's answer."""
    try:
        ack = parse_message(answer.replace("\n", "\r").strip("\r"), find_groups=False)
        msa = _segments(ack, "MSA")[0]
        return _component(msa, 1), _component(msa, 2), _component(msa, 3)
    except Exception:  # hl7apy raises many kinds for what is not HL7
        return "", "", "the answer is not an HL7 acknowledgement"
