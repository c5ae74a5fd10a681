"""Platforms under contract: the national SAS (recognised by its client certificate behind the
TLS proxy, or by OAuth2), a SMART finder and a FHIR partner, over the AP-HP hospitals."""

import json
from dataclasses import dataclass
from datetime import date

import pytest
from django.test import override_settings

from creneau.channels.models import Contract, Platform
from creneau.channels.services import ClientSecret, api_client_create, operator_register
from creneau.directory.models import Establishment
from tests.operators.conftest import token_request

SAS_SUBJECT = "CN=sas.sante.fr,OU=SAS,O=Agence du Numerique en Sante,C=FR"
CERT_HEADER = "HTTP_X_SSL_CLIENT_S_DN"
PROXY = "10.0.0.7"
FHIR = "application/fhir+json"


@dataclass
class PlatformUnderContract:
    contract: Contract
    api: ClientSecret

    @property
    def platform(self) -> Platform:
        return Platform.objects.get(contract=self.contract)

    @property
    def key(self) -> str:
        return self.contract.channel.key


def register(aphp, kind: str, name: str, **settings) -> PlatformUnderContract:
    from creneau.channels.services import perimeter_create

    perimeter = perimeter_create(
        organisation=aphp,
        name=f"Périmètre {name}",
        establishments=Establishment.objects.filter(organisation=aphp),
    )
    contract = operator_register(
        organisation=aphp,
        name=name,
        kind=kind,
        perimeter=perimeter,
        starts_on=date(2026, 1, 1),
        actions=["search", "book", "move", "cancel"],
        **settings,
    )
    return PlatformUnderContract(
        contract=contract, api=api_client_create(contract=contract, name=f"{name} servers")
    )


@pytest.fixture
def sas(aphp) -> PlatformUnderContract:
    return register(
        aphp,
        "sas",
        "Service d'accès aux soins",
        certificate_subject=SAS_SUBJECT,
        regulator_identifier="810000000001",
    )


@pytest.fixture
def partner(aphp) -> PlatformUnderContract:
    return register(aphp, "fhir_partner", "Agenda Partenaire")


@pytest.fixture
def behind_proxy():
    with override_settings(CRENEAU_TRUSTED_PROXIES=(__import__("ipaddress").ip_network(PROXY),)):
        yield


class Fhir:
    """A FHIR client: the SAS through the proxy with its certificate, or anyone with a token."""

    def __init__(self, client, headers: dict | None = None, meta: dict | None = None):
        self.client = client
        self.headers = headers or {}
        self.meta = meta or {}

    def get(self, path: str, params=None, **headers):
        return self.client.get(
            f"/fhir/{path}",
            params or {},
            headers={"Accept": FHIR, **self.headers, **headers},
            **self.meta,
        )

    def json(self, path: str, params=None, status: int = 200):
        answer = self.get(path, params)
        assert answer.status_code == status, answer.content[:2000]
        assert answer["Content-Type"].startswith(FHIR)
        return json.loads(answer.content)


@pytest.fixture
def sas_client(client, sas, behind_proxy) -> Fhir:
    return Fhir(client, meta={"REMOTE_ADDR": PROXY, CERT_HEADER: SAS_SUBJECT})


def bearer(client, platform: PlatformUnderContract) -> Fhir:
    answer = token_request(client, platform.api)
    assert answer.status_code == 200, answer.content
    return Fhir(client, headers={"Authorization": f"Bearer {answer.json()['access_token']}"})
