"""The demo's staff accounts, one per role: a secretary of the Pitié-Salpêtrière's
neurosurgery department, a practitioner of that department, the Pitié's establishment
administrator, and an auditor of the network. Fresh second factors at each start, the
passwords kept from the previous run's credentials."""

import secrets

from django.contrib.auth import get_user_model
from django.db import transaction

from creneau.directory.models import Organisation, PractitionerRole
from creneau.second_factor import second_factor_issue
from creneau.staff.models import StaffAccess

PITIE = "Hôpital de la Pitié-Salpêtrière"


@transaction.atomic
def demo_staff_ensure(*, organisation: Organisation, previous: list[dict]) -> list[dict]:
    role = (
        PractitionerRole.objects.filter(
            establishment__name=PITIE,
            establishment__organisation=organisation,
            specialties__code="neurosurgery",
            department__isnull=False,
        )
        .select_related("establishment", "department", "practitioner")
        .order_by("pk")
        .first()
    )
    if role is None:
        return []
    kept = {entry["username"]: entry for entry in previous}
    accounts = [
        ("secretaire.neurochirurgie", "secretary", {"department": role.department}),
        ("praticien.neurochirurgie", "practitioner", {"practitioner": role.practitioner}),
        ("admin.pitie", "est_admin", {"establishment": role.establishment}),
        ("auditeur", "auditor", {}),
    ]
    written = []
    users = get_user_model().objects
    for username, kind, scope in accounts:
        password = kept.get(username, {}).get("password") or secrets.token_urlsafe(12)
        user = users.filter(username=username).first()
        if user is None:
            user = users.create_user(username, f"{username}@demo.creneau.example", password)
        else:
            user.set_password(password)
            user.save(update_fields=["password"])
        StaffAccess.objects.get_or_create(user=user, role=kind, organisation=organisation, **scope)
        factor = second_factor_issue(user=user)
        scope_names = {
            name: getattr(value, "display_name", None) or value.name
            for name, value in scope.items()
        }
        if "department" in scope:
            scope_names["establishment"] = role.establishment.name
        written.append(
            {
                "role": kind,
                "username": username,
                "password": password,
                "backup_codes": factor.backup_codes,
                "otp_secret": factor.otp_secret,
                "scope": scope_names or {"organisation": organisation.name},
                "url": "/staff/",
            }
        )
    return written
