"""A patient's personal data: exported with who looked at it, erased on request (not while an
appointment is to come), and purged a set time after the appointment, leaving the anonymous
records the statistics count."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from creneau.agenda.models import Slot
from creneau.booking.models import Appointment
from creneau.booking.queries import access_appointment
from creneau.booking.services import appointment_book, appointment_cancel
from creneau.errors import DomainError
from creneau.staff.models import PatientDataView
from creneau.staff.privacy import patient_data_purge
from tests.staff.conftest import member

pytestmark = pytest.mark.django_db

WHO = ["--last-name", "MARTÍN", "--birth-date", "1980-05-17", "--phone", "06 12 34 56 78"]


@pytest.fixture
def two_visits(places, open_agenda, public_scope, patient, other_patient):
    role = places["role"]
    open_agenda(role)
    slots = Slot.objects.filter(
        practitioner_role=role, starts_at__gte=timezone.now() + timedelta(days=2)
    ).order_by("starts_at")
    mine = [appointment_book(scope=public_scope, patient=patient, slot=s) for s in slots[:2]]
    appointment_book(scope=public_scope, patient=other_patient, slot=slots[3])
    return mine


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("patient", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_export_holds_the_patients_records_and_who_looked_at_them(
    client, aphp, places, two_visits, tmp_path
):
    secretary = member("secretary", aphp, places)
    client.force_login(secretary)
    client.get(f"/staff/appointments/{two_visits[0].appointment.public_id}/")

    document = json.loads(run("export", *WHO))

    assert document["patient"]["first_name"] == "Camille"
    assert [a["id"] for a in document["appointments"]] == [
        b.appointment.public_id for b in two_visits
    ]
    assert document["appointments"][0]["events"][0]["action"] == "booked"
    assert {m["kind"] for m in document["appointments"][0]["messages"]} >= {"confirmation"}
    assert [(v["who"], v["what"]) for v in document["views"]] == [
        (secretary.get_username(), f"appointment {two_visits[0].appointment.public_id}")
    ]
    assert "Nguyen" not in json.dumps(document)  # another patient's records stay out
    # The export is itself in the access log.
    assert PatientDataView.objects.filter(kind="export", shown=2).exists()
    run("export", *WHO, "--output", str(tmp_path / "martin.json"))
    assert json.loads((tmp_path / "martin.json").read_text())["patient"]["phone"] == "+33612345678"


def test_erasure_waits_for_the_coming_appointments_then_leaves_no_identity(
    places, two_visits, clock
):
    with pytest.raises(CommandError) as refused:
        run("erase", *WHO, "--yes")
    for booked in two_visits:  # named, to be cancelled first
        assert booked.appointment.public_id in str(refused.value)
    assert "Would erase the identity from 2 appointment(s)" in run("erase", *WHO)
    for booked in two_visits:
        appointment_cancel(appointment=booked.appointment, reason="")

    assert "Identity erased from 2 record(s)." in run("erase", *WHO, "--yes")

    for booked in two_visits:
        erased = Appointment.objects.get(pk=booked.appointment.pk)
        identity = (erased.patient_last_name, erased.patient_phone, erased.patient_email)
        assert identity == ("", "", "")
        assert erased.patient_birth_date.isoformat() == "1980-01-01"  # the year, for statistics
        assert erased.identity_erased_at is not None and erased.status == "cancelled_patient"
        with pytest.raises(DomainError):  # the patient's link is dead
            access_appointment(public_id=erased.public_id, token=booked.manage_token)
    # The other patient is untouched; a second erasure finds nothing.
    assert Appointment.objects.filter(patient_last_name="Nguyen").exists()
    assert "Identity erased from 0 record(s)." in run("erase", *WHO, "--yes")


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [("--birth-date", "17/05/1980", "--birth-date"), ("--phone", "12", "--phone")],
)
def test_a_wrong_detail_is_named(option, value, named):
    args = list(WHO)
    args[args.index(option) + 1] = value
    with pytest.raises(CommandError, match=named):
        run("export", *args)


def test_identities_are_purged_a_set_time_after_the_appointment(places, two_visits, clock):
    first, second = (b.appointment for b in two_visits)
    # A year and a minute after the first appointment ended: it is purged, the later one not.
    later = first.ends_at + timedelta(days=365, minutes=1)
    assert second.ends_at > first.ends_at + timedelta(minutes=1)

    purged = patient_data_purge(now=later, days=365)

    assert purged == 1
    first.refresh_from_db()
    assert first.patient_last_name == "" and first.status == "booked"  # counted, anonymous
    assert Appointment.objects.get(pk=second.pk).patient_last_name == "Martin"
    assert patient_data_purge(now=later, days=365) == 0  # nothing twice
