"""Slot generation from rules: idempotent, safe for booked slots, right across clock changes."""

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creneau.agenda.models import Slot
from creneau.agenda.services import (
    AgendaError,
    absence_create,
    availability_rule_save,
    slots_generate,
)
from creneau.booking.services import appointment_book
from creneau.directory.identifiers import new_public_ids
from creneau.directory.models import VisitType
from tests.cli import run_creneau
from tests.conftest import NOW

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")


def local_starts(role, **filters):
    return [
        s.starts_at.astimezone(PARIS)
        for s in Slot.objects.filter(practitioner_role=role, **filters).order_by("starts_at")
    ]


def test_weekday_mornings_give_six_slots_a_day_at_the_same_local_times_across_the_clock_change(
    pitie_neurosurgeon, open_agenda
):
    _rule, report = open_agenda(pitie_neurosurgeon)
    starts = local_starts(pitie_neurosurgeon)
    by_day = Counter(s.date() for s in starts)
    # From Monday 15 March (after now) to four weeks on; Easter Monday 29 March is a holiday.
    assert date(2027, 3, 29) not in by_day
    assert set(by_day.values()) == {6}
    assert len(by_day) == 19
    assert report.created == len(starts) == 19 * 6
    assert {(s.hour, s.minute) for s in starts} == {
        (9, 0),
        (9, 30),
        (10, 0),
        (10, 30),
        (11, 0),
        (11, 30),
    }
    utc_hours = {s.astimezone(UTC).hour for s in starts if s.hour == 9 and s.minute == 0}
    assert utc_hours == {8, 7}  # winter time, then summer time


def test_generating_again_changes_nothing(pitie_neurosurgeon, open_agenda):
    open_agenda(pitie_neurosurgeon)
    before = list(
        Slot.objects.filter(practitioner_role=pitie_neurosurgeon).values_list(
            "public_id", "starts_at"
        )
    )
    report = slots_generate(roles=[pitie_neurosurgeon], horizon_weeks=4)
    after = list(
        Slot.objects.filter(practitioner_role=pitie_neurosurgeon).values_list(
            "public_id", "starts_at"
        )
    )
    assert (report.created, report.updated, report.removed) == (0, 0, 0)
    assert report.unchanged == len(before)
    assert sorted(before) == sorted(after)


def test_each_nightly_roll_opens_only_what_lies_beyond_the_last_one(
    pitie_neurosurgeon, open_agenda, clock
):
    from creneau.operations.jobs import nightly_roll

    open_agenda(pitie_neurosurgeon)  # four weeks, weekday mornings, six slots a morning
    first = nightly_roll(horizon_weeks=4).slots  # no roll before: everything compared
    assert (first.created, first.unchanged) == (0, len(local_starts(pitie_neurosurgeon)))

    clock.shift(timedelta(days=7))
    night = nightly_roll(horizon_weeks=4).slots
    # The new week only (Monday 12 to Friday 16 April), and nothing read again before it.
    assert (night.created, night.unchanged, night.removed) == (30, 0, 0)
    assert local_starts(pitie_neurosurgeon)[-1] == datetime(2027, 4, 16, 11, 30, tzinfo=PARIS)
    assert nightly_roll(horizon_weeks=4).slots.created == 0  # twice the same night

    clock.shift(timedelta(days=14))  # two nights missed: both weeks opened at once
    assert nightly_roll(horizon_weeks=4).slots.created == 60
    # A longer horizon: one more week, 3 to 7 May, but for Ascension Thursday (6 May).
    assert nightly_roll(horizon_weeks=5).slots.created == 24
    starts = local_starts(pitie_neurosurgeon)
    assert len(starts) == len(set(starts)) and starts[-1].date() == date(2027, 5, 7)


def test_a_slot_needs_its_role_and_visit_type_and_they_cannot_go_while_it_stays(
    pitie_neurosurgeon, open_agenda
):
    """Whatever SQL is run, generation's bulk COPY included: on PostgreSQL checked by the
    triggers of migration 0015 (at once), on SQLite by its foreign keys (deferred to the
    commit: ``check_constraints`` asks now)."""
    from django.db import IntegrityError, connection

    from creneau.agenda.services import _insert_slots
    from creneau.directory.models import PractitionerRole

    def refused(change) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            change()
            connection.check_constraints(table_names=["agenda_slot"])

    def delete(table: str, row: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE id = %s", [row])

    open_agenda(pitie_neurosurgeon)
    slot = Slot.objects.filter(practitioner_role=pitie_neurosurgeon).order_by("pk").first()
    count = Slot.objects.count()
    for column in ("practitioner_role_id", "visit_type_id"):
        refused(lambda column=column: Slot.objects.filter(pk=slot.pk).update(**{column: 987_654}))
    nobody = PractitionerRole(
        pk=987_654,
        practitioner_id=pitie_neurosurgeon.practitioner_id,
        establishment_id=pitie_neurosurgeon.establishment_id,
    )
    at = slot.starts_at + timedelta(days=400)
    spec = (at + timedelta(minutes=30), 600, 1, slot.rule_id, at, at)
    for role, visit_type in ((nobody, slot.visit_type_id), (pitie_neurosurgeon, 987_654)):
        refused(lambda r=role, v=visit_type: _insert_slots([(r, v, slot.specialty_id, at, spec)]))
    refused(lambda: delete("directory_practitionerrole", pitie_neurosurgeon.pk))
    refused(lambda: delete("directory_visittype", slot.visit_type_id))
    assert Slot.objects.count() == count
    assert Slot.objects.get(pk=slot.pk).practitioner_role_id == pitie_neurosurgeon.pk


def test_a_public_id_drawn_twice_is_drawn_again(pitie_neurosurgeon, open_agenda, monkeypatch):
    """Two slots made in the same second share their ids' first six characters: should the
    ten random ones collide too, the unique index refuses the batch and it draws again."""
    import creneau.agenda.services as services

    open_agenda(pitie_neurosurgeon, horizon_weeks=1)
    taken = Slot.objects.filter(practitioner_role=pitie_neurosurgeon).first().public_id
    draws = []

    def unlucky(count: int) -> list[str]:
        draws.append(count)
        fresh = new_public_ids(count)
        return [taken, *fresh[1:]] if len(draws) == 1 else fresh

    monkeypatch.setattr(services, "new_public_ids", unlucky)
    report = slots_generate(roles=[pitie_neurosurgeon], horizon_weeks=4)
    assert report.created > 0 and len(draws) == 2
    ids = list(Slot.objects.filter(practitioner_role=pitie_neurosurgeon).values_list("public_id"))
    assert len(ids) == len(set(ids)) == 19 * 6


def test_a_narrower_rule_removes_free_slots_and_reports_the_booked_one_it_no_longer_covers(
    pitie_neurosurgeon, open_agenda, public_scope, patient
):
    rule, _ = open_agenda(pitie_neurosurgeon)
    first = (
        Slot.objects.filter(practitioner_role=pitie_neurosurgeon, local_minute=9 * 60)
        .filter(bookable_until__gt=NOW)
        .order_by("starts_at")
        .first()
    )
    booked = appointment_book(scope=public_scope, slot=first, patient=patient).appointment
    _rule, report = open_agenda(pitie_neurosurgeon, start_time=time(10), rule=rule)
    assert [s.public_id for s in report.orphaned] == [first.public_id]
    first.refresh_from_db()
    assert first.booked == 1 and not first.is_offered
    booked.refresh_from_db()
    assert booked.status == "booked" and booked.slot_id == first.pk
    offered = local_starts(pitie_neurosurgeon, is_offered=True)
    assert min((s.hour, s.minute) for s in offered) == (10, 0)
    assert report.removed == 19 * 2 - 1


def test_leave_and_a_department_closure_take_their_slots_out(pitie_neurosurgeon, open_agenda):
    open_agenda(pitie_neurosurgeon)
    leave_start = datetime(2027, 3, 22, 0, 0, tzinfo=PARIS)
    absence_create(
        practitioner=pitie_neurosurgeon.practitioner,
        starts_at=leave_start,
        ends_at=leave_start + timedelta(days=5),
        reason="congrés",
    )
    days = {s.date() for s in local_starts(pitie_neurosurgeon)}
    assert not days & {date(2027, 3, 22) + timedelta(days=n) for n in range(5)}
    absence_create(
        department=pitie_neurosurgeon.department,
        starts_at=datetime(2027, 4, 1, 10, 0, tzinfo=PARIS),
        ends_at=datetime(2027, 4, 1, 23, 0, tzinfo=PARIS),
    )
    april_first = [s for s in local_starts(pitie_neurosurgeon) if s.date() == date(2027, 4, 1)]
    assert [(s.hour, s.minute) for s in april_first] == [(9, 0), (9, 30)]


def test_every_other_week_first_monday_and_group_sessions(pitie_neurosurgeon, open_agenda):
    open_agenda(
        pitie_neurosurgeon,
        recurrence="FREQ=WEEKLY;INTERVAL=2;BYDAY=TU",
        starts_on=date(2027, 3, 2),
        horizon_weeks=6,
    )
    assert sorted({s.date() for s in local_starts(pitie_neurosurgeon)}) == [
        date(2027, 3, 16),
        date(2027, 3, 30),
        date(2027, 4, 13),
    ]
    role = pitie_neurosurgeon
    rule, _ = open_agenda(
        role,
        codes=("neurosurgery-second-opinion",),
        recurrence="FREQ=MONTHLY;BYDAY=1MO",
        start_time=time(14),
        end_time=time(15),
        slot_minutes=60,
        capacity=6,
        horizon_weeks=10,
    )
    group = Slot.objects.filter(rule=rule).order_by("starts_at")
    assert [s.starts_at.astimezone(PARIS).date() for s in group] == [
        date(2027, 4, 5),
        date(2027, 5, 3),
    ]
    assert {s.capacity for s in group} == {6}


def test_a_bad_rule_is_refused_with_the_field_named_and_nothing_changes(
    pitie_neurosurgeon, open_agenda
):
    open_agenda(pitie_neurosurgeon)
    count = Slot.objects.count()
    with pytest.raises(AgendaError) as refused:
        open_agenda(pitie_neurosurgeon, recurrence="FREQ=SOMETIMES")
    assert refused.value.field == "recurrence"
    with pytest.raises(AgendaError) as refused:
        open_agenda(pitie_neurosurgeon, start_time=time(12), end_time=time(9))
    assert refused.value.field == "end_time"
    assert Slot.objects.count() == count


def test_a_visit_type_of_another_organisation_cannot_be_offered(pitie_neurosurgeon, clock):
    private_visit = VisitType.objects.filter(organisation__is_public=False).first()
    with pytest.raises(AgendaError) as refused:
        availability_rule_save(
            practitioner_role=pitie_neurosurgeon,
            visit_types=[private_visit],
            starts_on=date(2027, 3, 1),
            start_time=time(9),
            end_time=time(12),
        )
    assert refused.value.field == "visit_types"


def test_the_command_generates_and_lists_orphaned_appointments(tmp_path):
    from tests.cli import demo_copied, hub_env

    env = hub_env(tmp_path, CRENEAU_HORIZON_WEEKS="2")
    demo_copied(tmp_path, env)
    assert run_creneau("demo", "--no-serve", "--port", "8799", env=env).returncode == 0
    answer = run_creneau("slots", "generate", "--horizon-weeks", "2", env=env)
    assert answer.returncode == 0, answer.stderr
    assert " 0 slots created" in answer.stdout and "unchanged" in answer.stdout
    refused = run_creneau("slots", "generate", "--horizon-weeks", "500", env=env)
    assert refused.returncode != 0 and "--horizon-weeks" in refused.stderr
    empty = run_creneau("slots", "generate", env=hub_env(tmp_path / "new"))
    assert empty.returncode != 0 and "creneau migrate" in empty.stderr
    assert "Traceback" not in empty.stderr


class _Rollback(Exception):
    pass


edits = st.lists(
    st.tuples(
        st.integers(min_value=7, max_value=11),  # opening hour
        st.integers(min_value=1, max_value=5),  # hours open
        st.sets(st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]), min_size=1),
        st.integers(min_value=0, max_value=3),  # bookings made before the next edit
    ),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=edits, now_offset_days=st.integers(min_value=0, max_value=240))
def test_rule_edits_never_duplicate_lose_booked_or_leave_stale_slots(
    pitie_neurosurgeon, public_scope, patient, edits, now_offset_days
):
    now = datetime(2027, 1, 4, 6, 0, tzinfo=UTC) + timedelta(days=now_offset_days, hours=5)
    visit_type = VisitType.objects.get(
        organisation=pitie_neurosurgeon.establishment.organisation, code="neurosurgery-first"
    )
    try:
        with transaction.atomic():
            rule = None
            booked_ids: set[int] = set()
            for opens, hours, weekdays, bookings in edits:
                rule, _ = availability_rule_save(
                    practitioner_role=pitie_neurosurgeon,
                    visit_types=[visit_type],
                    recurrence="FREQ=WEEKLY;BYDAY=" + ",".join(sorted(weekdays)),
                    starts_on=date(2027, 1, 1),
                    start_time=time(opens),
                    end_time=time(opens + hours),
                    rule=rule,
                    horizon_weeks=3,
                    now=now,
                )
                slots = list(Slot.objects.filter(practitioner_role=pitie_neurosurgeon))
                keys = [(s.visit_type_id, s.starts_at) for s in slots]
                assert len(keys) == len(set(keys))
                assert booked_ids <= {s.pk for s in slots if s.booked}
                for slot in slots:
                    local = slot.starts_at.astimezone(PARIS)
                    covered = (
                        opens * 60 <= slot.local_minute
                        and slot.local_minute + 30 <= (opens + hours) * 60
                        and local.strftime("%a")[:2].upper() in weekdays
                    )
                    if slot.starts_at >= now and slot.is_offered:
                        assert covered
                    if not covered and slot.starts_at >= now:
                        assert slot.booked and not slot.is_offered
                free = [
                    s for s in slots if s.is_offered and not s.booked and s.bookable_until > now
                ]
                for slot in free[:bookings]:
                    appointment_book(scope=public_scope, slot=slot, patient=patient, now=now)
                    booked_ids.add(slot.pk)
            raise _Rollback
    except _Rollback:
        pass
