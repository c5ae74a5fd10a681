"""Telling the hospital information system of the bookings, moves, cancellations and no-shows
made in Créneau for practitioners whose agenda it keeps: one SIU each (agenda.sources.his),
sent over MLLP to CRENEAU_HIS_ADDRESS by the worker, in order, and retried until the HIS
acknowledges it (AA or CA); an AE, AR or no answer is retried with the messages' back-off."""

from datetime import timedelta

from django.conf import settings
from django.utils.translation import gettext as _

from creneau.agenda.models import AgendaSource
from creneau.agenda.sources import mllp
from creneau.agenda.sources.his import OUTGOING, acknowledgement, siu_for
from creneau.booking.models import Appointment
from creneau.notify.backends import DeliveryError, Sent

SENT_KINDS = frozenset(OUTGOING)


def his_source(appointment: Appointment) -> AgendaSource | None:
    return AgendaSource.objects.filter(
        practitioner_role_id=appointment.practitioner_role_id, kind=AgendaSource.Kind.HIS
    ).first()


def send_siu(appointment: Appointment, kind: str, key: str) -> Sent:
    """The change's SIU, with the message's own key as its control id (MSH-10): a retry is the
    same message, which the HIS recognises."""
    if not settings.CRENEAU_HIS_ADDRESS:
        raise DeliveryError("CRENEAU_HIS_ADDRESS is not set: nowhere to send", retry=True)
    text = siu_for(appointment, kind, key[:20])
    try:
        answer = mllp.send(
            settings.CRENEAU_HIS_ADDRESS, text, timeout=settings.CRENEAU_HIS_TIMEOUT_SECONDS
        )
    except (OSError, mllp.FramingError) as error:
        raise DeliveryError(f"MLLP: {type(error).__name__}: {error}"[:200], retry=True) from None
    code, control, said = acknowledgement(answer)
    if code in ("AA", "CA") and control == key[:20]:
        return Sent(reference=control, answer=f"{code} {said}"[:200])
    raise DeliveryError(f"ACK {code or '?'} {said}"[:200], retry=True)


def his_reachable() -> tuple[bool, str]:
    """Whether the HIS takes a connection at CRENEAU_HIS_ADDRESS (nothing is sent)."""
    import socket

    address = settings.CRENEAU_HIS_ADDRESS
    if not address:
        return False, _("CRENEAU_HIS_ADDRESS is not set: the hub cannot send its SIU.")
    try:
        with socket.create_connection(mllp.host_port(address), timeout=5):
            pass
    except (OSError, ValueError) as error:
        return False, _("The hospital system at %(address)s does not answer: %(error)s") % {
            "address": address,
            "error": type(error).__name__,
        }
    return True, _("The hospital system at %(address)s takes connections.") % {"address": address}


def useful_until(appointment: Appointment, now):
    return max(now, appointment.ends_at) + timedelta(days=7)
