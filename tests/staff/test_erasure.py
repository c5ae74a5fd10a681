"""An erasure leaves the patient's identity nowhere (issue 27, point 5): not in any column of
any table (a partner's patient identifier and the answers kept for an Idempotency-Key
included), on SQLite and PostgreSQL; and, on SQLite, not in the database's files either."""

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from django.db import connection

from creneau.booking.patients import CallerCriteria
from creneau.staff.privacy import patient_data_erase, patient_data_export
from tests.cli import demo_copied, hub_env, suite_engine
from tests.fhir.conftest import FHIR, bearer, partner  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db

# What only this patient's records hold.
MARKERS = ["Zqxwvmarker", "Ykfirstmarker", "INS-778899-MARKER", "reason-qpzmarker"]
PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": MARKERS[2]}],
    "name": [{"family": MARKERS[0], "given": [MARKERS[1]]}],
    "birthDate": "1961-02-03",
    "telecom": [{"system": "phone", "value": "+33612980476"}],
}


def columns_holding(marker: str) -> list[str]:
    """Every table and column, whatever its type, read as text."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            for column in connection.introspection.get_table_description(cursor, table):
                name = connection.ops.quote_name(column.name)
                cursor.execute(
                    f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)} "
                    f"WHERE CAST({name} AS TEXT) LIKE %s",
                    [f"%{marker}%"],
                )
                if cursor.fetchone()[0]:
                    found.append(f"{table}.{column.name}")
    return found


def test_an_erased_patient_is_in_no_column_of_any_table(
    client,
    partner,  # noqa: F811
    pitie_neurosurgeon,
    open_agenda,
    clock,
):
    from tests.fhir.test_ihe import parameters

    open_agenda(pitie_neurosurgeon)
    fhir = bearer(client, partner)
    found = client.post(
        "/fhir/Appointment/$find",
        json.dumps(parameters(start="2027-03-16", end="2027-04-30", specialty="neurosurgery")),
        content_type=FHIR,
        headers=fhir.headers,
    ).json()
    proposed = found["entry"][0]["resource"]
    booked = client.post(
        "/fhir/Appointment/$book",
        json.dumps(parameters(appointment_resource=proposed, patient_resource=PATIENT)),
        content_type=FHIR,
        headers={**fhir.headers, "Idempotency-Key": "book-marker-1"},
    )
    assert booked.status_code in (200, 201), booked.content[:500]
    appointment = booked.json()
    appointment = appointment.get("entry", [{"resource": appointment}])[0]["resource"]
    cancelled = client.post(
        "/fhir/Appointment/$book",
        json.dumps(parameters(appointment_resource={**appointment, "status": "cancelled"})),
        content_type=FHIR,
        headers=fhir.headers,
    )
    assert cancelled.status_code == 200, cancelled.content[:500]
    assert columns_holding(MARKERS[0]) and columns_holding(MARKERS[2])  # they were there
    criteria = CallerCriteria(
        last_name=MARKERS[0], birth_date=date(1961, 2, 3), phone="+33612980476"
    )
    assert patient_data_export(criteria=criteria)["appointments"][0]["partner_patient_id"] == (
        f"urn:oid:1.2.250.1.213.1.4.8|{MARKERS[2]}"
    )

    assert patient_data_erase(criteria=criteria) == 1

    for marker in MARKERS[:3]:
        assert columns_holding(marker) == [], marker


SCRIPT = """
import datetime, django
django.setup()
from django.utils import timezone
from creneau.agenda.models import Slot
from creneau.booking.patients import CallerCriteria, patient_details_clean
from creneau.booking.services import appointment_book, appointment_cancel
from creneau.channels.queries import channel_scope_for_key
from creneau.staff.privacy import patient_data_erase
scope = channel_scope_for_key(None)
slot = Slot.objects.filter(starts_at__gte=timezone.now() + datetime.timedelta(days=3),
    booked=0, held=0, overlaps=0).order_by("starts_at").first()
patient = patient_details_clean(last_name="%(last)s", first_name="%(first)s",
    birth_date=datetime.date(1961, 2, 3), phone="06 12 98 04 76", email="")
booked = appointment_book(scope=scope, patient=patient, slot=slot, reason="%(reason)s",
    partner_patient_id="urn:oid:1.2.250.1.213.1.4.8|%(ins)s")
appointment_cancel(appointment=booked.appointment, by_staff=True, reason="x")
print(patient_data_erase(criteria=CallerCriteria(last_name="%(last)s",
    birth_date=datetime.date(1961, 2, 3), phone=patient.phone)))
"""


@pytest.fixture
def demo_database(tmp_path):
    if suite_engine() != "sqlite":
        pytest.skip("SQLite's files are read in the SQLite half of the suite")
    demo_copied(tmp_path, {"CRENEAU_HORIZON_WEEKS": "2"})
    return tmp_path


def test_an_erased_patient_is_in_no_byte_of_the_sqlite_files(demo_database):
    """The hub's own SQLite file and its write-ahead log, read byte by byte after an erasure."""
    env = hub_env(demo_database, CRENEAU_HORIZON_WEEKS="2")
    script = SCRIPT % {
        "last": MARKERS[0],
        "first": MARKERS[1],
        "ins": MARKERS[2],
        "reason": MARKERS[3],
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "DJANGO_SETTINGS_MODULE": "creneau.settings"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout.strip() == "1", done.stderr[-2000:]
    files = [p for p in Path(demo_database).glob("creneau.sqlite3*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        for marker in MARKERS:
            assert marker.encode() not in data, (path.name, marker)
