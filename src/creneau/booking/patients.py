"""The patient's details as a booking takes them: checked once here for the API and the pages."""

from dataclasses import dataclass
from datetime import date
from typing import Any

import phonenumbers
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


def _phone(value: str) -> str:
    try:
        # Numbers without a country code are read as French ones, as patients here write them.
        number = phonenumbers.parse(value, "FR")
    except phonenumbers.NumberParseException as error:
        raise _Invalid(_("The phone number cannot be read.")) from error
    if not phonenumbers.is_valid_number(number):
        raise _Invalid(_("The phone number is not a valid number."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


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
        {
            "last_name": lambda: _name(last_name, _("last name")),
            "first_name": lambda: _name(first_name, _("first name")),
            "birth_date": lambda: _birth_date(birth_date),
            "phone": lambda: _phone(phone),
            "email": lambda: _email(email),
        }
    )
    return PatientDetails(**cleaned, language="en" if language.lower().startswith("en") else "fr")


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
