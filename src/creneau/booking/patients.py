"""The patient's details as a booking takes them: checked once here for the API and the pages."""

from dataclasses import dataclass
from datetime import date

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import gettext as _

from creneau.errors import DomainError

OLDEST_PATIENT_YEARS = 120


class PatientDetailsInvalid(DomainError):
    status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__("invalid_patient", message)
        self.field = field


@dataclass(frozen=True)
class PatientDetails:
    last_name: str
    first_name: str
    birth_date: date
    phone: str  # E.164
    email: str
    language: str


def _name(value: str, field: str, label: str) -> str:
    cleaned = " ".join(value.split())
    if not cleaned:
        raise PatientDetailsInvalid(field, _("The %(label)s is required.") % {"label": label})
    if len(cleaned) > 100 or any(ch.isdigit() or ch in "<>{}@" for ch in cleaned):
        raise PatientDetailsInvalid(
            field, _("The %(label)s does not look like a name.") % {"label": label}
        )
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
    today = timezone.localdate()
    if birth_date > today:
        raise PatientDetailsInvalid("birth_date", _("The date of birth is in the future."))
    if today.year - birth_date.year > OLDEST_PATIENT_YEARS:
        raise PatientDetailsInvalid("birth_date", _("The date of birth is not plausible."))
    try:
        # Numbers without a country code are read as French ones, as patients here write them.
        number = phonenumbers.parse(phone, "FR")
    except phonenumbers.NumberParseException as error:
        raise PatientDetailsInvalid("phone", _("The phone number cannot be read.")) from error
    if not phonenumbers.is_valid_number(number):
        raise PatientDetailsInvalid("phone", _("The phone number is not a valid number."))
    email = email.strip()
    if email:
        try:
            validate_email(email)
        except ValidationError as error:
            raise PatientDetailsInvalid("email", _("The e-mail address is not valid.")) from error
    return PatientDetails(
        last_name=_name(last_name, "last_name", _("last name")),
        first_name=_name(first_name, "first_name", _("first name")),
        birth_date=birth_date,
        phone=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        email=email,
        language="en" if language.lower().startswith("en") else "fr",
    )
