"""The API's search in one hand-written statement (booking.search_sql) finds exactly what the
ORM's reference search (booking.queries) finds: the same slots in the same order, page after
page, for every kind of channel and query, with slots held, booked, blocked, closed to new
patients, reserved to the SAS or in an external agenda gone stale. And the API's answer, built
without the schema's validation, still validates against it."""

from datetime import time, timedelta

import pytest

from creneau.agenda.models import AgendaSource, Slot
from creneau.booking import queries, search_sql
from creneau.booking.api import SlotPage
from creneau.channels import services as channels
from creneau.channels.models import Channel, PlatformVisibility
from creneau.channels.queries import channel_scope_for_contract, channel_scope_for_key
from creneau.directory.models import Department, Specialty, VisitType
from tests.conftest import NOW, role_in
from tests.fhir.conftest import register

pytestmark = pytest.mark.django_db


def later_slots(role, code: str):
    """A role's slots of one visit type from tomorrow on (today's are too close to book)."""
    return Slot.objects.filter(
        practitioner_role=role, visit_type__code=code, starts_at__gte=NOW + timedelta(days=1)
    ).order_by("starts_at")


@pytest.fixture
def agendas(aphp, pitie_neurosurgeon, private_neurosurgeon, open_agenda):
    codes = ("neurosurgery-first", "neurosurgery-spine", "neurosurgery-second-opinion")
    open_agenda(pitie_neurosurgeon, codes=codes)
    open_agenda(private_neurosurgeon)
    other = role_in("Hôpital Necker-Enfants malades", "neurosurgery")
    open_agenda(other, codes=codes[:2], start_time=time(14), end_time=time(17))
    slots = later_slots(pitie_neurosurgeon, "neurosurgery-first")
    # Full, held (live and expired), blocked by a hold elsewhere, not offered, overlapped.
    Slot.objects.filter(pk=slots[0].pk).update(booked=1)
    Slot.objects.filter(pk=slots[1].pk).update(held=1, held_until=NOW + timedelta(minutes=5))
    Slot.objects.filter(pk=slots[2].pk).update(held=1, held_until=NOW - timedelta(minutes=5))
    Slot.objects.filter(pk=slots[3].pk).update(blocked_until=NOW + timedelta(minutes=5))
    Slot.objects.filter(pk=slots[4].pk).update(is_offered=False)
    Slot.objects.filter(pk=slots[5].pk).update(overlaps=1)
    # The second opinion is reserved to the SAS; Necker's agenda is external and gone stale.
    sas = register(aphp, "sas", "Service d'accès aux soins", certificate_subject="CN=sas")
    opinion = VisitType.objects.get(organisation=aphp, code="neurosurgery-second-opinion")
    PlatformVisibility.objects.create(platform=sas.platform, visit_type=opinion, audience="SNP")
    AgendaSource.objects.create(
        practitioner_role=other, kind="ics", url="https://agenda.example/x.ics",
        stale_after=NOW - timedelta(minutes=1),
    )  # fmt: skip
    department = Department.objects.get(pk=pitie_neurosurgeon.department_id)
    narrowed = {
        "department": channels.perimeter_create(
            organisation=aphp, name="Département", establishments=[department.establishment],
            departments=[department],
        ),
        "role": channels.perimeter_create(
            organisation=aphp, name="Un praticien", establishments=[department.establishment],
            practitioner_roles=[pitie_neurosurgeon],
        ),
    }  # fmt: skip
    scopes = {
        "public site": channel_scope_for_key(None),
        "sas": channel_scope_for_contract(sas.contract),
    }
    for name, perimeter in narrowed.items():
        channel = channels.channel_create(
            organisation=aphp, name=name, kind=Channel.Kind.EMBED, perimeter=perimeter
        )
        scopes[name] = channel_scope_for_key(channel.key)
    return scopes, pitie_neurosurgeon


def criteria(role) -> list[dict]:
    neurosurgery = Specialty.objects.get(code="neurosurgery")
    first = VisitType.objects.get(
        organisation=role.establishment.organisation, code="neurosurgery-first"
    )
    opinion = VisitType.objects.get(
        organisation=role.establishment.organisation, code="neurosurgery-second-opinion"
    )
    return [
        {"specialty": neurosurgery},
        {"visit_type": first},
        {"visit_type": opinion},
        {"specialty": neurosurgery, "establishment": role.establishment},
        {"specialty": neurosurgery, "practitioner": role.practitioner},
        {"specialty": neurosurgery, "from_minute": 10 * 60, "to_minute": 12 * 60},
        {"specialty": neurosurgery, "starts_after": NOW + timedelta(days=8)},
        {"specialty": neurosurgery, "starts_before": NOW + timedelta(days=10)},
        {
            "specialty": neurosurgery,
            "near": queries.Near(latitude=48.8397, longitude=2.3644, within_km=2),
        },
    ]  # fmt: skip


def pages(find, limit: int = 7) -> list[list[str]]:
    found, cursor = [], None
    while True:
        ids, cursor = find(cursor, limit)
        found.append(ids)
        if not cursor or len(found) > 40:
            return found


def test_the_sql_search_finds_what_the_reference_search_finds(agendas):
    scopes, role = agendas
    compared = 0
    for name, scope in scopes.items():
        for criterion in criteria(role):

            def reference(cursor, limit, scope=scope, criterion=criterion):
                page = queries.slots_search(scope, limit=limit, now=NOW, cursor=cursor, **criterion)
                return [slot.public_id for slot in page.slots], page.next_cursor

            def by_sql(cursor, limit, scope=scope, criterion=criterion):
                query = queries.SlotQuery(cursor=cursor, **criterion)
                _distances, within = queries.distances_near(scope, query.near)
                found, next_cursor = search_sql.search(
                    scope, query, now=NOW, limit=limit, establishment_ids=within
                )
                return [slot.public_id for slot in found], next_cursor

            expected = pages(reference)
            assert pages(by_sql) == expected, (name, criterion)
            compared += sum(len(page) for page in expected)
    assert compared > 500  # the cases above do find slots


def found(scope, **criterion) -> list[str]:
    query = queries.SlotQuery(**criterion)
    return [slot.public_id for slot in search_sql.search(scope, query, now=NOW, limit=500)[0]]


def test_what_the_sql_search_leaves_out(agendas):
    scopes, role = agendas
    first, opinion = criteria(role)[1], criteria(role)[2]
    public = set(found(scopes["public site"], **first))
    shown = [slot.public_id in public for slot in later_slots(role, "neurosurgery-first")[:8]]
    # Booked, held, (an expired hold: free), blocked, not offered, overlapped, then free.
    assert shown == [False, False, True, False, False, False, True, True]
    assert not found(scopes["public site"], **opinion)
    assert found(scopes["sas"], **opinion)


def test_the_api_answer_keeps_its_schema(client, agendas):
    answer = client.get("/api/v1/slots", {"specialty": "neurosurgery", "near": "48.8397,2.3644"})
    assert answer.status_code == 200
    page = SlotPage.model_validate(answer.json())
    assert page.items and all(item.distance_km is not None for item in page.items)
    english = client.get(
        "/api/v1/slots", {"visit_type": "neurosurgery-first"}, headers={"Accept-Language": "en"}
    ).json()
    first = VisitType.objects.get(code="neurosurgery-first", organisation__runs_hub=True)
    assert english["items"][0]["visit_type"]["label"] == first.label_en != first.label_fr
