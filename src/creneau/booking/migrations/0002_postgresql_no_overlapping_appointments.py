"""Invariant 1 on PostgreSQL: one practitioner's active appointments never overlap, except the
places of one group-session slot, which share their time by design. SQLite has no exclusion
constraints: there the booking service checks the overlap inside its BEGIN IMMEDIATE
transaction, which no other writer can interleave with."""

from django.db import migrations

ACTIVE = "('booked', 'arrived', 'no_show', 'done')"

CREATE = f"""
CREATE EXTENSION IF NOT EXISTS btree_gist;
ALTER TABLE booking_appointment ADD CONSTRAINT booking_appointment_no_overlap
    EXCLUDE USING gist (
        practitioner_id WITH =,
        (coalesce(slot_id, -id)) WITH <>,
        tstzrange(starts_at, ends_at, '[)') WITH &&
    ) WHERE (status IN {ACTIVE});
"""

DROP = "ALTER TABLE booking_appointment DROP CONSTRAINT IF EXISTS booking_appointment_no_overlap;"


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("booking", "0001_booking_holds_appointments_waiting_list")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
