"""Opening periods in words: the form writes the RRULE, the preview is the change itself (what it
shows is what saving opens), and the appointments a change leaves uncovered are named."""

import re
from collections import Counter
from datetime import date, time, timedelta

import pytest
from django.utils import timezone

from creneau.agenda.models import AvailabilityRule, Slot
from creneau.booking.models import PARIS
from creneau.booking.services import appointment_book
from creneau.directory.models import VisitType
from creneau.staff.rules import LISTED_WEEKS, recurrence_of, words_of
from tests.staff.conftest import member

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("frequency", "days", "week", "recurrence"),
    [
        ("weekly", ["TH", "MO"], "1", "FREQ=WEEKLY;BYDAY=MO,TH"),
        ("fortnightly", ["TU"], "1", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU"),
        ("monthly", ["WE", "MO"], "1", "FREQ=MONTHLY;BYDAY=1MO,1WE"),
        ("monthly", ["FR"], "-1", "FREQ=MONTHLY;BYDAY=-1FR"),
    ],
)
def test_the_words_write_the_rule_and_read_it_back(frequency, days, week, recurrence):
    assert recurrence_of(frequency, days, week) == recurrence
    words = words_of(recurrence)
    assert (words["frequency"], sorted(words["weekdays"])) == (frequency, sorted(days))
    if frequency == "monthly":
        assert words["week_of_month"] == week


@pytest.mark.parametrize(
    "by_hand", ["FREQ=DAILY", "FREQ=WEEKLY;INTERVAL=3;BYDAY=MO", "FREQ=MONTHLY;BYMONTHDAY=1"]
)
def test_a_rule_written_by_hand_in_another_shape_is_not_guessed(by_hand):
    assert words_of(by_hand) is None


def form(role, **changes) -> dict:
    first = VisitType.objects.get(
        organisation_id=role.establishment.organisation_id, code="neurosurgery-first"
    )
    data = {
        "label": "Consultations du mardi",
        "weekdays": ["TU", "TH"],
        "frequency": "weekly",
        "week_of_month": "1",
        "start_time": "14:00",
        "end_time": "16:00",
        "starts_on": "2027-03-15",
        "ends_on": "",
        "visit_types": [str(first.pk)],
        "capacity": "1",
        "slot_minutes": "",
    }
    data.update(changes)
    return data


SHOWN = re.compile(r"<li>\w+\.? (\d+) \w+\.?, (\d\d:\d\d)\u2013\d\d:\d\d — ")


def shown_slots(page: str) -> Counter:
    """(day of the month, time) of each slot the preview lists as opening."""
    opening = re.findall(r'<ul class="preview-slots">(.*?)</ul>', page, re.S)
    return Counter(found for block in opening for found in SHOWN.findall(block))


def listed(slots) -> Counter:
    today = timezone.localtime(timezone.now(), PARIS).date()
    monday = today - timedelta(days=today.weekday())
    end = monday + timedelta(weeks=LISTED_WEEKS)
    found = Counter()
    for starts_at in slots:
        local = timezone.localtime(starts_at, PARIS)
        if local.date() < end:
            found[(str(local.day), local.strftime("%H:%M"))] += 1
    return found


def test_a_new_period_opens_exactly_the_slots_its_preview_showed(client, aphp, places, clock):
    role = places["role"]
    client.force_login(member("secretary", aphp, places))
    url = f"/staff/agenda/practitioner/{role.public_id}/rules/new/"
    assert client.get(url).status_code == 200

    preview = client.post(url, form(role))

    page = preview.content.decode()
    assert preview.status_code == 200 and not Slot.objects.filter(practitioner_role=role).exists()
    assert not AvailabilityRule.objects.filter(practitioner_role=role).exists()
    total = int(re.search(r"(\d+) créneaux ouvrent", page).group(1))
    shown = shown_slots(page)
    assert total > sum(shown.values()) > 0  # four weeks listed, the rest counted

    saved = client.post(url, {**form(role), "confirm": "1"})

    assert saved.status_code == 302 and saved["Location"].endswith("/rules/?done=saved")
    rule = AvailabilityRule.objects.get(practitioner_role=role)
    assert rule.recurrence == "FREQ=WEEKLY;BYDAY=TU,TH"
    opened = list(Slot.objects.filter(practitioner_role=role).values_list("starts_at", flat=True))
    assert len(opened) == total
    assert listed(opened) == shown
    # Tuesdays and Thursdays 14:00 in Paris, before and after the change to summer time.
    for starts_at in opened:
        local = timezone.localtime(starts_at, PARIS)
        assert local.strftime("%a %H") in {"Tue 14", "Thu 14", "Tue 15", "Thu 15"}
    rules_page = client.get(saved["Location"]).content.decode()
    assert "Chaque semaine le mardi, jeudi, 14:00\u201316:00" in rules_page


def test_changing_a_period_names_the_appointments_it_would_leave_uncovered(
    client, aphp, places, open_agenda, public_scope, patient
):
    role = places["role"]
    rule, _report = open_agenda(role)  # weekdays 09:00-12:00
    slot = (
        Slot.objects.filter(
            practitioner_role=role, starts_at__gte=timezone.now() + timedelta(days=2)
        )
        .order_by("starts_at")
        .first()
    )
    booked = appointment_book(scope=public_scope, patient=patient, slot=slot).appointment
    client.force_login(member("est_admin", aphp, places))
    url = f"/staff/agenda/practitioner/{role.public_id}/rules/{rule.public_id}/"
    edit = client.get(url).content.decode()
    assert 'value="09:00"' in edit and 'value="MO" checked' in edit.replace(
        ' id="id_weekdays_0"', ""
    )

    afternoons = form(role, weekdays=["MO", "WE"], start_time="14:00", end_time="15:00")
    page = client.post(url, afternoons).content.decode()

    assert f"/staff/appointments/{booked.public_id}/" in page and "MARTIN Camille" in page
    assert Slot.objects.filter(practitioner_role=role, local_minute=9 * 60).exists()
    before = set(Slot.objects.filter(practitioner_role=role).values_list("starts_at", flat=True))
    shown = shown_slots(page)

    client.post(url, {**afternoons, "confirm": "1"})

    after = set(Slot.objects.filter(practitioner_role=role).values_list("starts_at", flat=True))
    assert listed(after - before) == shown
    booked.refresh_from_db()
    assert booked.status == "booked" and booked.slot_id == slot.pk  # it stays, to be moved
    assert not Slot.objects.filter(pk=slot.pk, is_offered=True).exists()


def test_the_last_friday_of_the_month(client, aphp, places, clock):
    role = places["role"]
    client.force_login(member("org_admin", aphp, places))
    url = f"/staff/agenda/practitioner/{role.public_id}/rules/new/"
    data = form(role, weekdays=["FR"], frequency="monthly", week_of_month="-1", confirm="1")
    client.post(url, data)
    days = {
        timezone.localtime(s, PARIS).date()
        for s in Slot.objects.filter(practitioner_role=role).values_list("starts_at", flat=True)
    }
    assert date(2027, 3, 26) in days and date(2027, 4, 30) in days
    assert all(d.weekday() == 4 and (d + timedelta(days=7)).month != d.month for d in days)


def test_a_wrong_period_is_refused_on_its_field_and_changes_nothing(client, aphp, places, clock):
    role = places["role"]
    client.force_login(member("secretary", aphp, places))
    url = f"/staff/agenda/practitioner/{role.public_id}/rules/new/"
    backwards = client.post(url, form(role, start_time="16:00", end_time="09:00", confirm="1"))
    assert backwards.status_code == 422
    assert "La plage doit fermer après son ouverture." in backwards.content.decode()
    no_day = client.post(url, form(role, weekdays=[], confirm="1"))
    assert no_day.status_code == 422 and 'href="#id_weekdays_0"' in no_day.content.decode()
    assert not AvailabilityRule.objects.filter(practitioner_role=role).exists()


def test_ending_a_period_previews_then_closes_its_free_slots(client, aphp, places, open_agenda):
    role = places["role"]
    rule, _report = open_agenda(role)
    client.force_login(member("secretary", aphp, places))
    url = f"/staff/agenda/practitioner/{role.public_id}/rules/{rule.public_id}/end/"
    count = Slot.objects.filter(practitioner_role=role, starts_at__gte=timezone.now()).count()
    page = client.get(url).content.decode()
    assert f"{count} ferment" in page
    assert Slot.objects.filter(practitioner_role=role).count() >= count  # nothing yet
    client.post(url)
    assert not Slot.objects.filter(practitioner_role=role, starts_at__gte=timezone.now()).exists()
    assert not AvailabilityRule.objects.get(pk=rule.pk).is_active


@pytest.mark.parametrize(
    "who", ["org_admin", "est_admin", "secretary", "secretary_b", "practitioner", "auditor"]
)
def test_the_rules_pages_with_every_role(client, aphp, places, open_agenda, who):
    role = places["role"]
    rule, _report = open_agenda(role, start_time=time(9), end_time=time(10))
    client.force_login(member(who, aphp, places))
    base = f"/staff/agenda/practitioner/{role.public_id}/rules/"
    expected = 200 if who in {"org_admin", "est_admin", "secretary"} else 404
    for url in (base, base + "new/", f"{base}{rule.public_id}/", f"{base}{rule.public_id}/end/"):
        assert client.get(url).status_code == expected, url
    answer = client.post(f"{base}{rule.public_id}/end/")
    assert answer.status_code == (302 if expected == 200 else 404)
