"""The booking services, tested directly: holds, appointments, moves, cancellations, perimeter."""

from datetime import time, timedelta

import pytest

from creneau.agenda.models import Slot
from creneau.booking.models import Appointment, Hold
from creneau.booking.patients import PatientDetailsInvalid, patient_details_clean
from creneau.booking.queries import slots_search
from creneau.booking.services import (
    BookingError,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    appointment_status_set,
    hold_create,
)
from creneau.channels import services as channels
from creneau.channels.models import Channel
from creneau.channels.queries import channel_scope_for_key
from creneau.directory.models import Establishment, VisitType
from tests.conftest import NOW

pytestmark = pytest.mark.django_db


def bookable(role, **filters):
    return (
        Slot.objects.filter(practitioner_role=role, bookable_until__gt=NOW, **filters)
        .order_by("starts_at")
        .first()
    )


def first_visit(role):
    return VisitType.objects.get(
        organisation=role.establishment.organisation, code="neurosurgery-first"
    )


def earliest(scope, role, **kw):
    return [s.public_id for s in slots_search(scope, visit_type=first_visit(role), **kw).slots]


def test_a_hold_takes_the_place_until_it_expires_and_then_frees_it_with_no_job(
    pitie_neurosurgeon, open_agenda, public_scope, patient, clock
):
    open_agenda(pitie_neurosurgeon)
    slot = bookable(pitie_neurosurgeon)
    assert earliest(public_scope, pitie_neurosurgeon)[0] == slot.public_id
    hold = hold_create(scope=public_scope, slot=slot)
    assert hold.expires_at == NOW + timedelta(minutes=10)
    assert slot.public_id not in earliest(public_scope, pitie_neurosurgeon)
    with pytest.raises(BookingError) as taken:
        hold_create(scope=public_scope, slot=slot)
    assert (taken.value.code, taken.value.status) == ("slot_taken", 409)

    clock.shift(timedelta(minutes=10, seconds=1))
    assert earliest(public_scope, pitie_neurosurgeon)[0] == slot.public_id
    with pytest.raises(BookingError) as expired:
        appointment_book(scope=public_scope, hold=hold, patient=patient)
    assert (expired.value.code, expired.value.status) == ("hold_expired", 410)
    again = hold_create(scope=public_scope, slot=slot)
    booked = appointment_book(scope=public_scope, hold=again, patient=patient)
    slot.refresh_from_db()
    assert (slot.booked, slot.held) == (1, 0)
    assert booked.appointment.status == "booked"
    assert Hold.objects.get(pk=hold.pk).status == "released"


def test_direct_booking_then_the_slot_is_taken(
    pitie_neurosurgeon, open_agenda, public_scope, patient, other_patient
):
    open_agenda(pitie_neurosurgeon)
    slot = bookable(pitie_neurosurgeon)
    booked = appointment_book(scope=public_scope, slot=slot, patient=patient, reason="Lombalgie")
    assert len(booked.manage_token) >= 22  # 128 random bits, URL-safe base64
    assert booked.manage_token not in booked.appointment.manage_token_hash
    with pytest.raises(BookingError) as taken:
        appointment_book(scope=public_scope, slot=slot, patient=other_patient)
    assert taken.value.code == "slot_taken"
    assert Appointment.objects.filter(slot=slot).count() == 1


def test_a_booked_time_hides_the_other_visit_types_offered_over_it(
    pitie_neurosurgeon, open_agenda, public_scope, patient, other_patient
):
    open_agenda(pitie_neurosurgeon, codes=("neurosurgery-first", "neurosurgery-spine"))
    first = bookable(pitie_neurosurgeon, visit_type__code="neurosurgery-first")
    spine = Slot.objects.get(
        practitioner_role=pitie_neurosurgeon,
        visit_type__code="neurosurgery-spine",
        starts_at=first.starts_at,
    )
    booked = appointment_book(scope=public_scope, slot=first, patient=patient).appointment
    spine.refresh_from_db()
    assert spine.overlaps == 1
    spine_visit = spine.visit_type
    assert spine.public_id not in [
        s.public_id for s in slots_search(public_scope, visit_type=spine_visit).slots
    ]
    with pytest.raises(BookingError) as taken:
        appointment_book(scope=public_scope, slot=spine, patient=other_patient)
    assert taken.value.code == "slot_taken"
    appointment_cancel(appointment=booked, channel_scope=public_scope)
    spine.refresh_from_db()
    assert spine.overlaps == 0
    assert spine.public_id in [
        s.public_id for s in slots_search(public_scope, visit_type=spine_visit).slots
    ]


def test_group_session_takes_as_many_patients_as_places(
    pitie_neurosurgeon, open_agenda, public_scope, patient
):
    open_agenda(
        pitie_neurosurgeon,
        codes=("neurosurgery-second-opinion",),
        start_time=time(14),
        end_time=time(15),
        slot_minutes=60,
        capacity=3,
    )
    slot = bookable(pitie_neurosurgeon)
    for _ in range(3):
        appointment_book(scope=public_scope, slot=slot, patient=patient)
    with pytest.raises(BookingError):
        appointment_book(scope=public_scope, slot=slot, patient=patient)
    slot.refresh_from_db()
    assert (slot.booked, slot.capacity) == (3, 3)


def test_nothing_outside_the_perimeter_is_offered_or_booked(
    aphp, pitie_neurosurgeon, private_neurosurgeon, open_agenda, public_scope, patient
):
    open_agenda(pitie_neurosurgeon)
    open_agenda(private_neurosurgeon, codes=("neurosurgery-first",))
    private_slot = bookable(private_neurosurgeon)
    neurosurgery = pitie_neurosurgeon.specialties.get()
    offered = slots_search(public_scope, specialty=neurosurgery, limit=100).slots
    assert offered and {s.establishment.organisation_id for s in offered} == {aphp.pk}
    for attempt in (
        lambda: hold_create(scope=public_scope, slot=private_slot),
        lambda: appointment_book(scope=public_scope, slot=private_slot, patient=patient),
    ):
        with pytest.raises(BookingError) as refused:
            attempt()
        assert (refused.value.code, refused.value.status) == ("out_of_perimeter", 403)
    assert not Appointment.objects.filter(slot=private_slot).exists()

    # A widget bound to another hospital cannot book the Pitié either.
    bicetre = Establishment.objects.get(name="Hôpital Bicêtre")
    perimeter = channels.perimeter_create(
        organisation=aphp, name="Bicêtre", establishments=[bicetre]
    )
    widget = channels.channel_create(
        organisation=aphp, name="Widget Bicêtre", kind=Channel.Kind.EMBED, perimeter=perimeter
    )
    scope = channel_scope_for_key(widget.key)
    with pytest.raises(BookingError) as refused:
        appointment_book(scope=scope, slot=bookable(pitie_neurosurgeon), patient=patient)
    assert refused.value.code == "out_of_perimeter"


def test_a_hold_is_checked_against_the_perimeter_again_at_booking(
    aphp, pitie_neurosurgeon, open_agenda, patient
):
    open_agenda(pitie_neurosurgeon)
    pitie = pitie_neurosurgeon.establishment
    perimeter = channels.perimeter_create(organisation=aphp, name="Pitié", establishments=[pitie])
    widget = channels.channel_create(
        organisation=aphp, name="Widget", kind=Channel.Kind.EMBED, perimeter=perimeter
    )
    hold = hold_create(scope=channel_scope_for_key(widget.key), slot=bookable(pitie_neurosurgeon))
    bicetre = Establishment.objects.get(name="Hôpital Bicêtre")
    channels.perimeter_publish(perimeter=perimeter, establishments=[bicetre])
    with pytest.raises(BookingError) as refused:
        appointment_book(scope=channel_scope_for_key(widget.key), hold=hold, patient=patient)
    assert refused.value.code == "out_of_perimeter"


def test_a_move_takes_the_new_place_and_frees_the_old_or_changes_nothing(
    pitie_neurosurgeon, open_agenda, public_scope, patient, other_patient
):
    open_agenda(pitie_neurosurgeon)
    first, second, third = Slot.objects.filter(
        practitioner_role=pitie_neurosurgeon, bookable_until__gt=NOW
    ).order_by("starts_at")[:3]
    appointment = appointment_book(scope=public_scope, slot=first, patient=patient).appointment
    appointment_book(scope=public_scope, slot=second, patient=other_patient)
    with pytest.raises(BookingError) as taken:
        appointment_reschedule(appointment=appointment, scope=public_scope, slot=second)
    assert taken.value.code == "slot_taken"
    appointment.refresh_from_db()
    first.refresh_from_db()
    assert appointment.slot_id == first.pk and first.booked == 1

    appointment_reschedule(appointment=appointment, scope=public_scope, slot=third)
    appointment.refresh_from_db()
    first.refresh_from_db()
    third.refresh_from_db()
    assert (appointment.slot_id, appointment.starts_at) == (third.pk, third.starts_at)
    assert (first.booked, third.booked) == (0, 1)
    assert [e.action for e in appointment.events.all()] == ["booked", "moved"]
    assert first.public_id in earliest(public_scope, pitie_neurosurgeon)

    open_agenda(
        pitie_neurosurgeon, codes=("neurosurgery-spine",), start_time=time(14), end_time=time(16)
    )
    spine = bookable(pitie_neurosurgeon, visit_type__code="neurosurgery-spine")
    with pytest.raises(BookingError) as mismatch:
        appointment_reschedule(appointment=appointment, scope=public_scope, slot=spine)
    assert mismatch.value.code == "visit_type_mismatch"


def test_cancelling_and_staff_statuses(pitie_neurosurgeon, open_agenda, public_scope, patient):
    open_agenda(pitie_neurosurgeon)
    slot = bookable(pitie_neurosurgeon)
    appointment = appointment_book(scope=public_scope, slot=slot, patient=patient).appointment
    appointment_cancel(appointment=appointment, channel_scope=public_scope, reason="Guéri")
    assert appointment.status == "cancelled_patient" and appointment.cancel_reason == "Guéri"
    with pytest.raises(BookingError) as again:
        appointment_cancel(appointment=appointment, channel_scope=public_scope)
    assert again.value.code == "not_cancellable"
    slot.refresh_from_db()
    assert slot.booked == 0

    other = appointment_book(scope=public_scope, slot=slot, patient=patient).appointment
    appointment_status_set(appointment=other, status="arrived", channel_scope=public_scope)
    appointment_status_set(appointment=other, status="done", channel_scope=public_scope)
    with pytest.raises(BookingError):
        appointment_status_set(appointment=other, status="no_show", channel_scope=public_scope)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phone", "12"),
        ("phone", "01 23"),
        ("phone", ""),  # booking alone, a patient gives a number
        ("birth_date", "2090-01-01"),
        ("birth_date", "1850-01-01"),
        ("email", "not-an-address"),
        ("last_name", "   "),
        ("first_name", "<script>"),
    ],
)
def test_patient_details_are_checked_and_the_field_named(field, value):
    from datetime import date

    details = {
        "last_name": "Martin",
        "first_name": "Camille",
        "birth_date": date(1980, 5, 17),
        "phone": "0612345678",
        "email": "",
    }
    details[field] = date.fromisoformat(value) if field == "birth_date" else value
    with pytest.raises(PatientDetailsInvalid) as refused:
        patient_details_clean(**details)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("written", "stored", "shown"),
    [
        ("01 42 16 00 00", "+33142160000", "01 42 16 00 00"),  # a Paris landline
        ("+44 7911 123456", "+447911123456", "+44 7911 123456"),  # a British mobile
        ("+86 138 0013 8000", "+8613800138000", "+86 138 0013 8000"),  # a Chinese mobile
        ("05 90 12 34 56", "+590590123456", "0590 12 34 56"),  # a Guadeloupe landline
    ],
)
def test_a_number_that_gets_no_text_message_books_with_an_e_mail(written, stored, shown):
    """Issue 28, point 1: the rule about text messages limits what is sent, not who is booked.
    Alone on the public site, a landline or a number abroad needs an e-mail address (the error
    names that field); the desk and the call centres take the number the caller gives."""
    from datetime import date

    from django.utils import translation

    from creneau.booking.patients import Contact, contact_plan, phone_display

    person = {"last_name": "Martin", "first_name": "Camille", "birth_date": date(1980, 5, 17)}
    with pytest.raises(PatientDetailsInvalid) as refused:
        patient_details_clean(**person, phone=written)
    assert list(refused.value.errors) == ["email"]
    assert "e-mail" in refused.value.message
    with_email = patient_details_clean(**person, phone=written, email="c.martin@example.org")
    assert with_email.phone == stored
    for contact in (Contact.STAFF, Contact.PARTNER):
        assert patient_details_clean(**person, phone=written, contact=contact).phone == stored
    assert phone_display(stored) == shown
    with translation.override("en"):
        plan = contact_plan(stored, "c.martin@example.org")
    assert plan[0].startswith("No text message") and "c.martin@example.org" in plan[1]


def test_a_person_without_a_phone_is_booked_by_staff_with_a_reason():
    from datetime import date

    from creneau.booking.patients import Contact

    person = {"last_name": "Martin", "first_name": "Camille", "birth_date": date(1950, 5, 17)}
    with pytest.raises(PatientDetailsInvalid) as refused:
        patient_details_clean(**person, phone="", contact=Contact.STAFF)
    assert list(refused.value.errors) == ["no_phone_reason"]
    for contact in (Contact.SELF, Contact.PARTNER):
        with pytest.raises(PatientDetailsInvalid) as alone:
            patient_details_clean(**person, phone="", no_phone_reason="none", contact=contact)
        assert alone.value.field == "phone"
    booked = patient_details_clean(
        **person, phone="", no_phone_reason="  no   phone ", contact=Contact.STAFF
    )
    assert (booked.phone, booked.no_phone_reason) == ("", "no phone")
    # A number given, a reason is not kept.
    given = patient_details_clean(
        **person, phone="01 42 16 00 00", no_phone_reason="x", contact=Contact.STAFF
    )
    assert (given.phone, given.no_phone_reason) == ("+33142160000", "")


def test_phone_numbers_are_stored_in_international_form():
    from datetime import date

    details = patient_details_clean(
        last_name="  le   Goff ",
        first_name="Anne-Marie",
        birth_date=date(1990, 1, 1),
        phone="06 12 34 56 78",
    )
    assert details.phone == "+33612345678"
    assert details.last_name == "le Goff"
    # Mobiles of the overseas departments, written as patients there write them.
    for written, stored in [
        ("0690 12 34 56", "+590690123456"),  # Guadeloupe
        ("0696 12 34 56", "+596696123456"),  # Martinique
        ("+262 692 12 34 56", "+262692123456"),  # La Réunion
        ("07 81 23 45 67", "+33781234567"),
    ]:
        again = patient_details_clean(
            last_name="Goff", first_name="Anne", birth_date=date(1990, 1, 1), phone=written
        )
        assert again.phone == stored, written
