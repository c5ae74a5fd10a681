"""Schemathesis against the API's own OpenAPI document (issue 14, point 13): generated requests,
stateless and stateful, as a visitor and with an operator's token, on SQLite and PostgreSQL.
No answer may be a server error or break the document (status code, content type, body,
headers)."""

import os
import sys
from collections import Counter
from contextlib import contextmanager

import hypothesis
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from schemathesis import checks as st_checks

from creneau.wsgi import application
from tests.operators.conftest import token_request

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)

# The answers must keep the document's promises. Not checked: that every schema-valid request
# is accepted (a search needs a visit type or a specialty, which a query's parameters cannot
# say in OpenAPI; the 422 it gets is documented), nor that every invalid one is refused.
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
    st_checks.response_headers_conformance,
    st_checks.use_after_free,
    st_checks.ensure_resource_availability,
    st_checks.ignored_auth,
]

# What the run did, printed at its end (run this file alone, without -n, to read it).
CALLS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    if CALLS:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(CALLS.items()))
        sys.__stderr__.write(f"\nschemathesis: {sum(CALLS.values())} calls; {statuses}\n")


@contextmanager
def in_the_tests_transaction():
    """Requests go to the WSGI application in this process, inside the test's transaction: as
    Django's test client does, the connection is not closed at the end of each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _called(persona: str, response) -> None:
    CALLS[f"{persona} {response.status_code}"] += 1


# CRENEAU_SCHEMATHESIS_EXAMPLES=200 for a longer hunt than CI's.
SCALE = int(os.environ.get("CRENEAU_SCHEMATHESIS_EXAMPLES", "15"))
EXAMPLES = hypothesis.settings(
    max_examples=SCALE,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
    database=None,
)


@pytest.fixture
def agendas_open(open_agenda, pitie_neurosurgeon):
    open_agenda(pitie_neurosurgeon, codes=("neurosurgery-first", "neurosurgery-second-opinion"))


@pytest.fixture
def operator_token(client, alpha):
    answer = token_request(client, alpha.api)
    assert answer.status_code == 200
    return answer.json()["access_token"]


@pytest.mark.django_db
@schema.parametrize()
@EXAMPLES
def test_as_a_visitor(case, agendas_open):
    with in_the_tests_transaction():
        _called("visitor", case.call_and_validate(checks=CHECKS))


@pytest.mark.django_db
@schema.parametrize()
@EXAMPLES
def test_as_an_operator(case, agendas_open, operator_token):
    with in_the_tests_transaction():
        answer = case.call_and_validate(
            headers={"Authorization": f"Bearer {operator_token}"}, checks=CHECKS
        )
    _called("operator", answer)


STATEFUL = hypothesis.settings(
    max_examples=max(10, SCALE * 2 // 3),
    stateful_step_count=6,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
    database=None,
)


def _state_machine(persona: str, headers: dict):
    class Api(schema.as_state_machine()):
        def get_call_kwargs(self, case):
            return {"headers": headers}

        def validate_response(self, response, case, additional_checks=(), **kwargs):
            _called(f"stateful {persona}", response)
            case.validate_response(response, checks=CHECKS)

    return Api


@pytest.mark.django_db
def test_stateful_as_a_visitor(agendas_open):
    """Sequences of calls linked by what each answer gives the next (a hold's id, then the
    booking through it, then the appointment's manage token...)."""
    with in_the_tests_transaction():
        _state_machine("visitor", {}).run(settings=STATEFUL)


@pytest.mark.django_db
def test_stateful_as_an_operator(agendas_open, operator_token):
    machine = _state_machine("operator", {"Authorization": f"Bearer {operator_token}"})
    with in_the_tests_transaction():
        machine.run(settings=STATEFUL)


def test_the_document_says_how_each_persona_calls_and_what_each_error_is(client):
    spec = client.get("/api/v1/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    flow = schemes["operator"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/oauth/token/" and "appointments:write" in flow["scopes"]
    assert schemes["channel"]["name"] == "X-Creneau-Channel"
    assert schemes["manageToken"]["name"] == "X-Manage-Token"
    # One schema per name: the availability's days are not the statistics' days.
    availability = spec["paths"]["/api/v1/practitioners/{practitioner_id}/availability"]["get"]
    assert availability["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AvailabilityOut"
    }
    days = spec["components"]["schemas"]["AvailabilityOut"]["properties"]["days"]["items"]
    assert "slots" in spec["components"]["schemas"][days["$ref"].rsplit("/", 1)[1]]["properties"]
    book = spec["paths"]["/api/v1/appointments"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in book["parameters"])
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation.get("security"), (method, path)
            codes = set(operation["responses"])
            if path.startswith("/api/"):
                assert {"400", "403", "404", "422", "429"} <= codes, (method, path)
    statistics = spec["paths"]["/api/v1/operator/statistics"]["get"]["responses"]["200"]
    assert "text/csv" in statistics["content"]
    assert "/oauth/token/" in spec["paths"] and "/ledger/entries" in spec["paths"]
    assert client.get("/api/docs").status_code == 200
