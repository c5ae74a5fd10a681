"""``creneau import``: load a directory from CSV files or a FHIR R4 Bundle, all or nothing.

Each CSV file holds one kind of record, recognised from its header (see README, "Importing a
directory"). Records are upserted on their natural keys (FINESS, RPPS, codes), so importing the
same files again changes nothing. The first bad row stops the import and rolls it back, with a
message naming the file, the row or resource, and the field.
"""

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from creneau.directory import services
from creneau.directory.models import (
    Department,
    Establishment,
    Organisation,
    Practitioner,
    Specialty,
)
from creneau.directory.services import DirectoryError, Outcome


class ImportFailed(Exception):
    def __init__(self, source: str, where: str, field: str | None, message: str) -> None:
        self.source, self.where, self.field, self.message = source, where, field, message
        place = f"{source}, {where}"
        if field:
            place += ", " + _('field "%s"') % field
        super().__init__(f"{place}: {message}")


@dataclass
class ImportReport:
    counts: Counter = field(default_factory=Counter)

    def add(self, kind: str, outcome: Outcome) -> None:
        self.counts[(kind, outcome)] += 1

    @property
    def changed(self) -> int:
        return sum(n for (_kind, outcome), n in self.counts.items() if outcome != "unchanged")

    def lines(self) -> list[str]:
        kinds = sorted({kind for kind, _outcome in self.counts}, key=KIND_ORDER.index)
        return [
            f"{kind}: {self.counts[(kind, 'created')]} created, "
            f"{self.counts[(kind, 'updated')]} updated, "
            f"{self.counts[(kind, 'unchanged')]} unchanged"
            for kind in kinds
        ]


class _RowError(Exception):
    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


# ---------------------------------------------------------------------------------------------
# Value parsing shared by both formats


def _text(row: dict[str, str], name: str, *, required: bool = False) -> str:
    value = (row.get(name) or "").strip()
    if required and not value:
        raise _RowError(name, _("this field is required"))
    return value


def _boolean(row: dict[str, str], name: str, default: bool) -> bool:
    value = _text(row, name).lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "oui", "vrai", "y", "o"}:
        return True
    if value in {"0", "false", "no", "non", "faux", "n"}:
        return False
    raise _RowError(name, _("expected yes or no (1/0, true/false, oui/non), not %r") % value)


def _number(row: dict[str, str], name: str, cast: Callable[[str], Any]) -> Any:
    value = _text(row, name)
    if not value:
        return None
    try:
        return cast(value.replace(",", ".") if cast is float else value)
    except ValueError:
        raise _RowError(name, _("%r is not a number") % value) from None


def _get(model: type, field_name: str, **lookup: Any) -> Any:
    instance = model._default_manager.filter(**lookup).first()
    if instance is None:
        value = next(iter(lookup.values()))
        raise _RowError(
            field_name,
            _("no %(kind)s %(value)s in the directory or earlier in this import")
            % {"kind": model._meta.verbose_name, "value": value},
        )
    return instance


# ---------------------------------------------------------------------------------------------
# CSV


def _organisation_row(row: dict[str, str]) -> tuple[Any, Outcome]:
    return services.organisation_upsert(
        finess_ej=_text(row, "finess_ej", required=True),
        name=_text(row, "name", required=True),
        short_name=_text(row, "short_name"),
        is_public=_boolean(row, "is_public", False),
        runs_hub=_boolean(row, "runs_hub", False),
        website=_text(row, "website"),
    )


def _specialty_row(row: dict[str, str]) -> tuple[Any, Outcome]:
    return services.specialty_upsert(
        code=_text(row, "code", required=True),
        label_fr=_text(row, "label_fr", required=True),
        label_en=_text(row, "label_en", required=True),
    )


def _establishment_row(row: dict[str, str]) -> tuple[Any, Outcome]:
    organisation = _get(
        Organisation,
        "organisation_finess_ej",
        finess_ej=_text(row, "organisation_finess_ej", required=True),
    )
    return services.establishment_upsert(
        finess=_text(row, "finess", required=True),
        organisation=organisation,
        name=_text(row, "name", required=True),
        city=_text(row, "city", required=True),
        address=_text(row, "address"),
        postcode=_text(row, "postcode"),
        latitude=_number(row, "latitude", float),
        longitude=_number(row, "longitude", float),
        time_zone=_text(row, "time_zone") or "Europe/Paris",
        phone=_text(row, "phone"),
        is_active=_boolean(row, "is_active", True),
    )


def _department_row(row: dict[str, str]) -> tuple[Any, Outcome]:
    establishment = _get(
        Establishment,
        "establishment_finess",
        finess=_text(row, "establishment_finess", required=True),
    )
    return services.department_upsert(
        establishment=establishment,
        code=_text(row, "code", required=True),
        name=_text(row, "name", required=True),
    )


def _practitioner_row(row: dict[str, str]) -> tuple[Any, Outcome]:
    return services.practitioner_upsert(
        rpps=_text(row, "rpps", required=True),
        first_name=_text(row, "first_name", required=True),
        last_name=_text(row, "last_name", required=True),
        title=_text(row, "title"),
    )


def _specialties(codes: Iterable[str], field_name: str) -> list[Specialty]:
    found = []
    for code in codes:
        found.append(_get(Specialty, field_name, code=code))
    return found


def _role_row(row: dict[str, str]) -> tuple[Any, Outcome]:
    practitioner = _get(Practitioner, "rpps", rpps=_text(row, "rpps", required=True))
    establishment = _get(
        Establishment,
        "establishment_finess",
        finess=_text(row, "establishment_finess", required=True),
    )
    department_code = _text(row, "department_code")
    department = (
        _get(Department, "department_code", establishment=establishment, code=department_code)
        if department_code
        else None
    )
    codes = [c.strip() for c in _text(row, "specialties", required=True).split("|") if c.strip()]
    return services.practitioner_role_upsert(
        practitioner=practitioner,
        establishment=establishment,
        department=department,
        specialties=_specialties(codes, "specialties"),
        is_active=_boolean(row, "is_active", True),
    )


def _visit_type_row(row: dict[str, str]) -> tuple[Any, Outcome]:
    organisation = _get(
        Organisation,
        "organisation_finess_ej",
        finess_ej=_text(row, "organisation_finess_ej", required=True),
    )
    duration = _number(row, "duration_minutes", int)
    if duration is None:
        raise _RowError("duration_minutes", _("this field is required"))
    return services.visit_type_upsert(
        organisation=organisation,
        code=_text(row, "code", required=True),
        specialty=_get(Specialty, "specialty", code=_text(row, "specialty", required=True)),
        label_fr=_text(row, "label_fr", required=True),
        label_en=_text(row, "label_en", required=True),
        duration_minutes=duration,
        new_patients_allowed=_boolean(row, "new_patients_allowed", True),
        preparation_fr=_text(row, "preparation_fr"),
        preparation_en=_text(row, "preparation_en"),
        is_active=_boolean(row, "is_active", True),
    )


@dataclass(frozen=True)
class CsvKind:
    name: str
    required: frozenset[str]
    optional: frozenset[str]
    apply: Callable[[dict[str, str]], tuple[Any, Outcome]]


def _kind(name: str, required: str, optional: str, apply: Callable) -> CsvKind:
    return CsvKind(name, frozenset(required.split()), frozenset(optional.split()), apply)


# In dependency order: a file may refer to what an earlier kind created in the same import.
CSV_KINDS = [
    _kind(
        "organisations",
        "finess_ej name",
        "short_name is_public runs_hub website",
        _organisation_row,
    ),
    _kind("specialties", "code label_fr label_en", "", _specialty_row),
    _kind(
        "establishments",
        "finess organisation_finess_ej name city",
        "address postcode latitude longitude time_zone phone is_active",
        _establishment_row,
    ),
    _kind("departments", "establishment_finess code name", "", _department_row),
    _kind("practitioners", "rpps first_name last_name", "title", _practitioner_row),
    _kind(
        "practitioner_roles",
        "rpps establishment_finess specialties",
        "department_code is_active",
        _role_row,
    ),
    _kind(
        "visit_types",
        "organisation_finess_ej code specialty label_fr label_en duration_minutes",
        "new_patients_allowed preparation_fr preparation_en is_active",
        _visit_type_row,
    ),
]
KIND_ORDER = [kind.name for kind in CSV_KINDS]


def csv_kind_for_header(header: list[str], source: str) -> CsvKind:
    columns = set(header)
    matches = [kind for kind in CSV_KINDS if kind.required <= columns]
    if not matches:
        raise ImportFailed(
            source,
            _("header"),
            None,
            _("these columns match no known file kind (%s); see README") % ", ".join(header),
        )
    kind = max(matches, key=lambda k: len(k.required))
    unknown = columns - kind.required - kind.optional
    if unknown:
        raise ImportFailed(
            source,
            _("header"),
            sorted(unknown)[0],
            _("unknown column for a %(kind)s file") % {"kind": kind.name},
        )
    return kind


def _read_csv(path: Path) -> tuple[CsvKind, list[tuple[int, dict[str, str]]]]:
    source = path.name
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportFailed(source, _("byte %d") % error.start, None, _("not UTF-8 text")) from None
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel  # type: ignore[assignment]
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [name.strip() for name in (reader.fieldnames or [])]
    reader.fieldnames = header
    kind = csv_kind_for_header(header, source)
    rows = []
    for row in reader:
        if None in row:
            raise ImportFailed(
                source, _("row %d") % reader.line_num, None, _("more values than columns")
            )
        if any((value or "").strip() for value in row.values()):
            rows.append((reader.line_num, row))
    return kind, rows


# ---------------------------------------------------------------------------------------------
# FHIR R4

FINESS_SYSTEMS = {
    "http://finess.sante.gouv.fr",
    "https://finess.esante.gouv.fr",
    "urn:oid:1.2.250.1.71.4.2.2",  # ANS IDNST: "1" followed by the FINESS number
}
RPPS_SYSTEMS = {
    "http://rpps.fr",
    "https://rpps.esante.gouv.fr",
    "urn:oid:1.2.250.1.71.4.2.1",  # ANS IDNPS: "8" followed by the RPPS number
}


def _identifier(resource: Any, systems: set[str], prefix: str, length: int) -> str | None:
    for identifier in resource.identifier or []:
        if identifier.system in systems and identifier.value:
            value = identifier.value.strip()
            if len(value) == length + 1 and value.startswith(prefix):
                value = value[1:]
            return value
    return None


class _Bundle:
    """Resolves references between the entries of one bundle."""

    def __init__(self, bundle: Any) -> None:
        self.by_reference: dict[str, Any] = {}
        for entry in bundle.entry or []:
            resource = entry.resource
            if entry.fullUrl:
                self.by_reference[entry.fullUrl] = resource
            if getattr(resource, "id", None):
                self.by_reference[f"{resource.get_resource_type()}/{resource.id}"] = resource
        self.done: dict[int, Any] = {}

    def resolve(self, reference: Any, expected: str, field_name: str) -> Any:
        if reference is None or not reference.reference:
            raise _RowError(field_name, _("a reference to a %s is required") % expected)
        target = self.by_reference.get(reference.reference)
        if target is None or target.get_resource_type() != expected:
            raise _RowError(
                field_name,
                _("%(ref)s is not a %(type)s of this bundle")
                % {"ref": reference.reference, "type": expected},
            )
        created = self.done.get(id(target))
        if created is None:
            raise _RowError(field_name, _("%s is invalid or not imported") % reference.reference)
        return created


def _fhir_organization(resource: Any, bundle: _Bundle) -> tuple[Any, Outcome]:
    finess = _identifier(resource, FINESS_SYSTEMS, "1", 9)
    if not finess:
        raise _RowError("identifier", _("an Organization needs its FINESS identifier"))
    if not resource.name:
        raise _RowError("name", _("this field is required"))
    website = next((t.value for t in resource.telecom or [] if t.system == "url"), "") or ""
    return services.organisation_upsert(
        finess_ej=finess,
        name=resource.name,
        short_name=(resource.alias or [""])[0],
        is_public=False,
        website=website,
    )


def _fhir_location(resource: Any, bundle: _Bundle) -> tuple[Any, Outcome]:
    finess = _identifier(resource, FINESS_SYSTEMS, "1", 9)
    if not finess:
        raise _RowError("identifier", _("a Location needs its FINESS identifier"))
    organisation = bundle.resolve(
        resource.managingOrganization, "Organization", "managingOrganization"
    )
    address = resource.address
    if address is None or not address.city:
        raise _RowError("address.city", _("this field is required"))
    position = resource.position
    phone = next((t.value for t in resource.telecom or [] if t.system == "phone"), "") or ""
    return services.establishment_upsert(
        finess=finess,
        organisation=organisation,
        name=resource.name or "",
        city=address.city,
        address=", ".join(address.line or []),
        postcode=address.postalCode or "",
        latitude=float(position.latitude) if position else None,
        longitude=float(position.longitude) if position else None,
        phone=phone,
        is_active=resource.status in (None, "active"),
    )


def _fhir_healthcare_service(resource: Any, bundle: _Bundle) -> tuple[Any, Outcome]:
    locations = resource.location or []
    if len(locations) != 1:
        raise _RowError(
            "location", _("a HealthcareService (department) needs exactly one location")
        )
    establishment = bundle.resolve(locations[0], "Location", "location")
    code = next((i.value for i in resource.identifier or [] if i.value), None) or resource.id
    if not code:
        raise _RowError("identifier", _("a HealthcareService needs an identifier or an id"))
    if not resource.name:
        raise _RowError("name", _("this field is required"))
    return services.department_upsert(establishment=establishment, code=code, name=resource.name)


def _fhir_practitioner(resource: Any, bundle: _Bundle) -> tuple[Any, Outcome]:
    rpps = _identifier(resource, RPPS_SYSTEMS, "8", 11)
    if not rpps:
        raise _RowError("identifier", _("a Practitioner needs its RPPS identifier"))
    name = (resource.name or [None])[0]
    if name is None or not name.family or not name.given:
        raise _RowError("name", _("a family name and a given name are required"))
    return services.practitioner_upsert(
        rpps=rpps,
        first_name=" ".join(name.given),
        last_name=name.family,
        title=(name.prefix or [""])[0],
    )


def _fhir_practitioner_role(resource: Any, bundle: _Bundle) -> tuple[Any, Outcome]:
    practitioner = bundle.resolve(resource.practitioner, "Practitioner", "practitioner")
    locations = resource.location or []
    if len(locations) != 1:
        raise _RowError("location", _("a PractitionerRole needs exactly one location"))
    establishment = bundle.resolve(locations[0], "Location", "location")
    services_ = resource.healthcareService or []
    department = (
        bundle.resolve(services_[0], "HealthcareService", "healthcareService")
        if services_
        else None
    )
    codes = [c.code for concept in resource.specialty or [] for c in concept.coding or [] if c.code]
    if not codes:
        raise _RowError("specialty", _("a PractitionerRole needs a specialty"))
    return services.practitioner_role_upsert(
        practitioner=practitioner,
        establishment=establishment,
        department=department,
        specialties=_specialties(codes, "specialty"),
        is_active=resource.active is not False,
    )


FHIR_ORDER: list[tuple[str, Callable[[Any, _Bundle], tuple[Any, Outcome]], str]] = [
    ("Organization", _fhir_organization, "organisations"),
    ("Location", _fhir_location, "establishments"),
    ("HealthcareService", _fhir_healthcare_service, "departments"),
    ("Practitioner", _fhir_practitioner, "practitioners"),
    ("PractitionerRole", _fhir_practitioner_role, "practitioner_roles"),
]


def _import_fhir(path: Path, report: ImportReport) -> None:
    from fhir.resources.R4B.bundle import Bundle
    from pydantic import ValidationError as PydanticError

    source = path.name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ImportFailed(source, _("document"), None, _("not JSON: %s") % error) from None
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise ImportFailed(source, _("document"), "resourceType", _("expected a FHIR Bundle"))
    try:
        bundle = Bundle.model_validate(data)
    except PydanticError as error:
        first = error.errors()[0]
        loc = list(first["loc"])
        where = _("document")
        if len(loc) >= 2 and loc[0] == "entry" and isinstance(loc[1], int):
            where = _entry_label(data, loc[1])
            loc = loc[3:] if len(loc) > 2 and loc[2] == "resource" else loc[2:]
        raise ImportFailed(
            source, where, ".".join(str(part) for part in loc) or None, first["msg"]
        ) from None
    resolver = _Bundle(bundle)
    known = {resource_type for resource_type, _apply, _kind in FHIR_ORDER}
    for index, entry in enumerate(bundle.entry or []):
        if entry.resource.get_resource_type() not in known:
            raise ImportFailed(
                source,
                _entry_label(data, index),
                "resourceType",
                _(
                    "only Organization, Location, HealthcareService, Practitioner and "
                    "PractitionerRole are imported"
                ),
            )
    for resource_type, apply, kind in FHIR_ORDER:
        for index, entry in enumerate(bundle.entry or []):
            resource = entry.resource
            if resource.get_resource_type() != resource_type:
                continue
            try:
                instance, outcome = apply(resource, resolver)
            except (_RowError, DirectoryError) as error:
                raise ImportFailed(
                    source, _entry_label(data, index), error.field, error.message
                ) from None
            resolver.done[id(resource)] = instance
            report.add(kind, outcome)


def _entry_label(data: dict, index: int) -> str:
    resource = (data.get("entry") or [{}])[index].get("resource") or {}
    label = _("entry %d") % index
    if resource.get("resourceType"):
        label += f" ({resource['resourceType']}/{resource.get('id', '?')})"
    return label


# ---------------------------------------------------------------------------------------------


def directory_import(paths: Iterable[Path]) -> ImportReport:
    """Import the given files in one transaction: every row, or nothing."""
    report = ImportReport()
    csv_files: list[tuple[CsvKind, Path, list[tuple[int, dict[str, str]]]]] = []
    fhir_files: list[Path] = []
    for path in paths:
        if not path.is_file():
            raise ImportFailed(path.name, _("file"), None, _("no such file"))
        if path.suffix.lower() == ".json":
            fhir_files.append(path)
        else:
            kind, rows = _read_csv(path)
            csv_files.append((kind, path, rows))
    csv_files.sort(key=lambda item: KIND_ORDER.index(item[0].name))
    with transaction.atomic():
        for kind, path, rows in csv_files:
            for line, row in rows:
                try:
                    _instance, outcome = kind.apply(row)
                except (_RowError, DirectoryError) as error:
                    raise ImportFailed(
                        path.name, _("row %d") % line, error.field, error.message
                    ) from None
                report.add(kind.name, outcome)
        for path in fhir_files:
            _import_fhir(path, report)
    return report
