"""Slots read as plain rows for the publishing interfaces, which answer with thousands of them:
a model instance per slot and per joined row (practitioner, establishment, visit type...) cost
ten times the query itself. The few roles, visit types and specialties the rows name are read
once each; a ``SlotRow`` offers the attributes the builders and the ledger read of a slot."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from creneau.agenda.models import Slot
from creneau.directory.models import (
    Establishment,
    Practitioner,
    PractitionerRole,
    Specialty,
    VisitType,
)


@dataclass(frozen=True, slots=True)
class SlotRow:
    public_id: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    booked: int
    visit_type_id: int
    practitioner_role: PractitionerRole
    visit_type: VisitType
    specialty: Specialty

    @property
    def practitioner(self) -> Practitioner:
        return self.practitioner_role.practitioner

    @property
    def establishment(self) -> Establishment:
        return self.practitioner_role.establishment


_COLUMNS = (
    "public_id",
    "starts_at",
    "ends_at",
    "capacity",
    "booked",
    "visit_type_id",
    "specialty_id",
    "practitioner_role_id",
)


def slot_rows(found: QuerySet[Slot]) -> list[SlotRow]:
    rows = list(found.values_list(*_COLUMNS))
    role_ids = {row[7] for row in rows}
    roles = {
        role.pk: role
        for role in PractitionerRole.objects.filter(pk__in=role_ids).select_related(
            "practitioner", "establishment__organisation", "department"
        )
    }
    visits = {v.pk: v for v in VisitType.objects.filter(pk__in={row[5] for row in rows})}
    specialties = {s.pk: s for s in Specialty.objects.filter(pk__in={row[6] for row in rows})}
    return [
        SlotRow(
            public_id=public_id,
            starts_at=starts_at,
            ends_at=ends_at,
            capacity=capacity,
            booked=booked,
            visit_type_id=visit_type_id,
            practitioner_role=roles[role_id],
            visit_type=visits[visit_type_id],
            specialty=specialties[specialty_id],
        )
        for (
            public_id,
            starts_at,
            ends_at,
            capacity,
            booked,
            visit_type_id,
            specialty_id,
            role_id,
        ) in rows
    ]
