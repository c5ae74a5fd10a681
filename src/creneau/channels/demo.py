"""The demo's operators: two call centres and one partner platform, each under contract, each
with an agent (password and one-time codes) and an API client, written to the demo's
credentials. Their perimeters differ, so that each sees a different part of the network."""

import secrets
from dataclasses import asdict
from datetime import date

from django.conf import settings
from django.db import transaction
from django.utils import translation

from creneau.channels.models import Agent, ApiClient, Contract, Perimeter
from creneau.channels.oauth import contract_scopes
from creneau.channels.services import (
    agent_create,
    agent_second_factor_reset,
    api_client_create,
    operator_register,
    perimeter_create,
)
from creneau.directory.models import Organisation

# (name, kind, username, perimeter name, establishments' postcode prefixes or None for all of
# the organisation's, actions)
DEMO_OPERATORS = [
    (
        "Accueil Santé Direct",
        "call_centre",
        "agent.asd",
        "Accueil Santé Direct — tout le réseau",
        None,
        ("search", "book", "move", "cancel"),
    ),
    (
        "Téléaccueil Francilien",
        "call_centre",
        "agent.taf",
        "Téléaccueil Francilien — Paris intra-muros",
        ("75",),
        ("search", "book", "move", "cancel"),
    ),
    (
        "Rendez-vous Partenaire",
        "partner",
        "agent.rvp",
        "Rendez-vous Partenaire — tout le réseau",
        None,
        ("search", "book"),
    ),
]


def _perimeter(organisation: Organisation, name: str, prefixes) -> Perimeter:
    existing = Perimeter.objects.filter(organisation=organisation, name=name).first()
    if existing is not None:
        return existing
    establishments = organisation.establishments.filter(is_active=True)
    if prefixes:
        establishments = [e for e in establishments if e.postcode.startswith(prefixes)]
    with translation.override(settings.LANGUAGE_CODE):
        return perimeter_create(
            organisation=organisation, name=name, establishments=establishments, via="demo"
        )


@transaction.atomic
def demo_operators_ensure(*, organisation: Organisation, previous: list[dict]) -> list[dict]:
    """Register the demo operators once; on each run, give each agent a fresh second factor
    (so the codes in the credentials always work) and keep the API secrets already written."""
    kept = {entry["name"]: entry for entry in previous}
    written = []
    for name, kind, username, perimeter_name, prefixes, actions in DEMO_OPERATORS:
        contract = Contract.objects.filter(operator__name=name).select_related("channel").first()
        if contract is None:
            contract = operator_register(
                organisation=organisation,
                name=name,
                kind=kind,
                perimeter=_perimeter(organisation, perimeter_name, prefixes),
                starts_on=date(2026, 1, 1),
                actions=actions,
                bookings_per_day=1000,
                requests_per_minute=1200,
                via="demo",
            )
        before = kept.get(name, {})
        agent = Agent.objects.filter(user__username=username).first()
        password = before.get("agent", {}).get("password") or secrets.token_urlsafe(12)
        if agent is None:
            credentials = agent_create(
                operator=contract.operator, username=username, password=password
            )
        else:
            agent.user.set_password(password)
            agent.user.save(update_fields=["password"])
            credentials = agent_second_factor_reset(agent=agent)
        api = _api_client(contract, name, before.get("api_client", {}))
        written.append(
            {
                "name": name,
                "kind": kind,
                "channel_key": contract.channel.key,
                "perimeter": contract.channel.perimeter.name,
                "actions": [a for a in Contract.ACTIONS if contract.allows(a)],
                "agent": {
                    "username": username,
                    "password": password,
                    **asdict(credentials.factor),
                    "console": "/console/",
                },
                "api_client": api,
            }
        )
    return written


def _api_client(contract: Contract, name: str, before: dict) -> dict:
    """The API client written in the credentials before, if it still exists; else a new one."""
    kept = {k: before[k] for k in ("client_id", "client_secret") if k in before}
    if not ApiClient.objects.filter(
        contract=contract, application__client_id=kept.get("client_id")
    ).exists():
        made = api_client_create(contract=contract, name=f"{name} — serveurs")
        kept = {"client_id": made.client_id, "client_secret": made.client_secret}
    return {
        **kept,
        "token_url": "/oauth/token/",
        "grant_type": "client_credentials",
        "scopes": contract_scopes(contract),
    }


# (name, kind, what it does) of the demo's publishing platforms, over the whole network.
SAS_SUBJECT = "CN=sas.demo.creneau,OU=SAS,O=Agence du Numerique en Sante,C=FR"
DEMO_PLATFORMS = [
    ("Service d'accès aux soins (démo)", "sas"),
    ("Trouve-un-rendez-vous (démo)", "smart_finder"),
    ("Agenda Partenaire FHIR (démo)", "fhir_partner"),
]


@transaction.atomic
def demo_platforms_ensure(*, organisation: Organisation, previous: list[dict]) -> list[dict]:
    """The SAS (recognised by its certificate behind the proxy, or OAuth2), a SMART finder and
    a FHIR partner, each under contract over the whole network, with an API client."""
    kept = {entry["name"]: entry for entry in previous}
    perimeter = _perimeter(organisation, "Plateformes — tout le réseau", None)
    written = []
    for name, kind in DEMO_PLATFORMS:
        contract = Contract.objects.filter(operator__name=name).first()
        if contract is None:
            contract = operator_register(
                organisation=organisation,
                name=name,
                kind=kind,
                perimeter=perimeter,
                starts_on=date(2026, 1, 1),
                bookings_per_day=1000,
                requests_per_minute=1200,
                certificate_subject=SAS_SUBJECT if kind == "sas" else "",
                regulator_identifier="810000000042" if kind == "sas" else "",
                via="demo",
            )
        api = _api_client(contract, name, kept.get(name, {}))
        entry = {
            "name": name,
            "kind": kind,
            "channel_key": contract.channel.key,
            "perimeter": contract.channel.perimeter.name,
            "client_id": api["client_id"],
            "client_secret": api["client_secret"],
            "token_url": api["token_url"],
            "scopes": api["scopes"],
        }
        if kind == "sas":
            entry["certificate_subject"] = SAS_SUBJECT
            entry["certificate_header"] = settings.CRENEAU_CLIENT_CERT_HEADER
        written.append(entry)
    return written
