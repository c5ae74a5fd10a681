"""What a signed-in staff member may see: the union of their accesses. Every staff view asks
this object for the practitioner roles, departments and establishments it shows, by id, and
gets a 404 for anything outside it: a secretary of one department cannot tell another's from a
wrong address."""

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.http import Http404

from creneau.booking.models import Appointment
from creneau.directory.models import Department, Establishment, PractitionerRole
from creneau.staff.models import StaffAccess

DESK_ROLES = frozenset(
    {
        StaffAccess.Role.ORGANISATION_ADMIN,
        StaffAccess.Role.ESTABLISHMENT_ADMIN,
        StaffAccess.Role.SECRETARY,
    }
)


@dataclass(frozen=True)
class StaffScope:
    user_id: int
    accesses: tuple[StaffAccess, ...]

    @classmethod
    def of(cls, user) -> "StaffScope | None":
        """The member's scope, or None when they hold no access (not a staff member)."""
        if not user.is_authenticated:
            return None
        accesses = tuple(
            StaffAccess.objects.filter(user=user).select_related(
                "organisation", "establishment", "department", "practitioner"
            )
        )
        return cls(user.pk, accesses) if accesses else None

    @property
    def roles_held(self) -> set[str]:
        return {access.role for access in self.accesses}

    @property
    def sees_patients(self) -> bool:
        """Everyone but an auditor (ledger, reports and the access log; no patient data)."""
        return bool(self.roles_held - {StaffAccess.Role.AUDITOR})

    @property
    def books(self) -> bool:
        """Secretaries and administrators book, move and cancel for patients; a practitioner
        sees their agenda, blocks time and records absences; an auditor sees no patient."""
        return bool(self.roles_held & DESK_ROLES)

    @property
    def audited_organisations(self) -> list[int]:
        """The organisations whose access log this member reads: an auditor's or an
        organisation administrator's."""
        readers = {StaffAccess.Role.AUDITOR, StaffAccess.Role.ORGANISATION_ADMIN}
        return sorted({a.organisation_id for a in self.accesses if a.role in readers})

    def _role_condition(self, roles: frozenset[str] | None = None) -> Q:
        condition = Q(pk__in=[])
        for access in self.accesses:
            if roles is not None and access.role not in roles:
                continue
            if access.role == StaffAccess.Role.ORGANISATION_ADMIN:
                condition |= Q(establishment__organisation_id=access.organisation_id)
            elif access.role == StaffAccess.Role.ESTABLISHMENT_ADMIN:
                condition |= Q(establishment_id=access.establishment_id)
            elif access.role == StaffAccess.Role.SECRETARY:
                condition |= Q(department_id=access.department_id)
            elif access.role == StaffAccess.Role.PRACTITIONER:
                condition |= Q(
                    practitioner_id=access.practitioner_id,
                    establishment__organisation_id=access.organisation_id,
                )
        return condition

    def practitioner_roles(self) -> QuerySet[PractitionerRole]:
        if not self.sees_patients:
            return PractitionerRole.objects.none()
        return PractitionerRole.objects.filter(self._role_condition(), is_active=True)

    def desk_roles(self) -> QuerySet[PractitionerRole]:
        """The practitioner roles this member may book, move and cancel for."""
        return PractitionerRole.objects.filter(self._role_condition(DESK_ROLES), is_active=True)

    def departments(self) -> QuerySet[Department]:
        roles = self.practitioner_roles().exclude(department=None).values("department_id")
        return Department.objects.filter(pk__in=roles).select_related("establishment")

    def establishments(self) -> QuerySet[Establishment]:
        roles = self.practitioner_roles().values("establishment_id")
        return Establishment.objects.filter(pk__in=roles)

    def role_or_404(self, public_id: str, *, desk: bool = False) -> PractitionerRole:
        found = (
            (self.desk_roles() if desk else self.practitioner_roles())
            .select_related("practitioner", "establishment", "department")
            .filter(public_id=public_id)
            .first()
        )
        if found is None:
            raise Http404("no such practitioner role here")
        return found

    def appointment_or_404(self, public_id: str, *, desk: bool = False) -> Appointment:
        """An appointment of a practitioner role in the scope (for the desk's actions, of a
        role the member books for)."""
        roles = self.desk_roles() if desk else self.practitioner_roles()
        found = (
            Appointment.objects.filter(
                public_id=public_id, practitioner_role_id__in=roles.values("pk")
            )
            .select_related(
                "practitioner_role__practitioner",
                "practitioner_role__establishment",
                "practitioner_role__department",
                "visit_type",
                "slot",
                "channel",
                "agent",
                "operator",
                "establishment",
                "practitioner",
            )
            .first()
        )
        if found is None:
            raise Http404("no such appointment here")
        return found

    def covers(self, practitioner_id: int) -> bool:
        """Every active agenda of the practitioner is in the scope: their leave, over all
        their agendas, is this member's to set."""
        roles = PractitionerRole.objects.filter(practitioner_id=practitioner_id, is_active=True)
        return (
            self.sees_patients
            and not roles.exclude(pk__in=self.practitioner_roles().values("pk")).exists()
        )

    def department_or_404(self, pk: int) -> Department:
        found = self.departments().filter(pk=pk).first()
        if found is None:
            raise Http404("no such department here")
        return found

    def establishment_or_404(self, public_id: str) -> Establishment:
        found = self.establishments().filter(public_id=public_id).first()
        if found is None:
            raise Http404("no such establishment here")
        return found
