"""A hold keeps the practitioner's time, not only its slot; holds are capped per visitor and per
operator contract (issue 14, points 1 and 3). The races of the same rules through a real server
are in tests/booking/test_race.py."""

from datetime import timedelta

import pytest

from creneau.agenda.models import Slot
from creneau.booking.models import Hold
from creneau.booking.queries import practitioner_availability, slots_search
from creneau.booking.services import (
    BookingError,
    appointment_book,
    appointment_cancel,
    hold_create,
    hold_release,
)
from creneau.directory.models import VisitType
from tests.conftest import NOW

pytestmark = pytest.mark.django_db


def visit(role, code: str) -> VisitType:
    return VisitType.objects.get(organisation=role.establishment.organisation, code=code)


@pytest.fixture
def two_visits(pitie_neurosurgeon, open_agenda):
    """First consultations (30 minutes) and second opinions (45 minutes) over the same hours:
    the second opinion at 09:00 Paris covers the first consultations at 09:00 and 09:30."""
    open_agenda(pitie_neurosurgeon, codes=("neurosurgery-first", "neurosurgery-second-opinion"))
    opinion = (
        Slot.objects.filter(
            practitioner_role=pitie_neurosurgeon,
            visit_type=visit(pitie_neurosurgeon, "neurosurgery-second-opinion"),
            bookable_from__lte=NOW,
            bookable_until__gt=NOW,
        )
        .order_by("starts_at")
        .first()
    )
    covered = list(
        Slot.objects.filter(
            practitioner=pitie_neurosurgeon.practitioner,
            starts_at__lt=opinion.ends_at,
            ends_at__gt=opinion.starts_at,
        )
        .exclude(pk=opinion.pk)
        .order_by("starts_at")
    )
    assert [slot.ends_at - slot.starts_at for slot in covered] == [timedelta(minutes=30)] * 2
    return opinion, covered


def offered(scope, role, code: str) -> set[str]:
    found = slots_search(scope, visit_type=visit(role, code), limit=50).slots
    return {slot.public_id for slot in found}


def test_a_hold_takes_the_practitioners_overlapping_slots_out_of_search_and_reach(
    two_visits, pitie_neurosurgeon, public_scope, patient, other_patient, clock
):
    opinion, covered = two_visits
    covered_ids = {slot.public_id for slot in covered}
    assert covered_ids <= offered(public_scope, pitie_neurosurgeon, "neurosurgery-first")

    hold = hold_create(scope=public_scope, slot=opinion)
    assert not covered_ids & offered(public_scope, pitie_neurosurgeon, "neurosurgery-first")
    week = practitioner_availability(
        public_scope,
        practitioner=pitie_neurosurgeon.practitioner,
        week_start=opinion.starts_at.date(),
    )
    shown = {slot.public_id for _day, slots in week.days for slot in slots}
    assert not covered_ids & shown
    for slot in covered:
        with pytest.raises(BookingError) as taken:
            appointment_book(scope=public_scope, slot=slot, patient=other_patient)
        assert taken.value.code == "slot_taken"
        with pytest.raises(BookingError):
            hold_create(scope=public_scope, slot=slot)

    # The patient who was told the slot was theirs gets it.
    booked = appointment_book(scope=public_scope, hold=hold, patient=patient)
    assert booked.appointment.ends_at - booked.appointment.starts_at == timedelta(minutes=45)
    assert not covered_ids & offered(public_scope, pitie_neurosurgeon, "neurosurgery-first")
    # Cancelled, the time is free again at once (not only once the spent hold would expire).
    appointment_cancel(appointment=booked.appointment, channel_scope=public_scope)
    assert covered_ids <= offered(public_scope, pitie_neurosurgeon, "neurosurgery-first")


def test_a_hold_released_or_expired_gives_the_time_back_with_no_job(
    two_visits, pitie_neurosurgeon, public_scope, other_patient, clock
):
    opinion, covered = two_visits
    covered_ids = {slot.public_id for slot in covered}
    hold = hold_create(scope=public_scope, slot=opinion)
    hold_release(hold=hold)
    assert covered_ids <= offered(public_scope, pitie_neurosurgeon, "neurosurgery-first")

    # Two holds over the same time cannot both exist: the first covered slot, then the opinion.
    first = hold_create(scope=public_scope, slot=covered[0])
    with pytest.raises(BookingError) as taken:
        hold_create(scope=public_scope, slot=opinion)
    assert taken.value.code == "slot_taken"
    assert covered[1].public_id in offered(public_scope, pitie_neurosurgeon, "neurosurgery-first")
    clock.shift(timedelta(minutes=10, seconds=1))
    assert first.status == Hold.Status.ACTIVE  # nothing ran
    assert opinion.public_id in offered(
        public_scope, pitie_neurosurgeon, "neurosurgery-second-opinion"
    )
    again = hold_create(scope=public_scope, slot=opinion)
    clock.shift(timedelta(minutes=10, seconds=1))
    assert covered_ids <= offered(public_scope, pitie_neurosurgeon, "neurosurgery-first")
    appointment_book(scope=public_scope, slot=covered[1], patient=other_patient)
    with pytest.raises(BookingError) as expired:
        appointment_book(scope=public_scope, hold=again, patient=other_patient)
    assert expired.value.code == "hold_expired"
