"""The FHIR R4 server at /fhir: the CapabilityStatement says what is served and every type it
lists answers read and search; every answer is valid for fhir.resources; each search goes
through the calling channel's perimeter; errors are OperationOutcome with the right status."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from creneau.directory.models import Department, Establishment
from creneau.directory.national import IDNPS_SYSTEM, IDNST_SYSTEM
from tests.fhir.conftest import FHIR, Fhir, bearer

pytestmark = pytest.mark.django_db

MODELS = {"Bundle": Bundle, "OperationOutcome": OperationOutcome}


def parsed(answer: dict) -> dict:
    MODELS[answer["resourceType"]].model_validate(answer)
    return answer


def ids(bundle: dict, kind: str | None = None) -> list[str]:
    return [
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if kind is None or e["resource"]["resourceType"] == kind
    ]


def test_the_capability_statement_lists_what_answers(client):
    fhir = Fhir(client)
    statement = fhir.json("metadata")
    CapabilityStatement.model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    listed = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(listed) == {
        "Appointment",
        "Organization",
        "Location",
        "Practitioner",
        "PractitionerRole",
        "HealthcareService",
        "Schedule",
        "Slot",
    }
    assert {o["name"] for o in listed["Appointment"]["operation"]} == {"find", "hold", "book"}
    assert fhir.get("Appointment").status_code == 401  # a partner's, with its token
    for kind, entry in listed.items():
        if kind == "Appointment":
            continue
        bundle = parsed(fhir.json(kind, {"_count": 2}))
        assert bundle["type"] == "searchset" and len(ids(bundle)) <= 2
        for name in (p["name"] for p in entry["searchParam"]):
            assert fhir.get(kind, {name: "x"}).status_code in (200, 400), (kind, name)
        if kind != "Slot":
            first = ids(bundle)[0]
            resource = fhir.json(f"{kind}/{first}")
            assert resource["resourceType"] == kind and resource["id"] == first
    assert {"Slot:schedule"} <= set(listed["Slot"]["searchInclude"])


def test_formats_accepted_and_refused(client):
    fhir = Fhir(client)
    for accept in ("application/fhir+json", "application/json+fhir", "application/json", "*/*"):
        answer = fhir.get("metadata", Accept=accept)
        assert answer.status_code == 200 and answer["Content-Type"].startswith(FHIR)
    xml = fhir.get("metadata", Accept="application/fhir+xml")
    assert xml.status_code == 406
    assert parsed(xml.json())["issue"][0]["code"] == "not-supported"
    assert fhir.get("metadata", {"_format": "xml"}).status_code == 406


def test_errors_are_operation_outcomes(client):
    fhir = Fhir(client)
    cases = [
        ("Patient", {}, 404, "resource_type_unsupported"),
        ("Slot", {"colour": "blue"}, 400, "search_parameter_unsupported"),
        ("Slot", {"start": "ge2027-13-45"}, 400, "invalid_date"),
        ("Slot", {"_count": "-1"}, 400, "invalid_parameter"),
        ("Slot", {"_include": "Slot:patient"}, 400, "include_unsupported"),
        ("Location/nope", {}, 404, "not_found"),
        ("Location/a/b/c", {}, 404, "not_found"),
        ("", {}, 404, "not_found"),
        ("Slot", {"_count": "201"}, 400, "invalid_parameter"),  # 200 at most without a contract
    ]
    for path, params, status, code in cases:
        answer = fhir.get(path, params)
        assert answer.status_code == status, (path, answer.content)
        outcome = parsed(answer.json())
        assert outcome["issue"][0]["details"]["coding"][0]["code"] == code
    post = client.post("/fhir/Slot", "{}", content_type=FHIR)
    assert post.status_code == 405


def test_french_identifiers(client, pitie_neurosurgeon):
    fhir = Fhir(client)
    rpps = pitie_neurosurgeon.practitioner.rpps
    for value in (f"{IDNPS_SYSTEM}|8{rpps}", f"8{rpps}", rpps):
        found = fhir.json("Practitioner", {"identifier": value})
        assert ids(found) == [pitie_neurosurgeon.practitioner.public_id], value
        assert found["entry"][0]["resource"]["identifier"][0]["value"] == "8" + rpps
    finess = pitie_neurosurgeon.establishment.finess
    place = fhir.json("Location", {"identifier": f"{IDNST_SYSTEM}|1{finess}"})
    assert ids(place) == [pitie_neurosurgeon.establishment.public_id]
    identifier = place["entry"][0]["resource"]["identifier"][0]
    assert identifier["value"] == "1" + finess
    assert identifier["type"]["coding"][0]["code"] == "IDNST"


def test_every_search_keeps_to_the_channel_s_perimeter(
    client, private_neurosurgeon, pitie_neurosurgeon, partner, widget
):
    """The public site (no credential), a widget (?channel=KEY) and a partner (token) see
    their perimeters: a private clinic's practitioner, place and slots never; the widget only
    the Pitié's neurosurgery department."""
    public, partner_fhir = Fhir(client), bearer(client, partner)
    hidden = private_neurosurgeon
    for fhir in (public, partner_fhir):
        assert fhir.json("Practitioner", {"identifier": hidden.practitioner.rpps})["total"] == 0
        assert fhir.get(f"Practitioner/{hidden.practitioner.public_id}").status_code == 404
        assert fhir.get(f"Location/{hidden.establishment.public_id}").status_code == 404
        assert fhir.get(f"PractitionerRole/{hidden.public_id}").status_code == 404
        assert fhir.get(f"Schedule/{hidden.public_id}").status_code == 404
        places = fhir.json("Location", {"_count": 200})
        assert hidden.establishment.public_id not in ids(places)
        assert places["total"] == Establishment.objects.filter(organisation__runs_hub=True).count()
    in_widget = Fhir(client).json("PractitionerRole", {"channel": widget.key, "_count": 200})
    departments = {
        e["resource"].get("healthcareService", [{}])[0].get("reference") for e in in_widget["entry"]
    }
    assert departments == {
        f"HealthcareService/{Department.objects.get(pk=pitie_neurosurgeon.department_id).public_id}"
    }


def test_slot_search_filters_includes_and_pages(client, pitie_neurosurgeon, open_agenda):
    open_agenda(pitie_neurosurgeon, codes=("neurosurgery-first", "neurosurgery-spine"))
    fhir = Fhir(client)
    practitioner = pitie_neurosurgeon.practitioner
    params = {
        "schedule.actor": f"Practitioner/{practitioner.public_id}",
        "service-type": "neurosurgery-spine",
        "start": ["ge2027-03-16", "lt2027-03-20T00:00:00+01:00"],
        "_count": 5,
        "_include": "Slot:schedule",
        "_include:iterate": "Schedule:actor",
    }
    first = parsed(fhir.json("Slot", params))
    slots = [e["resource"] for e in first["entry"] if e["resource"]["resourceType"] == "Slot"]
    assert len(slots) == 5 and first["total"] > 5
    assert {s["serviceType"][0]["coding"][0]["code"] for s in slots} == {"neurosurgery-spine"}
    assert all("2027-03-16" <= s["start"][:10] <= "2027-03-19" for s in slots)
    assert ids(first, "Schedule") == [pitie_neurosurgeon.public_id]
    assert set(ids(first, "Practitioner")) == {practitioner.public_id}
    assert set(ids(first, "PractitionerRole")) == {pitie_neurosurgeon.public_id}
    following = [link["url"] for link in first["link"] if link["relation"] == "next"]
    assert following
    second = parsed(Fhir(client).json("Slot?" + following[0].split("?", 1)[1]))
    assert not set(ids(second, "Slot")) & {s["id"] for s in slots}
    by_specialty = fhir.json(
        "Slot", {"specialty": "SM31", "schedule": f"Schedule/{pitie_neurosurgeon.public_id}"}
    )
    assert by_specialty["total"] > 0
    assert (
        fhir.json(
            "Slot", {"status": "busy", "schedule": f"Schedule/{pitie_neurosurgeon.public_id}"}
        )["total"]
        == 0
    )


def test_no_query_per_result(client, open_agenda, aphp):
    """A page of 100 practitioner roles with their includes costs the same queries as a page
    of 10 (no N+1)."""
    fhir = Fhir(client)
    params = {"_include": ["PractitionerRole:practitioner", "PractitionerRole:location"]}

    def queries(count: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            answer = fhir.get("PractitionerRole", {**params, "_count": count})
            assert answer.status_code == 200
        return len(captured)

    assert queries(100) == queries(10)
