"""A platform's signed link (SAS ``Slot.comment``, SMART ``booking-deep-link``) opens one slot,
for one channel, until it expires; the hold it gives books once and opens nothing once it has
lapsed or was given back (issue 27, point 1)."""

import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from creneau.agenda.models import Slot
from creneau.booking.links import booking_link
from creneau.booking.models import Appointment, Hold
from tests.conftest import NOW, OTHER_PATIENT, PATIENT
from tests.fhir.conftest import bearer, register

pytestmark = pytest.mark.django_db


@pytest.fixture
def finder(aphp):
    return register(aphp, "smart_finder", "Trouve-un-rendez-vous")


def free(role, count: int) -> list[Slot]:
    return list(
        Slot.objects.filter(practitioner_role=role, booked=0, held=0, overlaps=0)
        .filter(
            visit_type__code="neurosurgery-first", bookable_from__lte=NOW, bookable_until__gt=NOW
        )
        .order_by("starts_at")[:count]
    )


def hold_through_link(client, channel, slot, valid_for=timedelta(hours=2)) -> str:
    link = urlsplit(
        booking_link(channel=channel, slot=slot, valid_for=valid_for, now=timezone.now())
    )
    held = client.post(link.path, {"origin": "sas", "regulator": "810000000001"})
    assert held.status_code == 303, held.content.decode()[-3000:]
    return held["Location"]


@pytest.fixture
def two_practitioners(pitie_neurosurgeon, open_agenda):
    from tests.conftest import role_in

    other = role_in("Hôpital Lariboisière", "neurosurgery")
    open_agenda(pitie_neurosurgeon)
    open_agenda(other)
    return pitie_neurosurgeon, other


def test_a_link_s_hold_books_its_own_slot_and_no_other(client, sas, two_practitioners, clock):
    mine, other = two_practitioners
    linked, elsewhere = free(mine, 1)[0], free(other, 1)[0]
    page = hold_through_link(client, sas.contract.channel, linked)
    refused = client.post(page, {**PATIENT, "slot": elsewhere.public_id})
    assert refused.status_code == 409, refused.content.decode()[:500]
    assert not Appointment.objects.filter(slot=elsewhere).exists()
    assert not Appointment.objects.filter(slot=linked).exists()
    # No other time is offered on a platform's form: the link's authority is its slot.
    assert f'value="{elsewhere.public_id}"' not in refused.content.decode()
    booked = client.post(page, PATIENT)
    assert booked.status_code == 303
    assert Appointment.objects.get(slot=linked).channel == sas.contract.channel


def test_a_link_s_hold_books_once(client, sas, two_practitioners, clock):
    mine, _other = two_practitioners
    linked, second = free(mine, 2)
    page = hold_through_link(client, sas.contract.channel, linked)
    assert client.post(page, PATIENT).status_code == 303
    again = client.post(page, {**OTHER_PATIENT, "slot": second.public_id})
    assert again.status_code == 410
    again = client.post(page, OTHER_PATIENT)
    assert again.status_code == 410
    assert Appointment.objects.filter(channel=sas.contract.channel).count() == 1


def test_a_released_or_expired_link_hold_opens_nothing(
    client, finder, pitie_neurosurgeon, open_agenda, clock
):
    open_agenda(pitie_neurosurgeon)
    first, second = free(pitie_neurosurgeon, 2)
    channel = finder.contract.channel
    page = hold_through_link(client, channel, first)
    client.post(page + "release/")
    assert Hold.objects.get(public_id=page.rstrip("/").split("/")[-1]).status == "released"
    clock.shift(timedelta(minutes=30))
    assert client.get(page).status_code == 410
    assert client.post(page, PATIENT).status_code == 410
    assert client.post(page, {**PATIENT, "slot": second.public_id}).status_code == 410
    lapsed = hold_through_link(client, channel, second)
    clock.shift(timedelta(minutes=11))
    assert client.post(lapsed, PATIENT).status_code == 410
    assert not Appointment.objects.filter(channel=channel).exists()


def test_a_link_s_hold_ends_with_the_link(client, finder, pitie_neurosurgeon, open_agenda, clock):
    open_agenda(pitie_neurosurgeon)
    slot = free(pitie_neurosurgeon, 1)[0]
    page = hold_through_link(client, finder.contract.channel, slot, valid_for=timedelta(minutes=2))
    held = Hold.objects.get(public_id=page.rstrip("/").split("/")[-1])
    assert held.expires_at == NOW + timedelta(minutes=2)
    clock.shift(timedelta(minutes=3))
    assert client.post(page, PATIENT).status_code == 410
    assert not Appointment.objects.filter(slot=slot).exists()


def test_the_public_site_s_lapsed_form_books_once(client, pitie_neurosurgeon, open_agenda, clock):
    """On the hub's own site a lapsed hold is held again under the visitor's caps, then used up."""
    open_agenda(pitie_neurosurgeon)
    slot, other = free(pitie_neurosurgeon, 2)
    page = client.post("/hold/", {"slot": slot.public_id})["Location"]
    clock.shift(timedelta(minutes=11))
    assert client.post(page, PATIENT).status_code == 303
    again = client.post(page, {**OTHER_PATIENT, "slot": other.public_id})
    assert again.status_code == 410
    assert not Appointment.objects.filter(slot=other).exists()
    assert Slot.objects.get(pk=slot.pk).held == 0


def test_visitors_by_a_finder_s_links_cannot_use_up_its_contract(
    client, finder, pitie_neurosurgeon, open_agenda, clock, settings
):
    """Issue 27, point 4: seven addresses holding three links each do not lock the finder's
    own software out, nor the next patient who clicks one of its links."""
    from django.test import Client

    from creneau.channels.models import Contract

    Contract.objects.filter(pk=finder.contract.pk).update(holds_at_once=5, bookings_per_day=5)
    open_agenda(pitie_neurosurgeon)
    slots = free(pitie_neurosurgeon, 23)
    channel = finder.contract.channel
    for n in range(7):
        visitor = Client(REMOTE_ADDR=f"10.4.0.{n + 1}")
        for slot in slots[3 * n : 3 * n + 3]:
            held = hold_through_link(visitor, channel, slot)
            if n % 2:  # some give theirs back
                visitor.post(held + "release/")
    assert Hold.objects.filter(channel=channel).count() == 21
    # The finder's own API still holds (its software's caps are untouched)...
    fhir = bearer(client, finder)
    api = client.post(
        "/api/v1/holds",
        json.dumps({"slot": slots[21].public_id}),
        content_type="application/json",
        headers=fhir.headers,
    )
    assert api.status_code == 201, api.content[:300]
    # ...and so does the next patient by one of its links.
    hold_through_link(Client(REMOTE_ADDR="10.4.1.1"), channel, slots[22])
