"""A secretary opens an agenda, records leave and handles the day's appointments in the admin."""

from zoneinfo import ZoneInfo

import pytest

from creneau.agenda.models import Absence, AvailabilityRule, Slot
from creneau.booking.models import Appointment
from creneau.booking.services import appointment_book
from creneau.directory.models import VisitType
from tests.conftest import NOW

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")


def test_a_rule_saved_in_the_admin_opens_slots_at_once(
    client, hospital_admin, pitie_neurosurgeon, clock
):
    client.force_login(hospital_admin)
    first = VisitType.objects.get(
        organisation=pitie_neurosurgeon.establishment.organisation, code="neurosurgery-first"
    )
    answer = client.post(
        "/admin/agenda/availabilityrule/add/",
        {
            "practitioner_role": pitie_neurosurgeon.pk,
            "label": "Lundi matin",
            "recurrence": "FREQ=WEEKLY;BYDAY=MO",
            "starts_on": "2027-03-01",
            "start_time": "09:00",
            "end_time": "12:00",
            "visit_types": [first.pk],
            "capacity": "1",
        },
        follow=True,
    )
    assert answer.status_code == 200
    rule = AvailabilityRule.objects.get(label="Lundi matin")
    slots = Slot.objects.filter(rule=rule)
    assert slots.count() > 0
    assert {s.starts_at.astimezone(PARIS).strftime("%a %H:%M") for s in slots} >= {"Mon 09:00"}
    assert "créés" in answer.content.decode() or "created" in answer.content.decode()

    refused = client.post(
        "/admin/agenda/availabilityrule/add/",
        {
            "practitioner_role": pitie_neurosurgeon.pk,
            "recurrence": "FREQ=NEVER",
            "starts_on": "2027-03-01",
            "start_time": "12:00",
            "end_time": "09:00",
            "visit_types": [first.pk],
            "capacity": "1",
        },
    )
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors.keys() >= {"recurrence"}
    assert AvailabilityRule.objects.count() == 1


def test_leave_recorded_in_the_admin_withdraws_slots_and_removing_it_restores_them(
    client, hospital_admin, pitie_neurosurgeon, open_agenda, settings
):
    settings.CRENEAU_HORIZON_WEEKS = 4  # the agenda below is opened four weeks ahead
    open_agenda(pitie_neurosurgeon)
    before = Slot.objects.filter(practitioner_role=pitie_neurosurgeon).count()
    client.force_login(hospital_admin)
    answer = client.post(
        "/admin/agenda/absence/add/",
        {
            "practitioner": pitie_neurosurgeon.practitioner_id,
            "starts_at_0": "2027-03-22",
            "starts_at_1": "00:00",
            "ends_at_0": "2027-03-27",
            "ends_at_1": "00:00",
            "reason": "Congrès",
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:1500]
    assert Slot.objects.filter(practitioner_role=pitie_neurosurgeon).count() == before - 5 * 6
    absence = Absence.objects.get()
    client.post(f"/admin/agenda/absence/{absence.pk}/delete/", {"post": "yes"})
    assert not Absence.objects.exists()
    assert Slot.objects.filter(practitioner_role=pitie_neurosurgeon).count() == before


def test_an_absence_over_a_booked_slot_names_and_links_its_appointment_once(
    client, hospital_admin, pitie_neurosurgeon, open_agenda, public_scope, patient, settings
):
    settings.CRENEAU_HORIZON_WEEKS = 4
    open_agenda(pitie_neurosurgeon)
    slot = (
        Slot.objects.filter(
            practitioner_role=pitie_neurosurgeon, bookable_until__gt=NOW, bookable_from__lte=NOW
        )
        .filter(starts_at__date__gte="2027-03-22", starts_at__date__lt="2027-03-27")
        .order_by("starts_at")
        .first()
    )
    booked = appointment_book(scope=public_scope, slot=slot, patient=patient).appointment
    client.force_login(hospital_admin)
    leave = {
        "practitioner": pitie_neurosurgeon.practitioner_id,
        "starts_at_0": "2027-03-22",
        "starts_at_1": "00:00",
        "ends_at_0": "2027-03-27",
        "ends_at_1": "00:00",
        "reason": "Congrès",
    }
    saved = client.post("/admin/agenda/absence/add/", leave, follow=True).content.decode()
    link = f'href="/admin/booking/appointment/{booked.pk}/change/"'
    assert "plus couvert par aucune plage" in saved and link in saved and "Martin Camille" in saved
    absence = Absence.objects.get()
    again = client.post(
        f"/admin/agenda/absence/{absence.pk}/change/",
        {**leave, "reason": "Congrès SFNC"},
        follow=True,
    ).content.decode()
    assert "plus couvert par aucune plage" not in again and link not in again


def test_staff_mark_arrivals_and_cancel_for_the_hospital(
    client, hospital_admin, pitie_neurosurgeon, open_agenda, public_scope, patient
):
    open_agenda(pitie_neurosurgeon)
    slots = Slot.objects.filter(practitioner_role=pitie_neurosurgeon, bookable_until__gt=NOW)
    first, second = (
        appointment_book(scope=public_scope, slot=slot, patient=patient).appointment
        for slot in slots.order_by("starts_at")[:2]
    )
    client.force_login(hospital_admin)
    listing = client.get("/admin/booking/appointment/")
    assert listing.status_code == 200 and "Martin" in listing.content.decode()
    client.post(
        "/admin/booking/appointment/",
        {"action": "mark_arrived", "_selected_action": [first.pk]},
    )
    # Cancelling asks first, and for the reason the patient is told.
    asked = client.post(
        "/admin/booking/appointment/",
        {"action": "cancel_by_hospital", "_selected_action": [second.pk]},
    )
    assert asked.status_code == 200
    html = asked.content.decode()
    assert second.public_id in html and 'name="reason"' in html
    second.refresh_from_db()
    assert second.status == "booked"
    no_reason = client.post(
        "/admin/booking/appointment/",
        {"action": "cancel_by_hospital", "_selected_action": [second.pk], "confirm": "yes"},
    )
    assert no_reason.status_code == 200 and 'aria-invalid="true"' in no_reason.content.decode()
    second.refresh_from_db()
    assert second.status == "booked"
    client.post(
        "/admin/booking/appointment/",
        {
            "action": "cancel_by_hospital",
            "_selected_action": [second.pk],
            "confirm": "yes",
            "reason": "Praticien absent ce jour-là",
        },
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "arrived"
    assert second.status == "cancelled_staff"
    assert second.cancel_reason == "Praticien absent ce jour-là"
    sms = second.messages.get(kind="cancelled", medium="sms")
    from creneau.notify.texts import render

    assert "Praticien absent ce jour-là" in render(sms).sms
    assert [e.by for e in second.events.filter(action="cancelled")] == [hospital_admin]
    detail = client.get(f"/admin/booking/appointment/{first.pk}/change/").content.decode()
    assert first.manage_token_hash not in detail
    assert Appointment.objects.filter(status="booked").count() == 0
