"""Property-based: whatever a partner sends to the FHIR and IHE operations ($find, $hold, $book,
the Appointment REST create and update, ITI-118 and the directory searches), the hub answers
it, never with a server error (issue 27, point 10). Hypothesis builds the bodies from the
elements the operations read, with any JSON in their place, and the queries from their
parameters with any text; each example is a real request through the whole middleware stack."""

import json
import string

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fhir.conftest import FHIR, bearer
from tests.fhir.test_ihe import PATIENT, parameters

pytestmark = pytest.mark.django_db

COUNTS = {"examples": 0, "server_errors": 0, "statuses": {}}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
dates = st.sampled_from(
    ["2027-03-16", "9999-12-31", "0001-01-01", "2027-03-16T10:00:00+01:00", "ge9999", "x", ""]
)
anything = json_values | dates


def _spoilt(resource: dict, keys: list[str]):
    """``resource`` with one to three of its elements (or new ones) replaced by anything."""
    return st.dictionaries(st.sampled_from(keys), anything, min_size=1, max_size=3).map(
        lambda changes: {**resource, **changes}
    )


APPOINTMENT = {
    "resourceType": "Appointment",
    "status": "proposed",
    "slot": [{"reference": "Slot/unknown"}],
    "participant": [{"actor": {"reference": "Patient/x"}, "status": "accepted"}],
}
APPOINTMENT_KEYS = ["slot", "participant", "contained", "status", "start", "end", "id", "meta"]
PATIENT_KEYS = ["name", "telecom", "identifier", "communication", "birthDate", "gender"]

bodies = st.one_of(
    json_values,
    st.builds(lambda p: {"resourceType": "Parameters", "parameter": p}, anything),
    st.builds(
        lambda name, value: {"resourceType": "Parameters", "parameter": [{"name": name, **value}]},
        st.sampled_from(["start", "end", "specialty", "practitioner", "_count", "appointment"]),
        st.dictionaries(
            st.sampled_from(["valueString", "valueDate", "valueReference", "resource"]),
            anything,
            max_size=2,
        ),
    ),
    _spoilt(APPOINTMENT, APPOINTMENT_KEYS).map(
        lambda a: parameters(appointment_resource=a, patient_resource=PATIENT)
    ),
    _spoilt(PATIENT, PATIENT_KEYS).map(
        lambda p: parameters(appointment_resource=APPOINTMENT, patient_resource=p)
    ),
    _spoilt(APPOINTMENT, APPOINTMENT_KEYS),
    _spoilt(APPOINTMENT, APPOINTMENT_KEYS).map(lambda a: {**a, "contained": [PATIENT]}),
)
texts = st.text(string.printable, max_size=30) | dates
queries = st.dictionaries(
    st.sampled_from(
        [
            "date",
            "_id",
            "identifier",
            "status",
            "patient.identifier",
            "_count",
            "specialty",
            "start",
            "end",
            "practitioner",
            "name",
            "address-city",
            "_include",
            "_offset",
        ]
    ),
    texts
    | st.lists(st.sampled_from(["a", "b,c", "Slot/x"]), min_size=90, max_size=120).map(",".join),
    max_size=3,
)
POSTS = ["Appointment/$find", "Appointment/$hold", "Appointment/$book", "Appointment"]
GETS = [
    "Appointment",
    "Appointment/$find",
    "Practitioner",
    "PractitionerRole",
    "Slot",
    "Location",
    "Schedule",
    "HealthcareService",
    "Organization",
]


def _count(status: int) -> None:
    COUNTS["examples"] += 1
    COUNTS["statuses"][status] = COUNTS["statuses"].get(status, 0) + 1
    COUNTS["server_errors"] += status >= 500


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print(f"\nFHIR and IHE operations, property-based: {json.dumps(COUNTS, sort_keys=True)}")


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(operation=st.sampled_from(POSTS), body=bodies)
def test_no_body_gets_a_server_error(client, partner, clock, operation, body):
    fhir = bearer(client, partner)
    with transaction.atomic():  # each example's writes undone, as a test's are
        answer = client.post(
            f"/fhir/{operation}",
            json.dumps(body, allow_nan=False),
            content_type=FHIR,
            headers=fhir.headers,
        )
        transaction.set_rollback(True)
    _count(answer.status_code)
    assert answer.status_code < 500, (operation, body, answer.content[:300])
    assert answer["Content-Type"].startswith(FHIR), (
        answer.status_code,
        answer["Content-Type"],
        operation,
        body,
        answer.content[:300],
    )


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(resource=st.sampled_from(GETS), query=queries)
def test_no_query_gets_a_server_error(client, partner, clock, resource, query):
    fhir = bearer(client, partner)
    answer = client.get(f"/fhir/{resource}", query, headers=fhir.headers)
    _count(answer.status_code)
    assert answer.status_code < 500, (resource, query, answer.content[:300])


def _with_patient(**changes) -> dict:
    return parameters(appointment_resource=APPOINTMENT, patient_resource={**PATIENT, **changes})


@pytest.mark.parametrize(
    ("operation", "body", "element"),
    [
        ("$find", {"resourceType": "Parameters", "parameter": 5}, "parameter"),
        ("$find", parameters(start="2027-03-16", end="9999-12-31"), "end"),
        ("$hold", parameters(appointment_resource={**APPOINTMENT, "slot": 5}), "slot"),
        (
            "$hold",
            parameters(appointment_resource={**APPOINTMENT, "slot": [{"reference": 5}]}),
            "slot",
        ),
        ("$book", _with_patient(name=["Dupont"]), "resource.name[0]"),
        ("$book", _with_patient(telecom="+33612345678"), "resource.telecom"),
        ("$book", _with_patient(identifier="P-0042"), "resource.identifier"),
        ("$book", _with_patient(communication="fr"), "resource.communication"),
        ("$book", _with_patient(birthDate=19850412), "resource.birthDate"),
        ("", {**APPOINTMENT, "contained": 5}, "Appointment.contained"),
    ],
)
def test_the_bodies_that_answered_500_are_refused_by_their_element(
    client, partner, clock, operation, body, element
):
    fhir = bearer(client, partner)
    path = "/fhir/Appointment" + (f"/{operation}" if operation else "")
    answer = client.post(path, json.dumps(body), content_type=FHIR, headers=fhir.headers)
    assert answer.status_code == 400, answer.content[:300]
    issue = answer.json()["issue"][0]
    assert element in issue["diagnostics"], issue


def test_the_queries_that_answered_500_are_refused(client, partner, clock):
    fhir = bearer(client, partner)
    ids = ",".join(f"id{n}" for n in range(990))
    many = client.get("/fhir/Practitioner", {"_id": ids}, headers=fhir.headers)
    assert many.status_code == 400 and "_id" in many.json()["issue"][0]["diagnostics"]
    far = client.get(
        "/fhir/Appointment", {"date": "ge9999-12-31T23:59:59-05:00"}, headers=fhir.headers
    )
    assert far.status_code == 400 and far.json()["issue"][0]["details"]["coding"][0]["code"] == (
        "invalid_date"
    )
