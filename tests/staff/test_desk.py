"""The hospital's desk: staff book for a caller, move and cancel with the patient told, and
block time, listing the appointments inside and moving them. Every action goes through the
desk channel of the department and records the staff member; anyone outside the scope, a
practitioner or an auditor gets a 404."""

from datetime import date, time, timedelta

import pytest
from django.utils import timezone

from creneau.agenda.models import Absence, Slot
from creneau.booking.models import PARIS, Appointment, AppointmentEvent
from creneau.booking.services import appointment_book
from creneau.channels.models import Channel, Desk
from creneau.notify.models import Message
from creneau.notify.texts import render
from creneau.staff.models import PatientDataView
from tests.staff.conftest import member

pytestmark = pytest.mark.django_db

CALLER = {
    "last_name": "Lefèvre",
    "first_name": "Anne",
    "birth_date": "1975-02-11",
    "phone": "06 22 33 44 55",
    "email": "",
}


def free_slots(role, days_ahead=2):
    return Slot.objects.filter(
        practitioner_role=role,
        visit_type__code="neurosurgery-first",
        starts_at__gte=timezone.now() + timedelta(days=days_ahead),
        booked=0,
    ).order_by("starts_at")


def day_of(moment) -> str:
    return timezone.localtime(moment, PARIS).date().isoformat()


def test_a_secretary_books_a_caller_at_the_desk_recorded_as_theirs(
    client, aphp, places, open_agenda
):
    role = places["role"]
    open_agenda(role)
    slot = free_slots(role).first()
    secretary = member("secretary", aphp, places)
    client.force_login(secretary)

    agenda = client.get(
        f"/staff/agenda/practitioner/{role.public_id}/", {"day": day_of(slot.starts_at)}
    ).content.decode()
    assert f"/staff/book/?slot={slot.public_id}" in agenda
    form = client.get("/staff/book/", {"slot": slot.public_id})
    assert form.status_code == 200 and "Confirmer la réservation" in form.content.decode()
    # A wrong phone number: the form comes back with the error and the details typed.
    refused = client.post("/staff/book/", {**CALLER, "phone": "12", "slot": slot.public_id})
    assert refused.status_code == 422 and "Lefèvre" in refused.content.decode()
    assert not Appointment.objects.filter(slot=slot).exists()

    answer = client.post("/staff/book/", {**CALLER, "slot": slot.public_id})

    booked = Appointment.objects.get(slot=slot)
    assert answer.status_code == 302
    assert answer["Location"] == f"/staff/appointments/{booked.public_id}/?done=booked"
    assert booked.channel.kind == Channel.Kind.DESK and booked.agent == secretary
    desk = Desk.objects.get(channel=booked.channel)
    assert desk.department_id == role.department_id
    event = AppointmentEvent.objects.get(appointment=booked, action="booked")
    assert event.by == secretary and event.channel == booked.channel
    assert Message.objects.filter(appointment=booked, kind="confirmation").exists()
    page = client.get(answer["Location"]).content.decode()
    assert "Réservé." in page and "Un SMS est envoyé au 06 22 33 44 55." in page
    assert secretary.get_username() in page
    # Opening the appointment is in the access log.
    assert PatientDataView.objects.filter(
        user=secretary, kind="appointment", appointments=booked
    ).exists()
    # The agenda says who booked, through which desk.
    agenda = client.get(
        f"/staff/agenda/practitioner/{role.public_id}/", {"day": day_of(slot.starts_at)}
    ).content.decode()
    assert booked.channel.name in agenda and f"({secretary.get_username()})" in agenda


def test_the_desk_books_a_landline_and_a_person_without_a_phone_and_prints_the_slip(
    client, aphp, places, open_agenda
):
    """Issue 28, point 1: the desk takes the number the caller gives (a landline here), or none
    with a reason; nothing is texted, the page says so, and the slip carries the manage link
    as a QR code, its printing in the access log."""
    role = places["role"]
    open_agenda(role)
    first, second = free_slots(role)[:2]
    secretary = member("secretary", aphp, places)
    client.force_login(secretary)

    answer = client.post(
        "/staff/book/", {**CALLER, "phone": "01 40 05 48 48", "slot": first.public_id}
    )
    assert answer.status_code == 302, answer.content.decode()
    booked = Appointment.objects.get(slot=first)
    assert booked.patient_phone == "+33140054848"
    assert not Message.objects.filter(appointment=booked, medium="sms").exists()
    page = client.get(answer["Location"]).content.decode()
    assert "01 40 05 48 48" in page and "Pas de SMS\u00a0: le 01 40 05 48 48 est un fixe." in page
    assert "imprimez la fiche du rendez-vous" in page

    slip = client.get(f"/staff/appointments/{booked.public_id}/slip/")
    text = slip.content.decode()
    assert slip.status_code == 200 and "<svg" in text
    assert booked.public_id in text and booked.practitioner.display_name in text
    assert "/a/" in text and "Content-Security-Policy" in slip.headers
    assert PatientDataView.objects.filter(user=secretary, kind="slip", appointments=booked).exists()

    # No phone at all: the reason is asked for, the details typed kept.
    without = {**CALLER, "phone": "", "slot": second.public_id}
    refused = client.post("/staff/book/", without)
    assert refused.status_code == 422
    assert "Sans numéro de téléphone, dites pourquoi" in refused.content.decode()
    assert "Lefèvre" in refused.content.decode()
    answer = client.post("/staff/book/", {**without, "no_phone_reason": "Pas de téléphone"})
    assert answer.status_code == 302
    nobody = Appointment.objects.get(slot=second)
    assert (nobody.patient_phone, nobody.patient_no_phone_reason) == ("", "Pas de téléphone")
    assert (
        not Message.objects.filter(appointment=nobody)
        .exclude(medium__in=["fhir", "his", "calendar"])
        .exists()
    )
    page = client.get(answer["Location"]).content.decode()
    assert "Pas de SMS\u00a0: aucun numéro de téléphone n\u2019a été donné." in page
    assert "Pas de téléphone" in page


@pytest.mark.parametrize("who", ["secretary_b", "practitioner", "auditor"])
def test_the_desk_is_closed_outside_the_members_bookings(client, aphp, places, open_agenda, who):
    role = places["role"]
    open_agenda(role)
    slot = free_slots(role).first()
    client.force_login(member(who, aphp, places))
    assert client.get("/staff/book/", {"slot": slot.public_id}).status_code == 404
    assert client.post("/staff/book/", {**CALLER, "slot": slot.public_id}).status_code == 404
    assert not Appointment.objects.filter(slot=slot).exists()


def test_the_desk_moves_and_cancels_with_the_patient_told_and_offered_the_nearest_times(
    client, aphp, places, open_agenda, public_scope, patient
):
    role = places["role"]
    open_agenda(role)
    first, second = free_slots(role)[:2]
    booked = appointment_book(scope=public_scope, patient=patient, slot=first).appointment
    secretary = member("secretary", aphp, places)
    client.force_login(secretary)

    page = client.get(f"/staff/appointments/{booked.public_id}/").content.decode()
    assert f'value="{second.public_id}"' in page  # the nearest free time is offered

    moved = client.post(f"/staff/appointments/{booked.public_id}/move/", {"slot": second.public_id})
    assert moved.status_code == 302 and "done=moved" in moved["Location"]
    booked.refresh_from_db()
    assert booked.slot_id == second.pk
    assert AppointmentEvent.objects.get(appointment=booked, action="moved").by == secretary
    assert Message.objects.filter(appointment=booked, kind="moved").exists()

    confirm = client.get(f"/staff/appointments/{booked.public_id}/cancel/")
    assert confirm.status_code == 200 and "Confirmer l’annulation" in confirm.content.decode()  # noqa: RUF001
    no_reason = client.post(f"/staff/appointments/{booked.public_id}/cancel/", {"reason": ""})
    assert no_reason.status_code == 422
    assert Appointment.objects.get(pk=booked.pk).status == "booked"

    client.post(
        f"/staff/appointments/{booked.public_id}/cancel/", {"reason": "Bloc opératoire fermé"}
    )

    booked.refresh_from_db()
    assert booked.status == Appointment.Status.CANCELLED_BY_STAFF
    message = Message.objects.get(appointment=booked, kind="cancelled", medium="email")
    text = render(message).body
    assert "Bloc opératoire fermé" in text
    assert "Les créneaux libres les plus proches" in text
    assert timezone.localtime(first.starts_at, PARIS).strftime("%H:%M") in text


def test_blocking_a_morning_previews_closes_its_slots_and_lists_the_patients_to_move(
    client, aphp, places, open_agenda, public_scope, patient, other_patient
):
    role = places["role"]
    open_agenda(role)
    day_slots = list(free_slots(role, days_ahead=3))
    day = day_of(day_slots[0].starts_at)
    morning = [s for s in day_slots if day_of(s.starts_at) == day]
    inside = [
        appointment_book(scope=public_scope, patient=person, slot=slot).appointment
        for person, slot in ((patient, morning[0]), (other_patient, morning[2]))
    ]
    secretary = member("secretary", aphp, places)
    client.force_login(secretary)
    url = f"/staff/agenda/practitioner/{role.public_id}/block/"

    form = client.get(url, {"day": day, "part": "morning"}).content.decode()
    assert f'value="{day}T00:00"' in form and f'value="{day}T13:00"' in form
    period = {"starts_at": f"{day}T00:00", "ends_at": f"{day}T13:00", "reason": "Staff meeting"}
    preview = client.post(url, period).content.decode()
    assert "MARTIN" in preview and "NGUYEN" in preview
    assert f"{len(morning) - 2} créneaux libres ferment" in preview
    assert Slot.objects.filter(pk=morning[1].pk).exists()  # nothing changed yet
    backwards = client.post(url, {**period, "ends_at": f"{day}T00:00", "confirm": "1"})
    assert backwards.status_code == 422 and not Absence.objects.exists()

    done = client.post(url, {**period, "confirm": "1"})

    block = Absence.objects.get(practitioner_role=role)
    assert done["Location"] == f"/staff/blocked/{block.public_id}/"
    assert not Slot.objects.filter(pk=morning[1].pk).exists()  # the free slot left search
    page = client.get(done["Location"]).content.decode()
    for appointment in inside:
        assert f"/staff/appointments/{appointment.public_id}/move/" in page
    # Move each patient to the nearest time offered, outside the blocked morning.
    for appointment in inside:
        offered = client.get(done["Location"]).content.decode()
        target = offered.split(f"/staff/appointments/{appointment.public_id}/move/")[1]
        slot_id = target.split('name="slot" value="')[1].split('"')[0]
        client.post(
            f"/staff/appointments/{appointment.public_id}/move/",
            {"slot": slot_id, "next": done["Location"]},
        )
        appointment.refresh_from_db()
        assert not (block.starts_at <= appointment.starts_at < block.ends_at)
        assert Message.objects.filter(appointment=appointment, kind="moved").exists()
    assert "Plus aucun rendez-vous" in client.get(done["Location"]).content.decode()
    # Opened again, the morning's slots are back.
    client.post(f"/staff/blocked/{block.public_id}/open/")
    assert not Absence.objects.exists()
    assert Slot.objects.filter(
        practitioner_role=role, starts_at=morning[1].starts_at, booked=0
    ).exists()


def test_a_practitioner_blocks_their_own_time_but_not_anothers(client, aphp, places, open_agenda):
    """In Paris time, after the change to summer time (28 March 2027): 09:00 is 07:00 UTC."""
    role = places["role"]
    open_agenda(role)
    slot = free_slots(role).filter(starts_at__date__gte=date(2027, 3, 29)).first()
    assert timezone.localtime(slot.starts_at, PARIS).utcoffset() == timedelta(hours=2)
    client.force_login(member("practitioner", aphp, places))
    start = timezone.localtime(slot.starts_at, PARIS).strftime("%Y-%m-%dT%H:%M")
    end = timezone.localtime(slot.ends_at, PARIS).strftime("%Y-%m-%dT%H:%M")
    data = {"starts_at": start, "ends_at": end, "reason": "Consultation longue", "confirm": "1"}
    assert client.post(f"/staff/agenda/practitioner/{role.public_id}/block/", data).status_code == (
        302
    )
    assert not Slot.objects.filter(pk=slot.pk).exists()
    other = places["other_role"]
    answer = client.post(f"/staff/agenda/practitioner/{other.public_id}/block/", data)
    assert answer.status_code == 404
    assert Absence.objects.count() == 1


# Who may open what, for an appointment, a slot and an agenda of the Pitié's neurosurgery.
SEES = {"org_admin", "est_admin", "secretary", "practitioner"}
BOOKS = {"org_admin", "est_admin", "secretary"}


@pytest.mark.parametrize(
    "who", ["org_admin", "est_admin", "secretary", "secretary_b", "practitioner", "auditor"]
)
def test_the_desk_pages_with_every_role(
    client, aphp, places, open_agenda, public_scope, patient, who
):
    role = places["role"]
    open_agenda(role)
    first, second = free_slots(role)[:2]
    booked = appointment_book(scope=public_scope, patient=patient, slot=first).appointment
    client.force_login(member(who, aphp, places))
    pages = {
        "appointment": (f"/staff/appointments/{booked.public_id}/", SEES),
        "block": (f"/staff/agenda/practitioner/{role.public_id}/block/", SEES),
        "book": (f"/staff/book/?slot={second.public_id}", BOOKS),
        "cancel": (f"/staff/appointments/{booked.public_id}/cancel/", BOOKS),
    }
    for name, (url, allowed) in pages.items():
        assert client.get(url).status_code == (200 if who in allowed else 404), name
    moved = client.post(f"/staff/appointments/{booked.public_id}/move/", {"slot": second.public_id})
    assert moved.status_code == (302 if who in BOOKS else 404)


def test_an_absence_over_all_the_practitioners_agendas(
    client, aphp, places, open_agenda, public_scope, patient, other_patient
):
    """The practitioner also consults in another department: their leave closes both agendas;
    each department's secretary sees their own patients inside it, and only someone who holds
    all the agendas lifts it."""
    from creneau.directory.models import PractitionerRole

    role = places["role"]
    second = PractitionerRole.objects.create(
        practitioner=role.practitioner,
        establishment=role.establishment,
        department=places["other_department"],
    )
    second.specialties.set(role.specialties.all())
    open_agenda(role)
    open_agenda(second, start_time=time(14), end_time=time(16))
    day = day_of(free_slots(role, days_ahead=3).first().starts_at)
    here = free_slots(role, days_ahead=3).filter(starts_at__date=day).first()
    there = free_slots(second, days_ahead=3).filter(starts_at__date=day).first()
    mine = appointment_book(scope=public_scope, patient=patient, slot=here).appointment
    theirs = appointment_book(scope=public_scope, patient=other_patient, slot=there).appointment
    doctor = member("practitioner", aphp, places)
    client.force_login(doctor)
    url = f"/staff/agenda/practitioner/{role.public_id}/block/"
    leave = {
        "starts_at": f"{day}T00:00",
        "ends_at": f"{day}T23:59",
        "reason": "Congrès",
        "everywhere": "on",
    }
    preview = client.post(url, leave).content.decode()
    assert "2 rendez-vous sont dedans" in preview

    done = client.post(url, {**leave, "confirm": "1"})

    absence = Absence.objects.get()
    assert absence.practitioner == role.practitioner and absence.practitioner_role is None
    assert not free_slots(second, days_ahead=3).filter(starts_at__date=day).exists()
    page = client.get(done["Location"]).content.decode()
    assert "MARTIN" in page and "NGUYEN" in page and "Rouvrir ce temps" in page
    agenda = client.get(f"/staff/agenda/practitioner/{second.public_id}/", {"day": day})
    assert "absent : Congrès" in agenda.content.decode()

    # The neurosurgery secretary sees her patient only, moves it, and cannot lift the leave.
    client.force_login(member("secretary", aphp, places))
    page = client.get(done["Location"]).content.decode()
    assert "MARTIN" in page and "NGUYEN" not in page and "Rouvrir ce temps" not in page
    assert f"/staff/appointments/{mine.public_id}/move/" in page
    assert f"/staff/appointments/{theirs.public_id}/" not in page
    assert client.post(f"/staff/blocked/{absence.public_id}/open/").status_code == 404
    # The practitioner lifts it: both agendas open again.
    client.force_login(doctor)
    client.post(f"/staff/blocked/{absence.public_id}/open/")
    assert not Absence.objects.exists()
    assert free_slots(second, days_ahead=3).filter(starts_at__date=day).exists()
