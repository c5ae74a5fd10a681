"""Every write to the directory. Imports and the demo loader go through these functions too."""

from collections.abc import Iterable
from typing import Any, Literal, TypeVar

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils.translation import gettext as _

from creneau.directory.models import (
    Department,
    Establishment,
    Organisation,
    Practitioner,
    PractitionerRole,
    Specialty,
    VisitType,
)
from creneau.errors import DomainError

Outcome = Literal["created", "updated", "unchanged"]
M = TypeVar("M", bound=models.Model)


class DirectoryError(DomainError):
    """A directory change refused; ``field`` names the offending field when there is one."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(code, message)
        self.field = field


def _raise_first(error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        field, errors = next(iter(error.error_dict.items()))
        first = errors[0]
        message = first.message % first.params if first.params else first.message
        raise DirectoryError(
            first.code or "invalid", str(message), field=None if field == "__all__" else field
        ) from None
    raise DirectoryError("invalid", "; ".join(error.messages)) from None


def _upsert(model: type[M], lookup: dict[str, Any], values: dict[str, Any]) -> tuple[M, Outcome]:
    """Create the row found by ``lookup`` or bring it to ``values``; validate before writing."""
    instance = model._default_manager.filter(**lookup).first()
    outcome: Outcome
    if instance is None:
        instance = model(**lookup, **values)
        outcome = "created"
    else:
        changed = {k: v for k, v in values.items() if getattr(instance, k) != v}
        if not changed:
            return instance, "unchanged"
        for key, value in changed.items():
            setattr(instance, key, value)
        outcome = "updated"
    if isinstance(instance, Practitioner):
        instance.refresh_search_name()
    try:
        instance.full_clean()
    except ValidationError as error:
        _raise_first(error)
    instance.save()
    return instance, outcome


@transaction.atomic
def organisation_upsert(
    *,
    finess_ej: str,
    name: str,
    short_name: str = "",
    is_public: bool = False,
    runs_hub: bool = False,
    website: str = "",
) -> tuple[Organisation, Outcome]:
    if runs_hub and Organisation.objects.filter(runs_hub=True).exclude(finess_ej=finess_ej):
        raise DirectoryError(
            "hub_organisation_exists",
            _("Another organisation already runs this hub."),
            field="runs_hub",
        )
    return _upsert(
        Organisation,
        {"finess_ej": finess_ej},
        {
            "name": name,
            "short_name": short_name,
            "is_public": is_public,
            "runs_hub": runs_hub,
            "website": website,
        },
    )


def specialty_upsert(
    *, code: str, label_fr: str, label_en: str, ordinal_code: str | None = None
) -> tuple[Specialty, Outcome]:
    fields = {"label_fr": label_fr, "label_en": label_en}
    if ordinal_code is not None:
        fields["ordinal_code"] = ordinal_code
    return _upsert(Specialty, {"code": code}, fields)


def establishment_upsert(
    *,
    finess: str,
    organisation: Organisation,
    name: str,
    city: str,
    address: str = "",
    postcode: str = "",
    latitude: float | None = None,
    longitude: float | None = None,
    time_zone: str = "Europe/Paris",
    phone: str = "",
    is_active: bool = True,
) -> tuple[Establishment, Outcome]:
    return _upsert(
        Establishment,
        {"finess": finess},
        {
            "organisation": organisation,
            "name": name,
            "city": city,
            "address": address,
            "postcode": postcode,
            "latitude": latitude,
            "longitude": longitude,
            "time_zone": time_zone,
            "phone": phone,
            "is_active": is_active,
        },
    )


def department_upsert(
    *, establishment: Establishment, code: str, name: str
) -> tuple[Department, Outcome]:
    return _upsert(Department, {"establishment": establishment, "code": code}, {"name": name})


def practitioner_upsert(
    *, rpps: str, first_name: str, last_name: str, title: str = ""
) -> tuple[Practitioner, Outcome]:
    return _upsert(
        Practitioner,
        {"rpps": rpps},
        {"first_name": first_name, "last_name": last_name, "title": title},
    )


@transaction.atomic
def practitioner_role_upsert(
    *,
    practitioner: Practitioner,
    establishment: Establishment,
    department: Department | None,
    specialties: Iterable[Specialty],
    is_active: bool = True,
) -> tuple[PractitionerRole, Outcome]:
    if department is not None and department.establishment_id != establishment.pk:
        raise DirectoryError(
            "department_of_other_establishment",
            _("Department %(code)s does not belong to establishment %(finess)s.")
            % {"code": department.code, "finess": establishment.finess},
            field="department",
        )
    wanted = set(specialties)
    if not wanted:
        raise DirectoryError(
            "specialty_required", _("A practitioner role needs a specialty."), field="specialties"
        )
    role, outcome = _upsert(
        PractitionerRole,
        {"practitioner": practitioner, "establishment": establishment, "department": department},
        {"is_active": is_active},
    )
    if set(role.specialties.all()) != wanted:
        role.specialties.set(wanted)
        if outcome == "unchanged":
            outcome = "updated"
    return role, outcome


def visit_type_upsert(
    *,
    organisation: Organisation,
    code: str,
    specialty: Specialty,
    label_fr: str,
    label_en: str,
    duration_minutes: int,
    new_patients_allowed: bool = True,
    preparation_fr: str = "",
    preparation_en: str = "",
    is_active: bool = True,
    min_notice_minutes: int | None = None,
    max_horizon_days: int | None = None,
) -> tuple[VisitType, Outcome]:
    values: dict[str, Any] = {
        "specialty": specialty,
        "label_fr": label_fr,
        "label_en": label_en,
        "duration_minutes": duration_minutes,
        "new_patients_allowed": new_patients_allowed,
        "preparation_fr": preparation_fr,
        "preparation_en": preparation_en,
        "is_active": is_active,
    }
    # Booking windows are often tuned by staff after an import: a file that does not name them
    # keeps what is stored.
    if min_notice_minutes is not None:
        values["min_notice_minutes"] = min_notice_minutes
    if max_horizon_days is not None:
        values["max_horizon_days"] = max_horizon_days
    return _upsert(VisitType, {"organisation": organisation, "code": code}, values)
