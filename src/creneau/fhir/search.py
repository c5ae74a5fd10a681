"""FHIR search (R4 §3.1.1) over the directory and the free slots, each one through the calling
channel's perimeter: the same filters as the JSON API (channels.queries, agenda.queries), so a
practitioner outside the perimeter is never found, not even by identifier.

Parameters FHIR repeats are ANDed, comma-separated values ORed (R4 §3.1.1.3). A parameter this
server does not support is refused (400) rather than silently ignored: a platform that asks
for something it would not get must know it."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Model, Q, QuerySet, prefetch_related_objects
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext as _

from creneau.agenda.models import Slot
from creneau.agenda.queries import offerable_slots
from creneau.channels.queries import ChannelScope
from creneau.dates import LONGEST_PERIOD_DAYS, MAX_OFFSET, instant_in_range
from creneau.directory.models import (
    Department,
    Establishment,
    Organisation,
    Practitioner,
    PractitionerRole,
)
from creneau.directory.national import IDNPS_SYSTEM, IDNST_SYSTEM
from creneau.fhir import resources
from creneau.fhir.responses import FhirError

DEFAULT_COUNT = 100
# A platform under contract (the SAS asks up to 1,000 at once) may page by 5,000; anyone else,
# served without a credential, by 200: a page costs the server in proportion.
MAX_COUNT = 5000
PUBLIC_MAX_COUNT = 200
# Always understood: paging, includes, the format, and a widget's channel key.
CONTROL = {"_count", "_offset", "_include", "_include:iterate", "_format", "channel"}


def bad_request(code: str, message: str) -> FhirError:
    return FhirError(code, message, status=400)


@dataclass(frozen=True)
class Token:
    system: str | None
    code: str


def token(raw: str) -> Token:
    """``system|code``, ``|code`` (no system) or ``code`` (any system)."""
    if "|" in raw:
        system, code = raw.split("|", 1)
        return Token(system=system, code=code.strip())
    return Token(system=None, code=raw.strip())


@dataclass
class Params:
    query: QueryDict
    supported: frozenset[str]

    def __post_init__(self) -> None:
        unknown = sorted(set(self.query) - self.supported - CONTROL)
        if unknown:
            raise bad_request(
                "search_parameter_unsupported",
                _("Unsupported search parameter: %(names)s. Supported: %(supported)s.")
                % {
                    "names": ", ".join(unknown)[:200],
                    "supported": ", ".join(sorted(self.supported)),
                },
            )

    def each(self, name: str) -> list[list[str]]:
        """Every occurrence of ``name`` (ANDed), each split at commas (ORed): at most
        ``MAX_VALUES`` values in all (a thousand ORed ids are more than SQLite's expression
        tree holds, and no client needs them in one search)."""
        found = [
            [value for value in raw.split(",") if value.strip()] for raw in self.query.getlist(name)
        ]
        if sum(len(values) for values in found) > MAX_VALUES:
            raise bad_request(
                "too_many_values",
                _("%(name)s takes at most %(most)s values in one search.")
                % {"name": name, "most": MAX_VALUES},
            )
        return found

    def count(self, default: int = DEFAULT_COUNT, most: int = MAX_COUNT) -> int:
        return self._integer("_count", min(default, most), 0, most)

    def offset(self) -> int:
        return self._integer("_offset", 0, 0, MAX_OFFSET)

    def _integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.query.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = -1
        if not low <= value <= high:
            raise bad_request(
                "invalid_parameter",
                _("%(name)s must be a whole number from %(low)s to %(high)s.")
                % {"name": name, "low": low, "high": high},
            )
        return value

    def includes(self) -> tuple[set[str], set[str]]:
        direct = {v for values in self.each("_include") for v in values}
        iterate = {v for values in self.each("_include:iterate") for v in values}
        unknown = sorted((direct | iterate) - set(INCLUDES))
        if unknown:
            raise bad_request(
                "include_unsupported",
                _("Unsupported _include: %(names)s. Supported: %(supported)s.")
                % {"names": ", ".join(unknown)[:200], "supported": ", ".join(sorted(INCLUDES))},
            )
        return direct, iterate


def _any_of(values: list[str], one) -> Q:
    condition = Q(pk__in=[])
    for value in values:
        condition |= one(value)
    return condition


def _apply(found: QuerySet, params: Params, name: str, one) -> QuerySet:
    for values in params.each(name):
        found = found.filter(_any_of(values, one))
    return found


def _reference_id(value: str, kind: str) -> str:
    """The id in ``Kind/id``, an absolute URL ending so, or a bare id."""
    value = value.strip().rstrip("/")
    if "/" not in value:
        return value
    parts = value.split("/")
    if len(parts) >= 2 and parts[-2] == kind:
        return parts[-1]
    raise bad_request(
        "invalid_reference",
        _("%(value)s is not a reference to a %(kind)s.") % {"value": value[:80], "kind": kind},
    )


def _refers(field: str, kind: str):
    """A reference parameter (``Kind/ID``) as a condition on ``field``'s public id."""
    return lambda value: Q(**{f"{field}__public_id": _reference_id(value, kind)})


def _by_id(value: str) -> Q:
    return Q(public_id=value)


def _role_specialty(value: str) -> Q:
    return Q(
        pk__in=PractitionerRole.specialties.through.objects.filter(
            _specialty_condition(value, "specialty__")
        ).values("practitionerrole_id")
    )


def _rpps_condition(value: str, prefix: str = "") -> Q:
    parsed = token(value)
    if parsed.system not in (None, "", IDNPS_SYSTEM, "https://rpps.esante.gouv.fr"):
        return Q(pk__in=[])
    return Q(**{f"{prefix}rpps": resources.rpps_from_token(parsed.code)})


def _finess_condition(value: str, field_name: str = "finess") -> Q:
    parsed = token(value)
    if parsed.system not in (None, "", IDNST_SYSTEM):
        return Q(pk__in=[])
    return Q(**{field_name: resources.finess_from_token(parsed.code)})


def _specialty_condition(value: str, prefix: str) -> Q:
    parsed = token(value)
    if parsed.system == resources.TRE_R38:
        return Q(**{f"{prefix}ordinal_code": parsed.code})
    if parsed.system in (None, ""):
        return Q(**{f"{prefix}code": parsed.code}) | Q(**{f"{prefix}ordinal_code": parsed.code})
    if parsed.system == resources.specialty_system():
        return Q(**{f"{prefix}code": parsed.code})
    return Q(pk__in=[])


# ---------------------------------------------------------------------------------------------
# Dates (R4 §3.1.1.4.2: prefixes eq, ne, gt, lt, ge, le, sa, eb, ap; we take the first six
# but ne, on an instant)

MAX_VALUES = 100
_PREFIXES = {"ge": "gte", "gt": "gt", "le": "lte", "lt": "lt", "eq": "exact"}


def _date_bound(raw: str) -> tuple[str, datetime]:
    prefix, text = (raw[:2], raw[2:]) if raw[:2].isalpha() else ("eq", raw)
    if prefix not in _PREFIXES:
        raise bad_request(
            "invalid_date",
            _("Date prefix %(prefix)s is not supported (ge, gt, le, lt, eq).") % {"prefix": prefix},
        )
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is not None and moment.tzinfo is None:
        # A date or a time without a zone is Paris time, where the hospital's agendas are.
        moment = moment.replace(tzinfo=timezone.get_default_timezone())
    if moment is None or not instant_in_range(moment):
        raise bad_request(
            "invalid_date",
            _("%(value)s is not a FHIR date-time (2026-12-01T09:00:00+01:00).")
            % {"value": text[:40]},
        )
    return _PREFIXES[prefix], moment


# ---------------------------------------------------------------------------------------------
# The searches, one per resource type: a queryset of what the channel may see


def organisations(scope: ChannelScope, params: Params) -> QuerySet[Organisation]:
    found = Organisation.objects.filter(
        pk__in=scope.establishments().values("organisation_id")
    ).order_by("name", "pk")
    found = _apply(found, params, "_id", _by_id)
    found = _apply(found, params, "identifier", lambda v: _finess_condition(v, "finess_ej"))
    return _apply(found, params, "name", lambda v: Q(name__icontains=v))


def locations(scope: ChannelScope, params: Params) -> QuerySet[Establishment]:
    found = scope.establishments().select_related("organisation").order_by("name", "pk")
    found = _apply(found, params, "_id", _by_id)
    found = _apply(found, params, "identifier", _finess_condition)
    found = _apply(found, params, "name", lambda v: Q(name__icontains=v))
    found = _apply(found, params, "address-city", lambda v: Q(city__iexact=v))
    found = _apply(found, params, "address-postalcode", lambda v: Q(postcode__startswith=v))
    return _apply(found, params, "organization", _refers("organisation", "Organization"))


def departments(scope: ChannelScope, params: Params) -> QuerySet[Department]:
    found = (
        Department.objects.filter(pk__in=scope.practitioner_roles().values("department_id"))
        .select_related("establishment__organisation")
        .order_by("establishment__name", "name", "pk")
    )
    found = _apply(found, params, "_id", _by_id)
    found = _apply(found, params, "name", lambda v: Q(name__icontains=v))
    found = _apply(found, params, "location", _refers("establishment", "Location"))
    return _apply(
        found, params, "organization", _refers("establishment__organisation", "Organization")
    )


def practitioners(scope: ChannelScope, params: Params) -> QuerySet[Practitioner]:
    found = Practitioner.objects.filter(
        pk__in=scope.practitioner_roles().values("practitioner_id")
    ).order_by("last_name", "first_name", "pk")
    found = _apply(found, params, "_id", _by_id)
    found = _apply(found, params, "identifier", _rpps_condition)
    found = _apply(found, params, "family", lambda v: Q(last_name__iexact=v))
    return _apply(
        found,
        params,
        "name",
        lambda v: Q(last_name__icontains=v) | Q(first_name__icontains=v),
    )


def _roles(found: QuerySet[PractitionerRole]) -> QuerySet[PractitionerRole]:
    return found.select_related(
        "practitioner", "establishment__organisation", "department"
    ).prefetch_related("specialties")


def roles(scope: ChannelScope, params: Params) -> QuerySet[PractitionerRole]:
    found = _roles(scope.practitioner_roles()).order_by("pk")
    found = _apply(found, params, "_id", _by_id)
    found = _apply(found, params, "practitioner", _refers("practitioner", "Practitioner"))
    found = _apply(
        found, params, "practitioner.identifier", lambda v: _rpps_condition(v, "practitioner__")
    )
    found = _apply(found, params, "location", _refers("establishment", "Location"))
    found = _apply(
        found, params, "organization", _refers("establishment__organisation", "Organization")
    )
    found = _apply(found, params, "service", _refers("department", "HealthcareService"))
    found = _apply(found, params, "specialty", _role_specialty)
    return found.distinct() if params.query.get("specialty") else found


def _actor_condition(value: str, prefix: str) -> Q:
    """``Practitioner/ID`` or ``PractitionerRole/ID``: a schedule's actor by reference."""
    value = value.strip().rstrip("/")
    parts = value.split("/")
    if len(parts) >= 2 and parts[-2] == "Practitioner":
        return Q(**{f"{prefix}practitioner__public_id": parts[-1]})
    if len(parts) >= 2 and parts[-2] == "PractitionerRole":
        return Q(**{f"{prefix}public_id": parts[-1]})
    raise bad_request(
        "invalid_reference",
        _("%(value)s is not a reference to a Practitioner or a PractitionerRole.")
        % {"value": value[:80]},
    )


def _schedule_filters(found: QuerySet, params: Params, prefix: str, names: str) -> QuerySet:
    """The chained actor parameters of Schedule (``names`` = "actor") and of Slot
    (``names`` = "schedule.actor"); ``prefix`` leads from the searched model to the role."""
    found = _apply(found, params, names, lambda v: _actor_condition(v, prefix))
    for chained in (f"{names}:Practitioner.identifier", f"{names}.identifier"):
        found = _apply(
            found, params, chained, lambda v: _rpps_condition(v, f"{prefix}practitioner__")
        )
    return found


def schedules(scope: ChannelScope, params: Params) -> QuerySet[PractitionerRole]:
    found = roles(scope, Params(QueryDict(), params.supported))
    found = _apply(found, params, "_id", _by_id)
    found = _schedule_filters(found, params, "", "actor")
    if params.query.get("specialty"):
        found = _apply(found, params, "specialty", _role_specialty)
    return found


def slots(scope: ChannelScope, params: Params, now: datetime | None = None) -> QuerySet[Slot]:
    now = now or timezone.now()
    found = offerable_slots(scope, now).filter(starts_at__gte=now)
    found = _apply(found, params, "_id", _by_id)
    for values in params.each("start"):
        condition = Q(pk__in=[])
        for value in values:
            lookup, moment = _date_bound(value)
            condition |= Q(**{f"starts_at__{lookup}": moment})
        found = found.filter(condition)
    latest = now + timedelta(days=LONGEST_PERIOD_DAYS)
    found = found.filter(starts_at__lt=latest)
    for values in params.each("status"):
        if "free" not in values:
            # Only free slots are published: busy time is nobody else's business.
            found = found.none()
    found = _apply(found, params, "schedule", _refers("practitioner_role", "Schedule"))
    found = _schedule_filters(found, params, "practitioner_role__", "schedule.actor")
    found = _apply(found, params, "specialty", lambda v: _specialty_condition(v, "specialty__"))
    found = _apply(found, params, "service-type", _service_type_condition)
    return found.select_related(
        "practitioner",
        "establishment__organisation",
        "visit_type",
        "specialty",
        "practitioner_role__department",
        "practitioner_role__practitioner",
        "practitioner_role__establishment__organisation",
    ).order_by("starts_at", "public_id")


def _service_type_condition(value: str) -> Q:
    parsed = token(value)
    if parsed.system not in (None, "", resources.visit_type_system()):
        return Q(pk__in=[])
    return Q(visit_type__code=parsed.code)


# ---------------------------------------------------------------------------------------------
# Each type: its search, its builder, its parameters


@dataclass(frozen=True)
class Kind:
    search: object
    build: object
    parameters: frozenset[str]
    model: type[Model]


KINDS: dict[str, Kind] = {
    "Organization": Kind(
        organisations,
        resources.organization,
        frozenset({"_id", "identifier", "name"}),
        Organisation,
    ),
    "Location": Kind(
        locations,
        resources.location,
        frozenset(
            {"_id", "identifier", "name", "address-city", "address-postalcode", "organization"}
        ),
        Establishment,
    ),
    "HealthcareService": Kind(
        departments,
        resources.healthcare_service,
        frozenset({"_id", "name", "location", "organization"}),
        Department,
    ),
    "Practitioner": Kind(
        practitioners,
        resources.practitioner_resource,
        frozenset({"_id", "identifier", "name", "family"}),
        Practitioner,
    ),
    "PractitionerRole": Kind(
        roles,
        resources.practitioner_role,
        frozenset(
            {
                "_id",
                "practitioner",
                "practitioner.identifier",
                "location",
                "organization",
                "service",
                "specialty",
            }
        ),
        PractitionerRole,
    ),
    "Schedule": Kind(
        schedules,
        resources.schedule,
        frozenset(
            {"_id", "actor", "actor:Practitioner.identifier", "actor.identifier", "specialty"}
        ),
        PractitionerRole,
    ),
    "Slot": Kind(
        slots,
        resources.slot,
        frozenset(
            {
                "_id",
                "start",
                "status",
                "schedule",
                "schedule.actor",
                "schedule.actor:Practitioner.identifier",
                "schedule.actor.identifier",
                "specialty",
                "service-type",
            }
        ),
        Slot,
    ),
}


# ---------------------------------------------------------------------------------------------
# _include: (source type, target type, how to reach the targets from the sources)


def _slot_schedules(found: list) -> list:
    reached = list({slot.practitioner_role_id: slot.practitioner_role for slot in found}.values())
    prefetch_related_objects(reached, "specialties")
    return reached


def _schedule_actors(found: list) -> list:
    return [role.practitioner for role in found] + list(found)


INCLUDES = {
    "Slot:schedule": ("Slot", "Schedule", _slot_schedules),
    "Schedule:actor": ("Schedule", None, _schedule_actors),
    "PractitionerRole:practitioner": (
        "PractitionerRole",
        "Practitioner",
        lambda found: [role.practitioner for role in found],
    ),
    "PractitionerRole:location": (
        "PractitionerRole",
        "Location",
        lambda found: [role.establishment for role in found],
    ),
    "PractitionerRole:organization": (
        "PractitionerRole",
        "Organization",
        lambda found: [role.establishment.organisation for role in found],
    ),
    "PractitionerRole:service": (
        "PractitionerRole",
        "HealthcareService",
        lambda found: [role.department for role in found if role.department_id],
    ),
    "Location:organization": (
        "Location",
        "Organization",
        lambda found: [place.organisation for place in found],
    ),
    "HealthcareService:location": (
        "HealthcareService",
        "Location",
        lambda found: [department.establishment for department in found],
    ),
}


def type_of(obj: Model, default: str) -> str:
    """The FHIR type of an included object (a role is a PractitionerRole when reached as a
    Schedule's actor, a Schedule when reached from a Slot)."""
    return {
        Practitioner: "Practitioner",
        Establishment: "Location",
        Organisation: "Organization",
        Department: "HealthcareService",
    }.get(type(obj), default)


def included(
    kind: str, matches: list, direct: set[str], iterate: set[str]
) -> list[tuple[str, Model]]:
    """What the _include and _include:iterate parameters add to the matches, each once, in
    the order reached."""
    seen: set[tuple[str, str]] = set()
    out: list[tuple[str, Model]] = []
    frontier = [(kind, obj) for obj in matches]
    first = True
    while frontier:
        wanted = direct | iterate if first else iterate
        reached: list[tuple[str, Model]] = []
        for name in sorted(wanted):
            source, target, follow = INCLUDES[name]
            sources = [obj for obj_kind, obj in frontier if obj_kind == source]
            if not sources:
                continue
            for obj in follow(sources):
                obj_kind = target or type_of(obj, "PractitionerRole")
                key = (obj_kind, obj.public_id)
                if key not in seen and (obj_kind, obj) not in reached:
                    seen.add(key)
                    reached.append((obj_kind, obj))
        out.extend(reached)
        frontier = reached
        first = False
    return out
