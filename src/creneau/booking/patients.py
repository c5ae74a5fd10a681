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


@dataclass(frozen=True)
class PatientDetails:
    last_name: str
    first_name: str
    birth_date: date
    phone: str  # E.164
    email: str
    language: str


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


def _mobile_phone(value: str) -> str:
    """The number the confirmation and reminders are texted to."""
    number = _parse_phone(value)
    if not sms_reachable(number):
        if phonenumbers.region_code_for_number(number) in settings.CRENEAU_SMS_REGIONS:
            raise _Invalid(
                _(
                    "This is not a mobile number: give a mobile number, to which the "
                    "confirmation and the reminder are sent by text message."
                )
            )
        raise _Invalid(
            _(
                "Text messages are sent only to mobile numbers in France (mainland and "
                "overseas): give such a number."
            )
        )
    return _e164(number)


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


def _patient_checks(given: dict[str, Any]) -> dict[str, Any]:
    rules = {
        "last_name": lambda value: _name(value, _("last name")),
        "first_name": lambda value: _name(value, _("first name")),
        "birth_date": _birth_date,
        "phone": _mobile_phone,
        "email": _email,
    }
    return {field: functools.partial(rules[field], value) for field, value in given.items()}


def patient_details_clean(
    *,
    last_name: str,
    first_name: str,
    birth_date: date,
    phone: str,
    email: str = "",
    language: str = "fr",
) -> PatientDetails:
    cleaned = _checked(
        _patient_checks(
            {
                "last_name": last_name,
                "first_name": first_name,
                "birth_date": birth_date,
                "phone": phone,
                "email": email,
            }
        )
    )
    return PatientDetails(**cleaned, language="en" if language.lower().startswith("en") else "fr")


def patient_details_errors(**given: Any) -> dict[str, str]:
    """The booking rules' errors for the fields given, by field: a form whose other fields
    could not even be read still reports these, so the patient sees every error at once."""
    try:
        _checked(_patient_checks(given))
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
