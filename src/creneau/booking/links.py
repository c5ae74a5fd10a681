"""Booking links that platforms publish (the SAS's ``Slot.comment``, SMART's
``booking-deep-link``): signed by the hub for one channel, one slot and a limited time.

The SAS guide recognises a regulator's booking by an ``origin=sas`` parameter the platform
appends to the link, which anyone could append to any link of the public site. Here the link
itself carries the authority: the channel and slot are inside a signature only this hub can
make (Django's signing, HMAC-SHA256 with the deployment's secret key), so a link of the public
site with ``origin=sas`` appended opens what the public site opens, no more, and a slot
reserved to professionals or regulators opens only through a link the hub signed for the
SAS's channel. What the platform appends (origin, the regulator, SMART's source and
booking-referral) is kept as the booking's referral, never as authority."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone
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


def booking_link(*, channel: Channel, slot: Slot, valid_for: timedelta, now: datetime) -> str:
    """The absolute address that opens ``slot`` for booking through ``channel``."""
    expires = int((now + valid_for).timestamp())
    token = signing.dumps([channel.public_id, slot.public_id, expires], salt=_SALT)
    path = reverse("platform:platform_link", args=[channel.key, token])
    return settings.CRENEAU_PUBLIC_URL.rstrip("/") + path


def link_open(token: str, *, channel: Channel, now: datetime | None = None) -> LinkTarget:
    """What a link opens, if the hub signed it for ``channel`` and it has not expired."""
    now = now or timezone.now()
    try:
        channel_id, slot_id, expires = signing.loads(token, salt=_SALT)
    except (signing.BadSignature, ValueError, TypeError) as error:
        raise LinkInvalid(
            "link_invalid", _("This booking link is not one this hospital's hub made.")
        ) from error
    if channel_id != channel.public_id:
        raise LinkInvalid(
            "link_invalid", _("This booking link is not one this hospital's hub made.")
        )
    expires_at = datetime.fromtimestamp(int(expires), tz=UTC)
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
