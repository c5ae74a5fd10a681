"""SMART Scheduling Links publisher (smart-on-fhir/smart-scheduling-links, specification.md):
a manifest (``$bulk-publish``) and NDJSON files of Location, Schedule and Slot, the slots split
by ISO week, for the calling channel's perimeter.

Each file is made when asked and answered with a strong ETag (SHA-256 of its bytes) and the
time its content was first served; a finder polling every minute with If-None-Match or
If-Modified-Since gets 304 while nothing changed. ``_since`` on the manifest lists only the
files whose content changed after that instant. A slot's ``booking-deep-link`` is, for a
finder under contract, the hub's signed link through the finder's channel (booking.links:
the booking is attributed to it, and its ``source`` and ``booking-referral`` are kept); for
the public site, the practitioner's public page."""

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Case, CharField, Count, Max, Sum, Value, When
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from creneau.agenda.queries import offerable_slots
from creneau.booking.links import LinkMaker
from creneau.booking.models import PARIS, paris_midnight
from creneau.channels.models import PLATFORM_KINDS, Platform
from creneau.channels.queries import ChannelScope
from creneau.directory.models import PractitionerRole
from creneau.fhir import resources
from creneau.fhir.rows import SlotRow, slot_rows
from creneau.fhir.services import published_version_note, published_version_since

EXTENSIONS = "http://fhir-registry.smarthealthit.org/StructureDefinition/"
NDJSON = "application/fhir+ndjson"
# Finders poll every 1 to 5 minutes (specification.md): a minute of freshness is their due.
MAX_AGE = 60


@dataclass(frozen=True)
class File:
    name: str  # "Location", "Schedule", "Slot-2027-W11"
    kind: str
    week: date | None = None


def weeks(now: datetime) -> list[date]:
    """The Mondays (Paris) of the weeks published, this week first."""
    today = timezone.localtime(now, PARIS).date()
    monday = today - timedelta(days=today.weekday())
    return [monday + timedelta(weeks=n) for n in range(settings.CRENEAU_SMART_WEEKS)]


def files(now: datetime) -> list[File]:
    slot_files = [
        File(name=f"Slot-{year}-W{week:02d}", kind="Slot", week=monday)
        for monday in weeks(now)
        for year, week, _day in [monday.isocalendar()]
    ]
    return [File("Location", "Location"), File("Schedule", "Schedule"), *slot_files]


def file_named(name: str, now: datetime) -> File | None:
    return next((f for f in files(now) if f.name == name), None)


def _roles(scope: ChannelScope):
    return (
        scope.practitioner_roles()
        .select_related("practitioner", "establishment")
        .prefetch_related("specialties")
        .order_by("pk")
    )


def _schedule(role: PractitionerRole) -> dict:
    resource: dict = {
        "resourceType": "Schedule",
        "id": role.public_id,
        "actor": [
            resources.reference("Location", role.establishment.public_id),
            resources.reference("Practitioner", role.practitioner.public_id),
        ],
    }
    specialties = list(role.specialties.all())
    if specialties:
        resource["serviceType"] = [resources.specialty_concept(s) for s in specialties]
    return resource


class DeepLinks:
    """Where a slot's booking-deep-link leads, for one channel."""

    @staticmethod
    def signs(scope: ChannelScope) -> bool:
        return scope.operator is not None and scope.operator.kind in PLATFORM_KINDS

    def __init__(self, scope: ChannelScope, now: datetime) -> None:
        platform = (
            Platform.objects.filter(contract=scope.contract).first() if self.signs(scope) else None
        )
        # Links expire at the top of an hour, between link_hours and an hour more from now: a
        # file's bytes (and its version, and its one ledger entry) stay the same within the hour.
        hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        self.expiry_hour = hour.isoformat()
        self.signed = (
            LinkMaker(
                channel=scope.channel, valid_for=timedelta(hours=platform.link_hours), now=hour
            )
            if platform is not None
            else None
        )
        path = reverse("site:practitioner", args=["PRACTITIONER"])
        self.page = settings.CRENEAU_PUBLIC_URL.rstrip("/") + path

    def __call__(self, slot: SlotRow) -> str:
        if self.signed is not None:
            return self.signed(slot)
        week = timezone.localtime(slot.starts_at, PARIS).date()
        week -= timedelta(days=week.weekday())
        query = urlencode({"visit_type": slot.visit_type.public_id, "week": week.isoformat()})
        return self.page.replace("PRACTITIONER", slot.practitioner.public_id) + "?" + query


def _slot(slot: SlotRow, link: str) -> dict:
    extensions = [{"url": EXTENSIONS + "booking-deep-link", "valueUrl": link}]
    if slot.establishment.phone:
        extensions.append(
            {
                "url": EXTENSIONS + "booking-phone",
                "valueString": resources.phone(slot.establishment.phone),
            }
        )
    extensions.append(
        {"url": EXTENSIONS + "slot-capacity", "valueInteger": slot.capacity - slot.booked}
    )
    return {
        "resourceType": "Slot",
        "id": slot.public_id,
        "schedule": resources.reference("Schedule", slot.practitioner_role.public_id),
        "status": "free",
        "start": resources.instant(slot.starts_at),
        "end": resources.instant(slot.ends_at),
        "extension": extensions,
    }


def _lines(items: Iterable[dict]) -> Iterator[bytes]:
    for item in items:
        yield json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def file_body(scope: ChannelScope, file: File, now: datetime) -> tuple[bytes, list[SlotRow]]:
    """The file's bytes, and the slots it offers (for the ledger, when it is served)."""
    if file.kind == "Location":
        places = scope.establishments().select_related("organisation").order_by("pk")
        return b"".join(_lines(resources.location(place) for place in places)), []
    if file.kind == "Schedule":
        return b"".join(_lines(_schedule(role) for role in _roles(scope))), []
    found = slot_rows(_week_slots(scope, file, now).order_by("starts_at", "public_id"))
    link = DeepLinks(scope, now)
    return b"".join(_lines(_slot(slot, link(slot)) for slot in found)), found


WEEK = timedelta(days=7)


def _week_slots(scope: ChannelScope, file: File, now: datetime):
    assert file.week is not None
    start = paris_midnight(file.week)
    return offerable_slots(scope, now).filter(
        starts_at__gte=max(start, now), starts_at__lt=start + WEEK
    )


def _slot_state(state: dict, hour: str) -> str:
    return hashlib.sha256(f"{sorted(state.items())}|{hour}".encode()).hexdigest()


_STATE = {"count": Count("pk"), "ids": Sum("pk"), "last": Max("pk")}
_STATE |= {"booked": Sum("booked"), "held": Sum("held")}


def _expiry_hour(scope: ChannelScope, now: datetime) -> str:
    return DeepLinks(scope, now).expiry_hour if DeepLinks.signs(scope) else ""


def fingerprint(scope: ChannelScope, file: File, now: datetime) -> str:
    """What a week's Slot file is made from, in one aggregate of its slots (which ones, how
    many places are taken or held), and the hour its signed links expire at: the same
    fingerprint, the same bytes. Other files are small: their bytes are their fingerprint."""
    if file.kind != "Slot":
        return hashlib.sha256(file_body(scope, file, now)[0]).hexdigest()
    return _slot_state(_week_slots(scope, file, now).aggregate(**_STATE), _expiry_hour(scope, now))


def fingerprints(scope: ChannelScope, now: datetime) -> dict[str, str]:
    """Every file's fingerprint, the week files' in one grouped query of the slots."""
    slot_files = [file for file in files(now) if file.kind == "Slot"]
    bounds = {
        file.name: (max(paris_midnight(file.week), now), paris_midnight(file.week) + WEEK)
        for file in slot_files
        if file.week is not None
    }
    week = Case(
        *(When(starts_at__gte=a, starts_at__lt=b, then=Value(n)) for n, (a, b) in bounds.items()),
        output_field=CharField(),
    )
    rows = (
        offerable_slots(scope, now)
        .filter(starts_at__gte=now, starts_at__lt=max(b for _a, b in bounds.values()))
        .annotate(file=week)
        .order_by()
        .values("file")
        .annotate(**_STATE)
    )
    states = {row.pop("file"): row for row in rows}
    empty = {name: None for name in _STATE} | {"count": 0}
    hour = _expiry_hour(scope, now)
    found = {name: _slot_state(states.get(name, empty), hour) for name in bounds}
    for file in files(now):
        if file.kind != "Slot":
            found[file.name] = fingerprint(scope, file, now)
    return found


@dataclass(frozen=True)
class Version:
    etag: str
    last_modified: datetime
    new: bool  # served for the first time: what it offers goes to the ledger once


def version(scope: ChannelScope, file: File, body: bytes, now: datetime) -> Version:
    """The file's ETag and the time this content was first served (in the database, so every
    worker answers the same Last-Modified for the same bytes)."""
    digest = hashlib.sha256(body).hexdigest()
    first, new = published_version_note(
        channel=scope.channel,
        name=file.name,
        digest=digest,
        fingerprint=lambda: fingerprint(scope, file, now) if file.kind == "Slot" else digest,
        now=now.replace(microsecond=0),
    )
    return Version(etag=f'"{digest[:32]}"', last_modified=first, new=new)


def manifest(
    scope: ChannelScope, *, request_url: str, query: dict, since: datetime | None, now: datetime
) -> dict:
    base = resources.fhir_base() + "/$bulk-publish/"
    suffix = f"?{urlencode(query)}" if query else ""
    output = []
    states = fingerprints(scope, now) if since is not None else {}
    for file in files(now):
        if since is not None:
            # From the stored versions: a file in a state never served has changed.
            first = published_version_since(
                channel=scope.channel, name=file.name, fingerprint=states[file.name]
            )
            if first is not None and first <= since:
                continue
        output.append({"type": file.kind, "url": f"{base}{file.name}.ndjson{suffix}"})
    return {
        "transactionTime": resources.instant(now),
        "request": request_url,
        "output": output,
        "error": [],
    }
