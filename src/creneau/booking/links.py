"""Booking links that platforms publish (the SAS's ``Slot.comment``, SMART's
``booking-deep-link``): signed by the hub for one channel, one slot and a limited time.

The SAS guide recognises a regulator's booking by an ``origin=sas`` parameter the platform
appends to the link, which anyone could append to any link of the public site. Here the link
itself carries the authority: the channel, slot and expiry are under a signature only this hub
can make (HMAC-SHA256 with a key derived from the deployment's secret key), so a link of the public
site with ``origin=sas`` appended opens what the public site opens, no more, and a slot
reserved to professionals or regulators opens only through a link the hub signed for the
SAS's channel. What the platform appends (origin, the regulator, SMART's source and
booking-referral) is kept as the booking's referral, never as authority."""

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.http import int_to_base36 as base36
from django.utils.translation import gettext as _

from creneau.agenda.models import Slot
from creneau.channels.models import Channel
from creneau.errors import DomainError

_SALT = "creneau.booking.platform-link"
# What a platform may append to a link, kept with the booking (each value cut to 100
# characters): the SAS's origin and regulator, SMART's source and booking-referral.
REFERRAL_PARAMETERS = ("origin", "regulator", "source", "booking-referral")


class LinkInvalid(DomainError):
    status = 404


@dataclass(frozen=True)
class LinkTarget:
    channel: str  # public ids
    slot: str
    expires_at: datetime


def _key() -> bytes:
    # A key derived from the deployment's secret for this use alone (as Django's salted_hmac).
    return hashlib.sha256((_SALT + settings.SECRET_KEY).encode()).digest()


def _signature(channel_id: str, slot_id: str, expires: str) -> str:
    # HMAC-SHA256, cut to 128 bits: far beyond forging, short in a link.
    mac = hmac.new(_key(), f"{channel_id}:{slot_id}:{expires}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:16]).decode().rstrip("=")


class LinkMaker:
    """Links for one channel and one expiry: a SAS answer signs thousands of them (the keyed
    hash's state is made once and copied for each)."""

    def __init__(self, *, channel: Channel, valid_for: timedelta, now: datetime) -> None:
        self.channel_id = channel.public_id
        self.expires = base36(int((now + valid_for).timestamp()))
        self.mac = hmac.new(_key(), digestmod=hashlib.sha256)
        path = reverse("platform:platform_link", args=[channel.key, "TOKEN"])
        self.prefix, self.suffix = (settings.CRENEAU_PUBLIC_URL.rstrip("/") + path).split("TOKEN")

    def __call__(self, slot) -> str:
        mac = self.mac.copy()
        mac.update(f"{self.channel_id}:{slot.public_id}:{self.expires}".encode())
        signature = base64.urlsafe_b64encode(mac.digest()[:16]).decode().rstrip("=")
        return f"{self.prefix}{slot.public_id}.{self.expires}.{signature}{self.suffix}"


def booking_link(*, channel: Channel, slot: Slot, valid_for: timedelta, now: datetime) -> str:
    """The absolute address that opens ``slot`` for booking through ``channel``."""
    return LinkMaker(channel=channel, valid_for=valid_for, now=now)(slot)


def link_open(token: str, *, channel: Channel, now: datetime | None = None) -> LinkTarget:
    """What a link opens, if the hub signed it for ``channel`` and it has not expired."""
    now = now or timezone.now()
    parts = token.split(".")
    if len(parts) != 3 or not hmac.compare_digest(
        _signature(channel.public_id, parts[0], parts[1]).encode(),
        parts[2].encode("utf-8", "replace"),
    ):
        raise LinkInvalid(
            "link_invalid", _("This booking link is not one this hospital's hub made.")
        )
    slot_id, expires = parts[0], int(parts[1], 36)
    channel_id = channel.public_id
    expires_at = datetime.fromtimestamp(expires, tz=UTC)
    if expires_at <= now:
        raise LinkInvalid(
            "link_expired",
            _("This booking link has expired: search the slot again on the platform."),
            status=410,
        )
    return LinkTarget(channel=channel_id, slot=slot_id, expires_at=expires_at)


def referral_from(query) -> dict:
    """What the platform appended to the link, bounded: printable text only."""
    referral = {}
    for name in REFERRAL_PARAMETERS:
        value = (query.get(name) or "").strip()
        if value and value.isprintable():
            referral[name] = value[:100]
    return referral
