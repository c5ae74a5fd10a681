"""The waiting list: a freed slot goes to the first matching patient, alone, for a while."""

from datetime import timedelta

import pytest

from creneau.agenda.models import Slot
from creneau.booking.models import WaitingListEntry, WaitingListOffer
from creneau.booking.queries import slots_search
from creneau.booking.services import (
    BookingError,
    appointment_book,
    appointment_cancel,
    waiting_list_accept,
    waiting_list_decline,
    waiting_list_join,
    waiting_list_match,
    waiting_list_offers_expire,
)
from creneau.directory.models import VisitType
from tests.conftest import NOW

pytestmark = pytest.mark.django_db


@pytest.fixture
def full_agenda(pitie_neurosurgeon, open_agenda, public_scope, patient):
    """Every bookable slot of the first week taken: what a waiting patient meets."""
    open_agenda(pitie_neurosurgeon, horizon_weeks=1)
    slots = list(
        Slot.objects.filter(practitioner_role=pitie_neurosurgeon, bookable_until__gt=NOW).order_by(
            "starts_at"
        )
    )
    appointments = [
        appointment_book(scope=public_scope, slot=slot, patient=patient).appointment
        for slot in slots
    ]
    return slots, appointments


def join(scope, role, patient, **kw):
    visit_type = VisitType.objects.get(
        organisation=role.establishment.organisation, code="neurosurgery-first"
    )
    return waiting_list_join(
        scope=scope,
        visit_type=visit_type,
        before=NOW + timedelta(days=30),
        patient=patient,
        **kw,
    )


def test_a_freed_slot_is_offered_to_the_first_waiting_patient_alone(
    full_agenda, pitie_neurosurgeon, public_scope, patient, other_patient
):
    _slots, appointments = full_agenda
    first = join(public_scope, pitie_neurosurgeon, other_patient).entry
    second = join(public_scope, pitie_neurosurgeon, patient).entry
    freed = appointments[3]
    appointment_cancel(appointment=freed, channel_scope=public_scope)

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("offered", "waiting")
    offer = first.offers.get()
    assert offer.hold.slot_id == freed.slot_id
    # Exclusive: nobody else finds or takes it while the offer stands.
    visit_type = freed.visit_type
    assert freed.slot.public_id not in [
        s.public_id for s in slots_search(public_scope, visit_type=visit_type).slots
    ]
    with pytest.raises(BookingError):
        appointment_book(scope=public_scope, slot=freed.slot, patient=patient)

    booked = waiting_list_accept(entry=first, scope=public_scope)
    first.refresh_from_db()
    assert first.status == "satisfied" and first.appointment == booked.appointment
    assert booked.appointment.patient_last_name == "Nguyen"
    assert booked.appointment.slot_id == freed.slot_id


def test_a_declined_or_expired_offer_passes_to_the_next_patient(
    full_agenda, pitie_neurosurgeon, public_scope, patient, other_patient, clock
):
    _slots, appointments = full_agenda
    first = join(public_scope, pitie_neurosurgeon, other_patient).entry
    second = join(public_scope, pitie_neurosurgeon, patient).entry
    third = join(public_scope, pitie_neurosurgeon, patient).entry
    appointment_cancel(appointment=appointments[-1], channel_scope=public_scope)
    waiting_list_decline(entry=first)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("waiting", "offered")
    assert second.offers.get().hold.slot_id == appointments[-1].slot_id

    clock.shift(timedelta(hours=3))
    with pytest.raises(BookingError) as late:
        waiting_list_accept(entry=second, scope=public_scope)
    assert (late.value.code, late.value.status) == ("offer_expired", 410)
    assert waiting_list_offers_expire() == 1
    second.refresh_from_db()
    third.refresh_from_db()
    assert second.offers.get().status == WaitingListOffer.Status.EXPIRED
    # The slot went on to the next patient who had not had it yet.
    assert third.status == "offered"
    assert WaitingListEntry.objects.get(pk=first.pk).status == "waiting"


def test_new_availability_is_offered_by_the_roll(
    full_agenda, pitie_neurosurgeon, open_agenda, public_scope, other_patient
):
    entry = join(public_scope, pitie_neurosurgeon, other_patient).entry
    assert waiting_list_match() == 0
    open_agenda(pitie_neurosurgeon, horizon_weeks=2)
    assert waiting_list_match() == 1
    entry.refresh_from_db()
    assert entry.status == "offered"
    offered_slot = entry.offers.get().hold.slot
    assert offered_slot.starts_at >= NOW + timedelta(days=6)


def test_a_patient_waiting_for_one_practitioner_is_not_offered_another(
    full_agenda, pitie_neurosurgeon, public_scope, other_patient
):
    _slots, appointments = full_agenda
    colleague = (
        type(pitie_neurosurgeon.practitioner)
        .objects.exclude(pk=pitie_neurosurgeon.practitioner_id)
        .first()
    )
    entry = join(public_scope, pitie_neurosurgeon, other_patient, practitioner=colleague).entry
    appointment_cancel(appointment=appointments[0], channel_scope=public_scope)
    entry.refresh_from_db()
    assert entry.status == "waiting"
