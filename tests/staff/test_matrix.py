"""The role matrix: every staff view, with every role, on the objects of the Pitié's neurosurgery
(an agenda, a free slot, appointments, an opening period, a blocked time). A view is open (200,
or 302 after an action) to the roles in its row and a 404 to every other, by page and by
address. A staff view added without its row here fails the first test."""

from datetime import timedelta

import pytest
from django.utils import timezone

from creneau.agenda.models import Slot
from creneau.agenda.services import absence_create
from creneau.booking.services import appointment_book
from creneau.staff import urls as staff_urls
from tests.staff.conftest import member

pytestmark = pytest.mark.django_db

# Both patients' names are those of tests.conftest: Martin, Nguyen.

ROLES = ["org_admin", "est_admin", "secretary", "secretary_b", "practitioner", "auditor"]
EVERYONE = set(ROLES)
SEES = {"org_admin", "est_admin", "secretary", "practitioner"}  # the department's patients
BOOKS = {"org_admin", "est_admin", "secretary"}  # the desk and the opening periods
AUDITS = {"org_admin", "auditor"}  # the access log

# name: (method, address, data, who may) — in the order they are tried (changes last).
MATRIX = {
    "home": ("get", "/staff/", None, EVERYONE),
    "patients": ("get", "/staff/patients/", None, EVERYONE - {"auditor"}),
    "access_log": ("get", "/staff/access-log/", None, AUDITS),
    "reports": ("get", "/staff/reports/", None, AUDITS),
    "practitioner": ("get", "/staff/agenda/practitioner/{role}/", None, SEES),
    "department": ("get", "/staff/agenda/department/{department}/", None, SEES),
    # The hospital's page opens to another department's secretary, with their agendas only.
    "establishment": (
        "get",
        "/staff/agenda/establishment/{establishment}/",
        None,
        SEES | {"secretary_b"},
    ),
    "appointment": ("get", "/staff/appointments/{first}/", None, SEES),
    "book": ("get", "/staff/book/?slot={free}", None, BOOKS),
    "cancel": ("get", "/staff/appointments/{first}/cancel/", None, BOOKS),
    "slip": ("get", "/staff/appointments/{first}/slip/", None, BOOKS),
    "block": ("get", "/staff/agenda/practitioner/{role}/block/", None, SEES),
    "blocked": ("get", "/staff/blocked/{block}/", None, SEES),
    "rules": ("get", "/staff/agenda/practitioner/{role}/rules/", None, BOOKS),
    "rule_new": ("get", "/staff/agenda/practitioner/{role}/rules/new/", None, BOOKS),
    "rule": ("get", "/staff/agenda/practitioner/{role}/rules/{rule}/", None, BOOKS),
    "rule_end": ("get", "/staff/agenda/practitioner/{role}/rules/{rule}/end/", None, BOOKS),
    "appointment_status": (
        "post",
        "/staff/appointments/{second}/status/",
        {"status": "arrived"},
        SEES,
    ),
    "move": ("post", "/staff/appointments/{first}/move/", {"slot": "{free}"}, BOOKS),
    "unblock": ("post", "/staff/blocked/{block}/open/", None, SEES),
}
# Signing in and out: before any role.
OUTSIDE = {"login", "logout"}


def test_every_staff_view_has_its_row():
    assert {pattern.name for pattern in staff_urls.urlpatterns} - OUTSIDE == set(MATRIX)


@pytest.fixture
def objects(places, open_agenda, public_scope, patient, other_patient):
    role = places["role"]
    rule, _report = open_agenda(role)
    slots = list(
        Slot.objects.filter(
            practitioner_role=role, starts_at__gte=timezone.now() + timedelta(days=2)
        ).order_by("starts_at")[:4]
    )
    first = appointment_book(scope=public_scope, patient=patient, slot=slots[0]).appointment
    second = appointment_book(scope=public_scope, patient=other_patient, slot=slots[1]).appointment
    block, _report = absence_create(
        practitioner_role=role,
        starts_at=slots[3].starts_at + timedelta(days=7),
        ends_at=slots[3].ends_at + timedelta(days=7),
        reason="Réunion",
    )
    return {
        "role": role.public_id,
        "department": places["department"].pk,
        "establishment": places["establishment"].public_id,
        "first": first.public_id,
        "second": second.public_id,
        "free": slots[2].public_id,
        "rule": rule.public_id,
        "block": block.public_id,
    }


@pytest.mark.parametrize("who", ROLES)
def test_every_staff_view_with_every_role(client, aphp, places, objects, who):
    client.force_login(member(who, aphp, places))
    answers = {}
    for name, (method, address, data, _allowed) in MATRIX.items():
        url = address.format(**objects)
        sent = {k: v.format(**objects) for k, v in (data or {}).items()}
        answer = getattr(client, method)(url, sent)
        answers[name] = answer.status_code
        if who not in SEES:  # whatever opens to them never shows the department's patients
            assert "MARTIN" not in answer.content.decode(), name
    expected = {
        name: ({200, 302} if who in allowed else {404})
        for name, (_m, _a, _d, allowed) in MATRIX.items()
    }
    wrong = {name: code for name, code in answers.items() if code not in expected[name]}
    assert wrong == {}, f"{who}: {wrong}"
