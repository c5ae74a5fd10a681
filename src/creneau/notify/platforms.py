"""Appointment feedback to the national SAS platform (ANS guide ans.fhir.fr.sas, INT_R03): after
each change of an appointment the SAS brought, a ``FrAppointmentSAS`` Appointment is POSTed to
the platform's FHIR base (the booking), then PUT conditionally on its identifier (every later
change). No patient data: the appointment's id, times, status, practitioner and the regulator
who booked. Sent by the worker as the patients' messages are (notify.services: claimed with a
lease, retried with back-off, exactly once per change)."""

import json
import ssl
import urllib.parse
from datetime import UTC

from django.conf import settings

from creneau import outgoing
from creneau.booking.models import Appointment
from creneau.channels.models import OperatorCompany, Platform
from creneau.directory.national import (
    IDNPS_SYSTEM,
    finess_identifier,
    rpps_identifier,
    typed_identifier,
)
from creneau.notify.backends import DeliveryError, Sent

PROFILE = "http://sas.fr/fhir/StructureDefinition/FrAppointmentSAS"
OPERATOR_EXTENSION = "http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator"
# What each change says of the appointment (FHIR appointmentstatus).
STATUS_OF_KIND = {
    "confirmation": "booked",
    "moved": "booked",
    "cancelled": "cancelled",
    "no_show": "noshow",
    "done": "fulfilled",
}
FEEDBACK_KINDS = frozenset(STATUS_OF_KIND)


def appointment_system() -> str:
    return settings.CRENEAU_PUBLIC_URL.rstrip("/") + "/fhir/NamingSystem/appointment"


def feedback_platform(appointment: Appointment) -> Platform | None:
    """The SAS platform to report this appointment to, if it came from one that asks."""
    return (
        Platform.objects.filter(
            contract__channel_id=appointment.channel_id,
            contract__operator__kind=OperatorCompany.Kind.SAS,
        )
        .exclude(feedback_url="")
        .first()
    )


def _instant(moment) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _regulator(appointment: Appointment, platform: Platform) -> dict:
    """Who booked: the regulator the platform's link named, else the platform's default, else
    the establishment (the profile accepts an organisation)."""
    regulator = appointment.referral.get("regulator") or platform.regulator_identifier
    if regulator:
        return typed_identifier("IDNPS", IDNPS_SYSTEM, regulator)
    return finess_identifier(appointment.establishment.finess)


def appointment_sas(appointment: Appointment, platform: Platform, kind: str) -> dict:
    return {
        "resourceType": "Appointment",
        "meta": {"profile": [PROFILE]},
        "extension": [
            {
                "url": OPERATOR_EXTENSION,
                "valueReference": {"identifier": _regulator(appointment, platform)},
            }
        ],
        "identifier": [{"system": appointment_system(), "value": appointment.public_id}],
        "status": STATUS_OF_KIND[kind],
        "start": _instant(appointment.starts_at),
        "end": _instant(appointment.ends_at),
        "created": _instant(appointment.created_at),
        "participant": [
            {
                "actor": {"identifier": rpps_identifier(appointment.practitioner.rpps)},
                "status": "accepted",
            }
        ],
    }


def _context() -> ssl.SSLContext | None:
    """Mutual TLS with the hub's health-sector certificate, when the deployment has one."""
    if not settings.CRENEAU_SAS_CLIENT_CERT:
        return None
    context = ssl.create_default_context()
    context.load_cert_chain(settings.CRENEAU_SAS_CLIENT_CERT)
    return context


def send_feedback(appointment: Appointment, kind: str, key: str) -> Sent:
    """POST the booking, PUT every later change; raise DeliveryError (retry or not)."""
    platform = feedback_platform(appointment)
    if platform is None:
        raise DeliveryError("the platform no longer asks for feedback", retry=False)
    base = platform.feedback_url.rstrip("/")
    resource = appointment_sas(appointment, platform, kind)
    identifier = urllib.parse.quote(f"{appointment_system()}|{appointment.public_id}", safe="")
    headers = {}
    if kind == "confirmation":
        method, url = "POST", f"{base}/Appointment"
        # A conditional create (FHIR R4 §3.1.0.8): a POST retried after its answer was lost
        # creates nothing twice.
        headers["If-None-Exist"] = f"identifier={identifier}"
    else:
        method, url = "PUT", f"{base}/Appointment?identifier={identifier}"
    try:
        answer = outgoing.request(
            url,
            method=method,
            body=json.dumps(resource).encode(),
            headers={
                "Content-Type": "application/fhir+json",
                "Accept": "application/fhir+json",
                # The same key at each attempt of one change: a platform that saw it may skip it.
                "X-Request-Id": key,
                **headers,
            },
            timeout=15,
            max_bytes=1_000_000,
            context=_context(),
        )
    except outgoing.OutgoingError as error:
        retry = error.code not in ("address_refused", "address_invalid")
        raise DeliveryError(f"{method} no answer: {error.code}", retry=retry) from None
    if 200 <= answer.status < 300:
        return Sent(reference=answer.headers.get("location", "")[:200], answer=str(answer.status))
    # 4xx: the platform refuses this resource as it is, and will again (but for a timeout or a
    # throttle); 5xx: its trouble, try later.
    retry = answer.status >= 500 or answer.status in (408, 429)
    raise DeliveryError(f"{method} {answer.status}", retry=retry)
