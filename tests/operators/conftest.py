"""Two call centres under contract over overlapping perimeters, their API clients and agents.

Alpha reaches the Pitié-Salpêtrière only; Beta reaches the Pitié-Salpêtrière and Lariboisière.
So an appointment at Lariboisière is beyond Alpha whoever booked it, and one at the Pitié
booked by Beta is within Alpha's perimeter but not Alpha's to see unless the caller asks."""

import base64
import json
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote_plus

import pytest
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from creneau.channels.models import Agent, Contract
from creneau.channels.services import (
    AgentCredentials,
    ClientSecret,
    agent_create,
    api_client_create,
    operator_register,
    perimeter_create,
)
from tests.conftest import role_in

AGENT_PASSWORD = "correct horse battery staple 7"


def basic(client_id: str, secret: str) -> str:
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def token_request(client, credentials: ClientSecret, secret: str | None = None, **data):
    return client.post(
        "/oauth/token/",
        {"grant_type": "client_credentials", **data},
        HTTP_AUTHORIZATION=basic(credentials.client_id, secret or credentials.client_secret),
    )


@dataclass
class Api:
    """An operator's software: every call carries its bearer token."""

    client: object
    token: str

    def headers(self, **more) -> dict:
        return {"Authorization": f"Bearer {self.token}", **more}

    def get(self, path: str, params: dict | None = None, **headers):
        return self.client.get(f"/api/v1{path}", params or {}, headers=self.headers(**headers))

    def post(self, path: str, body: dict | None = None, **headers):
        return self.client.post(
            f"/api/v1{path}",
            json.dumps(body or {}),
            content_type="application/json",
            headers=self.headers(**headers),
        )


def api_for(client, credentials: ClientSecret, **data) -> Api:
    answer = token_request(client, credentials, **data)
    assert answer.status_code == 200, answer.content
    return Api(client=client, token=answer.json()["access_token"])


def otp_code(user) -> str:
    device = TOTPDevice.objects.get(user=user)
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def agent_login(client, agent: AgentCredentials | Agent, code: str | None = None):
    user = (agent.agent if isinstance(agent, AgentCredentials) else agent).user
    return client.post(
        "/console/login/",
        {
            "username": user.username,
            "password": AGENT_PASSWORD,
            "otp_token": code or otp_code(user),
        },
    )


@dataclass
class Operator:
    contract: Contract
    api: ClientSecret
    agent: AgentCredentials

    @property
    def key(self) -> str:
        return self.contract.channel.key


def _operator(aphp, name: str, hospitals: list[str], **terms) -> Operator:
    from creneau.directory.models import Establishment

    perimeter = perimeter_create(
        organisation=aphp,
        name=f"Périmètre {name}",
        establishments=Establishment.objects.filter(name__in=hospitals),
    )
    contract = operator_register(
        organisation=aphp,
        name=name,
        kind=terms.pop("kind", "call_centre"),
        perimeter=perimeter,
        starts_on=date(2027, 3, 1),
        ends_on=date(2027, 12, 31),
        **terms,
    )
    slug = name.split()[-1].lower()
    return Operator(
        contract=contract,
        api=api_client_create(contract=contract, name=f"{name} servers"),
        agent=agent_create(
            operator=contract.operator, username=f"agent-{slug}", password=AGENT_PASSWORD
        ),
    )


PITIE = "Hôpital de la Pitié-Salpêtrière"
LARIBOISIERE = "Hôpital Lariboisière"


@pytest.fixture
def lariboisiere_neurosurgeon(db):
    return role_in(LARIBOISIERE, "neurosurgery")


@pytest.fixture
def agendas(open_agenda, pitie_neurosurgeon, lariboisiere_neurosurgeon):
    open_agenda(pitie_neurosurgeon)
    open_agenda(lariboisiere_neurosurgeon)


@pytest.fixture
def alpha(aphp, agendas) -> Operator:
    return _operator(aphp, "Centre d'appels Alpha", [PITIE])


@pytest.fixture
def beta(aphp, agendas) -> Operator:
    return _operator(aphp, "Téléaccueil Beta", [PITIE, LARIBOISIERE])


@pytest.fixture
def register_operator(aphp, agendas):
    return lambda name, hospitals=(PITIE,), **terms: _operator(aphp, name, list(hospitals), **terms)
