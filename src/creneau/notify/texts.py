"""What each message says, in the patient's language: an SMS short enough for one segment where
the names allow it, an e-mail with the address and the preparation instructions. Nothing medical
beyond what the patient needs: place, time, practitioner, preparation."""

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.template.defaultfilters import date as format_date
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from creneau.ledger.services import receipt
from creneau.notify.models import Message
from creneau.sealing import unseal

# GSM 03.38: the basic set and its extension (which costs two characters each).
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = set("^{}\\[~]|€")
_REPLACEMENTS = {
    "\u2019": "'",  # right single quotation mark, the French apostrophe
    "\u2018": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2026": "...",
    "\u00a0": " ",
    "\u202f": " ",
}


def sms_text(text: str) -> str:
    """The text in the GSM alphabet, so that a segment holds 160 characters, not 70: typographic
    quotes and dashes made plain, other accents dropped (ê → e), what remains replaced by '?'."""
    out = []
    for char in " ".join(text.split()):
        char = _REPLACEMENTS.get(char, char)
        if char in GSM_BASIC or char in GSM_EXTENDED:
            out.append(char)
            continue
        base = unicodedata.normalize("NFKD", char)[0]
        out.append(base if base in GSM_BASIC else "?")
    return "".join(out)


def sms_segments(text: str) -> int:
    """How many SMS segments the text takes (GSM 7-bit: 160, or 153 when split; else UCS-2)."""
    if all(char in GSM_BASIC or char in GSM_EXTENDED for char in text):
        length = sum(2 if char in GSM_EXTENDED else 1 for char in text)
        return 1 if length <= 160 else -(-length // 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


@dataclass(frozen=True)
class Rendered:
    sms: str
    subject: str
    body: str


def _url(path: str, language: str) -> str:
    prefix = "/en" if language == "en" else ""
    return settings.CRENEAU_PUBLIC_URL.rstrip("/") + prefix + path


def _when(moment: datetime, zone: ZoneInfo) -> dict[str, str]:
    local = timezone.localtime(moment, zone)
    return {
        "day": format_date(local, "l d/m"),
        "short_day": format_date(local, "d/m"),
        "long_day": format_date(local, "l j F Y"),
        "time": format_date(local, "H:i"),
    }


def _facts(starts_at: datetime, practitioner, place, visit_type) -> dict[str, str]:
    """What every message says of an appointment or a slot: when, with whom, where, what."""
    return {
        **_when(starts_at, place.zone),
        "practitioner": practitioner.display_name,
        "place": place.name,
        "address": f"{place.address}, {place.postcode} {place.city}",
        "visit": visit_type.label,
    }


def _details(facts: dict[str, str]) -> str:
    return "\n".join(
        [
            _("When: %(long_day)s at %(time)s") % facts,
            _("With: %(practitioner)s (%(visit)s)") % facts,
            _("Where: %(place)s, %(address)s") % facts,
        ]
    )


def render(message: Message) -> Rendered:
    language = _language(message)
    with translation.override(language):
        if message.kind == Message.Kind.OFFER:
            return _offer(message, language)
        if message.kind == Message.Kind.CONFLICT:
            return _conflict(message)
        return _appointment(message, language)


def _language(message: Message) -> str:
    if message.kind == Message.Kind.CONFLICT:
        return settings.LANGUAGE_CODE[:2]  # the hospital's staff: the site's own language
    record = message.appointment or message.offer.entry  # type: ignore[union-attr]
    return "en" if record.patient_language == "en" else "fr"


def _conflict(message: Message) -> Rendered:
    """To the practitioner and the department: an appointment now in busy time."""
    appointment = message.appointment
    assert appointment is not None
    facts = _facts(
        appointment.starts_at,
        appointment.practitioner,
        appointment.establishment,
        appointment.visit_type,
    )
    facts["reference"] = appointment.public_id
    facts["source"] = message.context.get("source", "")
    subject = _("Booked in busy time: %(day)s at %(time)s, %(practitioner)s") % facts
    body = "\n\n".join(
        [
            _(
                "The agenda of %(practitioner)s (%(source)s) now says this time is busy, and "
                "an appointment is booked in it. The appointment stays: if the practitioner "
                "cannot see the patient, move or cancel it and the patient is told."
            )
            % facts,
            _details(facts),
            _("Appointment reference: %(reference)s") % facts,
        ]
    )
    return Rendered(sms=sms_text(subject), subject=subject, body=body)


def _appointment(message: Message, language: str) -> Rendered:
    appointment = message.appointment
    assert appointment is not None
    place = appointment.establishment
    facts = _facts(appointment.starts_at, appointment.practitioner, place, appointment.visit_type)
    token = unseal(appointment.sealed_token)
    manage = _url(f"/a/{token}", language) if token else ""
    rebook = _url(f"/practitioners/{appointment.practitioner.public_id}/", language)
    preparation = appointment.visit_type.preparation
    kind = message.kind
    if kind == Message.Kind.CONFIRMATION:
        sms = _("Appointment confirmed: %(day)s at %(time)s, %(practitioner)s, %(place)s.") % facts
        subject = _("Your appointment on %(long_day)s at %(time)s") % facts
        opening = _("Your appointment is booked.")
    elif kind == Message.Kind.REMINDER:
        sms = _("Reminder: appointment %(day)s at %(time)s, %(practitioner)s, %(place)s.") % facts
        subject = _("Reminder: your appointment on %(long_day)s at %(time)s") % facts
        opening = _("This is a reminder of your appointment.")
    elif kind == Message.Kind.MOVED:
        before = _when(datetime.fromisoformat(message.context["previous_starts_at"]), place.zone)
        facts["old_day"], facts["old_time"] = before["short_day"], before["time"]
        sms = (
            _(
                "Appt of %(old_day)s %(old_time)s moved to %(day)s at %(time)s, "
                "%(practitioner)s, %(place)s."
            )
            % facts
        )
        subject = _("Your appointment is moved to %(long_day)s at %(time)s") % facts
        opening = _("Your appointment has been moved; the former time is free again.")
    else:
        reason = message.context.get("reason", "")
        by = message.context.get("by")
        if by == "hospital":
            sms = _("The hospital cancelled your appointment of %(day)s at %(time)s") % facts
            sms += f" ({reason})." if reason else "."
            opening = _("The hospital had to cancel your appointment. Please accept our apologies.")
        elif by == "operator":
            who = {"operator": message.context.get("operator", "")}
            sms = _(
                "Your appointment of %(day)s at %(time)s is cancelled by %(operator)s, as asked."
            ) % {**facts, **who}
            opening = _("%(operator)s cancelled your appointment, as you asked on the phone.") % who
        else:
            sms = _("Your appointment of %(day)s at %(time)s is cancelled.") % facts
            opening = _("Your appointment is cancelled, as you asked.")
        if reason and by != "patient":
            opening += "\n" + _("Reason: %(reason)s") % {"reason": reason}
        subject = _("Cancelled: your appointment on %(long_day)s at %(time)s") % facts
        # The hospital offers the nearest free times when it cancels.
        nearest = [
            _when(datetime.fromisoformat(moment), place.zone)
            for moment in message.context.get("nearest", [])
        ]
        times = ", ".join(_("%(day)s at %(time)s") % moment for moment in nearest)
        if times:
            sms += " " + _("Free: %(times)s.") % {"times": times}
        sms += " " + _("Book again: %(url)s") % {"url": rebook}
        paragraphs = [
            opening,
            _("It was: %(visit)s with %(practitioner)s, %(long_day)s at %(time)s, %(place)s.")
            % facts,
        ]
        if times:
            paragraphs.append(
                _("The nearest free times with %(practitioner)s: %(times)s.")
                % {**facts, "times": times}
            )
        paragraphs.append(_("To book another appointment: %(url)s") % {"url": rebook})
        body = "\n\n".join(paragraphs)
        return Rendered(sms=sms_text(sms), subject=subject, body=body + _signature())
    if manage:
        sms += " " + _("Manage: %(url)s") % {"url": manage}
    paragraphs = [opening, _details(facts)]
    if preparation:
        paragraphs.append(_("To prepare:") + "\n" + preparation)
    if manage:
        paragraphs.append(_("To see, move or cancel it: %(url)s") % {"url": manage})
    if appointment.ledger_entry and message.kind != Message.Kind.REMINDER:
        paragraphs.append(_ledger_receipt(appointment.ledger_entry))
    return Rendered(sms=sms_text(sms), subject=subject, body="\n\n".join(paragraphs) + _signature())


def _offer(message: Message, language: str) -> Rendered:
    offer = message.offer
    assert offer is not None
    slot = offer.hold.slot
    zone = slot.establishment.zone
    expires = timezone.localtime(offer.expires_at, zone)
    facts = {
        **_facts(slot.starts_at, slot.practitioner, slot.establishment, slot.visit_type),
        # In the SMS, the time alone when the offer ends today, else its day too.
        "until": format_date(
            expires,
            "H:i" if expires.date() == timezone.localdate(timezone.now(), zone) else "d/m H:i",
        ),
        "until_day": format_date(expires, "l j F"),
        "until_time": format_date(expires, "H:i"),
    }
    token = unseal(offer.entry.sealed_token)
    link = _url(f"/w/{token}", language) if token else ""
    if link:
        sms = _(
            "Earlier slot: %(day)s at %(time)s, %(practitioner)s, %(place)s. "
            "Take it before %(until)s: %(url)s"
        ) % {**facts, "url": link}
    else:
        sms = (
            _(
                "Earlier slot: %(day)s at %(time)s, %(practitioner)s, %(place)s. "
                "Kept until %(until)s."
            )
            % facts
        )
    paragraphs = [
        _("An earlier slot has freed up and is kept for you until %(until_day)s at %(until_time)s.")
        % facts,
        _details(facts),
        _("Without an answer by then, it goes to the next patient on the list."),
    ]
    if link:
        paragraphs.append(_("To take it or let it go: %(url)s") % {"url": link})
    return Rendered(
        sms=sms_text(sms),
        subject=_("An earlier appointment on %(long_day)s at %(time)s") % facts,
        body="\n\n".join(paragraphs) + _signature(),
    )


def _ledger_receipt(entry: str) -> str:
    found = receipt(entry)
    url = settings.CRENEAU_PUBLIC_URL.rstrip("/") + f"/ledger/entry/{entry}"
    if found["index"] is None:
        return _("Your receipt in the hospital's transparency ledger: %(url)s") % {"url": url}
    return _("Your receipt in the hospital's transparency ledger: entry no. %(index)s, %(url)s") % {
        "index": found["index"],
        "url": url,
    }


def _signature() -> str:
    return "\n\n-- \n" + _("This message was sent by the hospital's appointment service.")
