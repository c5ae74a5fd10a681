"""The patient's details as a booking takes them: checked once here for the API and the pages."""

import functools
from dataclasses import dataclass
from datetime import date
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import gettext as _

from creneau.errors import DomainError

OLDEST_PATIENT_YEARS = 120


class PatientDetailsInvalid(DomainError):
    """Every field in error at once (``errors``: field -> message, in the form's order);
    ``field`` and ``message`` name the first, for callers that show one. ``prefix``: how the
    API's request names the fields ("patient.phone"); "" where they are top-level."""

    status = 422

    def __init__(self, errors: dict[str, str], prefix: str = "patient.") -> None:
        self.errors = errors
        self.prefix = prefix
        self.field, message = next(iter(errors.items()))
        super().__init__("invalid_patient", message)

    def details(self) -> dict[str, object]:
        # Named as the API's request names them, like the answer to a malformed request.
        return {
            "errors": [
                {"field": f"{self.prefix}{field}", "message": message}
                for field, message in self.errors.items()
            ]
        }


class _Invalid(Exception):
    pass


class Contact:
    """How a channel must be able to reach the patient it books (issue 28, point 1). The rule
    about text messages (only to mobiles of CRENEAU_SMS_REGIONS) limits what is sent, never
    who is booked: any valid number of any country is a patient's contact."""

    # The public site and the widget: the patient books alone, and must get the confirmation
    # somewhere: an SMS-reachable mobile, or an e-mail address.
    SELF = "self"
    # A platform or partner that books for its own user: a valid number, any kind.
    PARTNER = "partner"
    # The desk and the call centres: the number the caller gives, or none with a reason (a
    # person without a phone); the staff member tells the caller.
    STAFF = "staff"


def contact_for(channel_kind: str) -> str:
    """The contact rule of a channel of this kind."""
    if channel_kind in ("operator", "desk"):
        return Contact.STAFF
    return Contact.SELF if channel_kind in ("public_site", "embed") else Contact.PARTNER


@dataclass(frozen=True)
class PatientDetails:
    last_name: str
    first_name: str
    birth_date: date
    phone: str  # E.164, or "" for a person without a phone (booked by staff, with a reason)
    email: str
    language: str
    no_phone_reason: str = ""


def _name(value: str, label: str) -> str:
    cleaned = " ".join(value.split())
    if not cleaned:
        raise _Invalid(_("The %(label)s is required.") % {"label": label})
    if len(cleaned) > 100 or any(ch.isdigit() or ch in "<>{}@" for ch in cleaned):
        raise _Invalid(_("The %(label)s does not look like a name.") % {"label": label})
    return cleaned


def _birth_date(value: date) -> date:
    today = timezone.localdate()
    if value > today:
        raise _Invalid(_("The date of birth is in the future."))
    if today.year - value.year > OLDEST_PATIENT_YEARS:
        raise _Invalid(_("The date of birth is not plausible."))
    return value


def _parse_phone(value: str) -> phonenumbers.PhoneNumber:
    """A valid number, or _Invalid. Numbers without a country code are read as French ones,
    as patients here write them; failing that, as numbers of the overseas regions the hub
    serves ("0690 12 34 56" is a Guadeloupe mobile, +590)."""
    if "\x00" in value:
        raise _Invalid(_("The phone number cannot be read."))
    regions = ["FR", *(r for r in settings.CRENEAU_SMS_REGIONS if r != "FR")]
    number = None
    for region in regions:
        try:
            candidate = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException as error:
            raise _Invalid(_("The phone number cannot be read.")) from error
        if phonenumbers.is_valid_number(candidate):
            return candidate
        number = number or candidate
        if value.strip().startswith(("+", "00")):
            break  # an international number is the same whatever the region
    raise _Invalid(_("The phone number is not a valid number."))


def sms_reachable(number: phonenumbers.PhoneNumber | str) -> bool:
    """Whether text messages may go to this number: a mobile of a region the hub serves
    (CRENEAU_SMS_REGIONS, France and its overseas departments by default). Nothing else, so
    that a typing error or a script cannot send the hospital's messages to a landline or to
    any country in the world."""
    if isinstance(number, str):
        try:
            number = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            return False
    return phonenumbers.region_code_for_number(
        number
    ) in settings.CRENEAU_SMS_REGIONS and phonenumbers.number_type(number) in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _phone(value: str) -> str:
    """Any valid number (a caller's, which an operator looks up)."""
    return _e164(_parse_phone(value))


def phone_display(value: str) -> str:
    """A stored number as people write it: in the national format for the regions the hub
    serves (06 12 12 12 12, 0690 12 34 56), in the international one for any other country
    (+44 7911 123456). Anything unreadable is shown as stored."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    home = phonenumbers.region_code_for_number(number) in settings.CRENEAU_SMS_REGIONS
    style = phonenumbers.PhoneNumberFormat
    return phonenumbers.format_number(number, style.NATIONAL if home else style.INTERNATIONAL)


def phone_kind(value: str) -> str:
    """Why a number gets no text message, in one word: "" (it gets them), "landline",
    "abroad" (a number of a country the hub does not text), "none"."""
    if not value:
        return "none"
    if sms_reachable(value):
        return ""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return "abroad"
    home = phonenumbers.region_code_for_number(number) in settings.CRENEAU_SMS_REGIONS
    return "landline" if home else "abroad"


def contact_plan(phone: str, email: str) -> list[str]:
    """What the patient is sent and where, in sentences for the confirmation pages."""
    shown = phone_display(phone)
    kind = phone_kind(phone)
    plan = [
        {
            "": _("A text message goes to %(phone)s."),
            "landline": _("No text message: %(phone)s is a landline."),
            "abroad": _("No text message: %(phone)s is not a mobile number in France."),
            "none": _("No text message: no phone number was given."),
        }[kind]
        % {"phone": shown}
    ]
    if email:
        plan.append(_("A confirmation e-mail goes to %(email)s.") % {"email": email})
    elif kind:
        plan.append(
            _(
                "Nothing is sent to the patient: tell them the date, the place and the "
                "reference, or print the appointment slip."
            )
        )
    return plan


def _email(value: str) -> str:
    value = value.strip()
    if value:
        try:
            validate_email(value)
        except ValidationError as error:
            raise _Invalid(_("The e-mail address is not valid.")) from error
    return value


def _checked(checks: dict[str, Any], prefix: str = "patient.") -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field, check in checks.items():
        try:
            cleaned[field] = check()
        except _Invalid as error:
            errors[field] = str(error)
    if errors:
        raise PatientDetailsInvalid(errors, prefix)
    return cleaned


def _contact_phone(value: str, contact: str) -> str:
    if not value.strip():
        if contact == Contact.STAFF:
            return ""  # the reason is asked for below
        raise _Invalid(_("The phone number is required."))
    return _phone(value)


def _reachable(given: dict[str, Any], contact: str) -> None:
    """Whether the patient can be reached as the channel needs: raised on the field to fill."""
    phone, email = str(given.get("phone") or "").strip(), str(given.get("email") or "").strip()
    if contact == Contact.STAFF and not phone:
        if not " ".join(str(given.get("no_phone_reason") or "").split()):
            raise _Invalid(
                _("Without a phone number, say why (for example: no phone, lives in care).")
            )
        return
    if contact != Contact.SELF or email or not phone:
        return
    try:
        if sms_reachable(_phone(phone)):
            return
    except _Invalid:
        return  # the phone field reports it
    raise _Invalid(
        _(
            "Text messages go only to mobile numbers in France (mainland and overseas): with "
            "this number, give an e-mail address for the confirmation and the reminder."
        )
    )


def _patient_checks(given: dict[str, Any], contact: str = Contact.SELF) -> dict[str, Any]:
    rules = {
        "last_name": lambda value: _name(value, _("last name")),
        "first_name": lambda value: _name(value, _("first name")),
        "birth_date": _birth_date,
        "phone": lambda value: _contact_phone(value, contact),
        "email": _email,
        "no_phone_reason": lambda value: " ".join(value.split())[:200],
    }
    checks = {field: functools.partial(rules[field], value) for field, value in given.items()}
    # Whether the patient can be reached is reported on the field that would fix it, once that
    # field itself is right (and not when the phone could not be read at all).
    reach = "no_phone_reason" if contact == Contact.STAFF and not given.get("phone") else "email"
    if reach in checks and "phone" in given:
        own = checks[reach]

        def checked_with_reach():
            value = own()
            _reachable(given, contact)
            return value

        checks[reach] = checked_with_reach
    elif contact == Contact.STAFF and reach == "no_phone_reason" and "phone" in given:
        checks[reach] = lambda: _reachable(given, contact) or ""
    return checks


def patient_details_clean(
    *,
    last_name: str,
    first_name: str,
    birth_date: date,
    phone: str,
    email: str = "",
    language: str = "fr",
    contact: str = Contact.SELF,
    no_phone_reason: str = "",
) -> PatientDetails:
    given = {
        "last_name": last_name,
        "first_name": first_name,
        "birth_date": birth_date,
        "phone": phone,
        "email": email,
        "no_phone_reason": no_phone_reason if not phone.strip() else "",
    }
    cleaned = _checked(_patient_checks(given, contact))
    return PatientDetails(**cleaned, language="en" if language.lower().startswith("en") else "fr")


def patient_details_errors(contact: str = Contact.SELF, **given: Any) -> dict[str, str]:
    """The booking rules' errors for the fields given, by field: a form whose other fields
    could not even be read still reports these, so the patient sees every error at once."""
    try:
        _checked(_patient_checks(given, contact))
    except PatientDetailsInvalid as error:
        return error.errors
    return {}


@dataclass(frozen=True)
class CallerCriteria:
    last_name: str
    birth_date: date
    phone: str  # E.164


def caller_criteria_clean(*, last_name: str, birth_date: date, phone: str) -> CallerCriteria:
    """What an operator asks a caller to find their appointments, checked like a booking's."""
    return CallerCriteria(
        **_checked(
            {
                "last_name": lambda: _name(last_name, _("last name")),
                "birth_date": lambda: _birth_date(birth_date),
                "phone": lambda: _phone(phone),
            },
            prefix="",
        )
    )
