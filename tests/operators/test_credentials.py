"""How the organisation gives operators their ways in: agents with a second factor, API clients
with secrets shown once and stored hashed, rotated without downtime; and what it reads back:
the access log and every operator's statistics side by side."""

import base64
import io
import re
from datetime import timedelta

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from oauth2_provider.models import Application

from creneau.booking.models import Appointment
from creneau.booking.services import appointment_status_set
from creneau.channels.models import Agent, ApiClient
from creneau.channels.services import agent_create, api_client_revoke, api_client_rotate
from tests.conftest import NOW, OTHER_PATIENT, PATIENT
from tests.operators.conftest import (
    AGENT_PASSWORD,
    agent_login,
    api_for,
    otp_code,
    token_request,
)

pytestmark = pytest.mark.django_db


def test_a_rotated_secret_keeps_working_for_its_grace_period_only(client, alpha, clock):
    old = alpha.api.client_secret
    stored = Application.objects.get(client_id=alpha.api.client_id).client_secret
    assert old not in stored and stored.startswith("argon2")  # hashed, never kept in clear
    new = api_client_rotate(client=alpha.api.client, grace=timedelta(hours=2))
    assert new.client_id == alpha.api.client_id and new.client_secret != old
    # Both secrets open tokens while the operator's servers switch over.
    assert token_request(client, alpha.api, secret=old).status_code == 200
    assert token_request(client, alpha.api, secret=new.client_secret).status_code == 200
    clock.move_to(NOW + timedelta(hours=2, minutes=1))
    assert token_request(client, alpha.api, secret=old).json()["error"] == "invalid_client"
    assert token_request(client, alpha.api, secret=new.client_secret).status_code == 200
    assert token_request(client, alpha.api, secret="guess").json()["error"] == "invalid_client"


def test_a_revoked_client_gets_no_token_and_its_tokens_stop(client, alpha):
    api = api_for(client, alpha.api)
    assert api.get("/slots", {"specialty": "neurosurgery"}).status_code == 200
    api_client_revoke(client=alpha.api.client)
    assert api.get("/slots", {"specialty": "neurosurgery"}).status_code == 401
    assert token_request(client, alpha.api).json()["error"] == "invalid_client"


def test_an_operator_is_not_held_by_the_per_address_limits_but_by_its_quota(
    client, register_operator, settings
):
    settings.CRENEAU_RATE_LIMITS = {**settings.CRENEAU_RATE_LIMITS, "book": (2, 3600)}
    operator = register_operator("Centre Gamma", bookings_per_day=3)
    api = api_for(client, operator.api)
    slots = api.get("/slots", {"specialty": "neurosurgery", "limit": 10}).json()["items"]
    answers = []
    for number, slot in enumerate(slots[:4]):
        patient = {**PATIENT, "phone": f"06 12 34 56 {10 + number}"}
        answers.append(api.post("/appointments", {"slot": slot["id"], "patient": patient}))
    # Two bookings an hour per address would stop a patient; the call centre books its three a
    # day from one server, then meets its contract's quota.
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert answers[-1].json()["code"] == "quota_exceeded"


def test_the_admin_makes_agents_and_clients_and_shows_their_secrets_once(
    client, hospital_admin, alpha
):
    client.force_login(hospital_admin)
    added = client.post(
        "/admin/channels/agent/add/",
        {
            "operator": alpha.contract.operator.pk,
            "username": "agent-nouveau",
            "password": AGENT_PASSWORD,
            "email": "",
        },
        follow=True,
    )
    page = added.content.decode()
    uri = re.search(r"otpauth://totp/[^ \"<]+", page)
    assert uri and "secret=" in uri[0]
    codes = re.search(r"(?:Codes de secours|Backup codes)\s*:\s*((?:[a-z0-9]{8} ?)+)", page)
    agent = Agent.objects.get(user__username="agent-nouveau")
    assert agent.operator == alpha.contract.operator
    # The new agent signs in with a backup code, once.
    code = codes[1].split()[0]
    other = client.__class__()
    assert agent_login(other, agent, code=code).status_code == 302
    again = client.__class__()
    assert agent_login(again, agent, code=code).status_code == 200
    # An API client's secret is in the message once, and nowhere in the change page after.
    made = client.post(
        "/admin/channels/apiclient/add/",
        {"contract": alpha.contract.pk, "name": "Logiciel"},
        follow=True,
    ).content.decode()
    secret = re.search(r"(?:secret client|client secret) ([A-Za-z0-9_-]{20,})", made)[1]
    stored = ApiClient.objects.get(name="Logiciel")
    later = client.get(f"/admin/channels/apiclient/{stored.pk}/change/").content.decode()
    assert secret not in later and stored.application.client_id in later


def test_the_organisation_reads_the_access_log_and_all_operators_statistics(
    client, hospital_admin, alpha, beta, clock
):
    a, b = api_for(client, alpha.api), api_for(client, beta.api)
    slot = a.get("/slots", {"specialty": "neurosurgery"}).json()["items"]
    mine = a.post("/appointments", {"slot": slot[0]["id"], "patient": PATIENT}).json()
    b.post("/appointments", {"slot": slot[1]["id"], "patient": OTHER_PATIENT})
    b.post(
        "/operator/lookup",
        {"last_name": "Martin", "birth_date": PATIENT["birth_date"], "phone": PATIENT["phone"]},
    )
    appointment = Appointment.objects.get(public_id=mine["id"])
    clock.move_to(appointment.starts_at + timedelta(minutes=20))
    appointment_status_set(appointment=appointment, status="no_show")
    client.force_login(hospital_admin)
    day = appointment.starts_at.date().isoformat()
    stats = client.get(
        "/admin/channels/operatorcompany/statistics/", {"from": "2027-03-01", "to": day}
    )
    assert stats.status_code == 200
    html = stats.content.decode()
    assert "Centre d&#x27;appels Alpha" in html and "Téléaccueil Beta" in html
    csv = client.get(
        "/admin/channels/operatorcompany/statistics/",
        {"from": "2027-03-01", "to": day, "format": "csv"},
    ).content.decode()
    rows = [line.split(",") for line in csv.splitlines()[1:]]
    no_shows = {row[0]: int(row[6]) for row in rows if int(row[6])}
    assert no_shows == {"Centre d'appels Alpha": 1}
    log = client.get("/admin/booking/callerlookup/").content.decode()
    assert "Téléaccueil Beta" in log and "Martin" not in log
    # An operator's agent cannot open the organisation's pages.
    agent_client = client.__class__()
    agent_login(agent_client, alpha.agent)
    assert agent_client.get("/admin/channels/operatorcompany/statistics/").status_code == 302


def test_a_contract_without_moves_refuses_them_at_the_console(client, register_operator):
    operator = register_operator("Centre Delta", actions=("search", "book"))
    agent_login(client, operator.agent)
    refused = client.post(
        "/console/appointments/whatever/move/", {"slot": "x"}, headers={"HX-Request": "true"}
    )
    assert refused.status_code == 403 and "action_not_allowed" in refused.content.decode()


def test_sign_in_attempts_are_limited(client, alpha):
    answers = [agent_login(client, alpha.agent, code="000000") for _ in range(11)]
    assert [a.status_code for a in answers] == [200] * 10 + [429]
    # Even the right code waits until the window ends.
    assert agent_login(client, alpha.agent).status_code == 429
    assert client.get("/console/").status_code == 302
    # A colleague behind the same address signs in all the same.
    colleague = agent_create(
        operator=alpha.contract.operator, username="agent-collegue", password=AGENT_PASSWORD
    )
    assert agent_login(client, colleague).status_code == 302


def test_staff_sign_in_to_the_admin_with_a_one_time_code(hospital_admin):
    from django.core.management import call_command
    from django.test import Client as PlainClient

    browser = PlainClient()
    form = {"username": "it-admin", "password": "correct horse battery", "next": "/admin/"}
    # No second factor yet: the password alone opens nothing.
    refused = browser.post("/admin/login/", {**form, "otp_token": "123456"})
    assert refused.status_code == 200 and browser.get("/admin/").status_code == 302
    out = io.StringIO()
    call_command("staff-otp", "it-admin", stdout=out)
    secret = re.search(r"secret=([A-Z2-7]+)", out.getvalue())[1]
    backup = re.search(r"backup codes \(each works once\): (\S+)", out.getvalue())[1]
    device = TOTPDevice.objects.get(user=hospital_admin)
    assert base64.b32encode(device.bin_key).decode().rstrip("=") == secret
    signed = browser.post("/admin/login/", {**form, "otp_token": otp_code(hospital_admin)})
    assert signed.status_code == 302
    assert browser.get("/admin/").status_code == 200
    wrong = PlainClient().post("/admin/login/", {**form, "otp_token": "000000"})
    assert wrong.status_code == 200 and "errornote" in wrong.content.decode()
    # A backup code works once.
    other = PlainClient()
    assert other.post("/admin/login/", {**form, "otp_token": backup}).status_code == 302
    third = PlainClient()
    assert third.post("/admin/login/", {**form, "otp_token": backup}).status_code == 200
