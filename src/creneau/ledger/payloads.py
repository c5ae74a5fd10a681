"""What the ledger records of each thing, by its public identifiers only (FINESS, RPPS, opaque
ids): never a database key, never a patient's name, phone or birth date."""


def perimeter_version(version) -> dict:
    """A perimeter version in full: its establishments, and what narrows them (departments,
    practitioner roles), as the verifier needs them to place an offer or a booking."""
    return {
        "perimeter": version.perimeter.public_id,
        "version": version.public_id,
        "number": version.number,
        "establishments": sorted(version.establishments.values_list("finess", flat=True)),
        "departments": sorted(
            f"{finess}/{code}"
            for finess, code in version.departments.values_list("establishment__finess", "code")
        )
        if version.narrowed_to_departments
        else [],
        "roles": sorted(
            f"{finess}/{rpps}"
            for finess, rpps in version.practitioner_roles.values_list(
                "establishment__finess", "practitioner__rpps"
            )
        )
        if version.narrowed_to_roles
        else [],
    }


def place(slot_or_appointment) -> dict:
    """Where and with whom: the establishment's FINESS, the department's code if any, the
    practitioner's RPPS."""
    role = slot_or_appointment.practitioner_role
    return {
        "finess": slot_or_appointment.establishment.finess,
        "department": role.department.code if role.department_id else "",
        "rpps": slot_or_appointment.practitioner.rpps,
    }
