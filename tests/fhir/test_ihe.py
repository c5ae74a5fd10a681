"""IHE ITI Scheduling for a partner under contract: $find → $hold → $book → its own
appointments (ITI-118) → cancel, and a move; the perimeter, the holds cap and idempotency keys
as in the JSON API; every answer valid for fhir.resources."""

import json
from datetime import timedelta

import pytest
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from creneau.agenda.models import Slot
from creneau.booking.models import Appointment
from creneau.ledger.models import Entry
from tests.conftest import NOW
from tests.fhir.conftest import FHIR, bearer, register

pytestmark = pytest.mark.django_db

PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": "urn:oid:1.2.3.4.5", "value": "P-0042"}],
    "name": [{"family": "Dupont", "given": ["Camille"]}],
    "birthDate": "1985-04-12",
    "telecom": [{"system": "phone", "value": "+33612345678"}],
}


def parameters(**values) -> dict:
    out = []
    for name, value in values.items():
        name = name[0] + name[1:].replace("_", "-")
        if isinstance(value, dict) and "resourceType" in value:
            out.append({"name": name, "resource": value})
        elif isinstance(value, dict):
            out.append({"name": name, "valueReference": value})
        else:
            out.append({"name": name, "valueString": value})
    return {"resourceType": "Parameters", "parameter": out}


class Partner:
    def __init__(self, client, platform):
        self.client = client
        self.fhir = bearer(client, platform)

    def post(self, operation: str, body: dict, **headers):
        return self.client.post(
            f"/fhir/Appointment/{operation}",
            json.dumps(body),
            content_type=FHIR,
            headers={**self.fhir.headers, **headers},
        )


@pytest.fixture
def partner_api(client, partner, clock):
    return Partner(client, partner)


def find(api: Partner, role, **more) -> list[dict]:
    answer = api.post(
        "$find",
        parameters(
            start=(NOW + timedelta(days=1)).date().isoformat(),
            end=(NOW + timedelta(days=10)).date().isoformat(),
            practitioner={"reference": f"Practitioner/{role.practitioner.public_id}"},
            **more,
        ),
    )
    assert answer.status_code == 200, answer.content
    bundle = answer.json()
    Bundle.model_validate(bundle)
    return [entry["resource"] for entry in bundle.get("entry", [])]


def test_find_hold_book_search_cancel(
    client, partner, partner_api, pitie_neurosurgeon, open_agenda, clock
):
    open_agenda(pitie_neurosurgeon)
    proposed = find(partner_api, pitie_neurosurgeon, specialty="neurosurgery", _count="5")
    assert len(proposed) == 5
    assert {p["status"] for p in proposed} == {"proposed"}
    first = proposed[0]
    held = partner_api.post("$hold", parameters(appointment_resource=first))
    assert held.status_code == 201, held.content
    pending = held.json()
    FhirAppointment.model_validate(pending)
    assert pending["status"] == "pending" and pending["slot"] == first["slot"]
    # Held time is never proposed again, nor held twice.
    assert first["slot"] not in [p["slot"] for p in find(partner_api, pitie_neurosurgeon)]
    again = partner_api.post("$hold", parameters(appointment_resource=first))
    assert again.status_code == 409
    assert (
        OperationOutcome.model_validate(again.json()).issue[0].details.coding[0].code
        == "slot_taken"
    )

    made = partner_api.post(
        "$book", parameters(appointment_resource=pending, patient_resource=PATIENT)
    )
    assert made.status_code == 201, made.content
    booked = made.json()
    FhirAppointment.model_validate(booked)
    assert booked["status"] == "booked"
    stored = Appointment.objects.get(public_id=booked["id"])
    assert stored.channel == partner.contract.channel
    assert stored.operator == partner.contract.operator
    assert stored.api_client == partner.api.client
    assert stored.patient_last_name == "Dupont"
    assert Entry.objects.filter(kind="booking", data__contains=booked["id"]).exists()

    mine = partner_api.fhir.json(
        "Appointment",
        {"patient.identifier": "urn:oid:1.2.3.4.5|P-0042", "date": f"ge{NOW.date().isoformat()}"},
    )
    Bundle.model_validate(mine)
    assert [e["resource"]["id"] for e in mine["entry"]] == [booked["id"]]
    # Another partner sees none of it.
    other = register(partner.contract.channel.organisation, "fhir_partner", "Autre partenaire")
    assert bearer(client, other).json("Appointment", {"_id": booked["id"]})["total"] == 0

    cancelled = partner_api.post(
        "$book",
        parameters(
            appointment_resource={**booked, "status": "cancelled"}, patient_resource=PATIENT
        ),
    )
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["status"] == "cancelled"
    stored.refresh_from_db()
    assert stored.status == "cancelled_operator"


def test_a_changed_resource_moves_the_appointment(
    partner_api, pitie_neurosurgeon, open_agenda, clock
):
    open_agenda(pitie_neurosurgeon)
    first, later = find(partner_api, pitie_neurosurgeon)[:2]
    booked = partner_api.post(
        "$book", parameters(appointment_resource=first, patient_resource=PATIENT)
    ).json()
    moved = partner_api.post(
        "$book",
        parameters(
            appointment_resource={**booked, "slot": later["slot"]}, patient_resource=PATIENT
        ),
    )
    assert moved.status_code == 200, moved.content
    assert moved.json()["slot"] == later["slot"] and moved.json()["start"] == later["start"]
    assert (
        Appointment.objects.get(public_id=booked["id"]).slot.public_id
        == later["slot"][0]["reference"].split("/")[1]
    )


def test_perimeter_holds_cap_and_idempotency(
    client, aphp, partner_api, partner, pitie_neurosurgeon, private_neurosurgeon, open_agenda, clock
):
    open_agenda(pitie_neurosurgeon)
    open_agenda(private_neurosurgeon)
    # Outside the perimeter: never proposed, refused and recorded when named.
    assert find(partner_api, private_neurosurgeon) == []
    private = Slot.objects.filter(
        practitioner_role=private_neurosurgeon, starts_at__gt=NOW + timedelta(days=1)
    ).first()
    outside = partner_api.post(
        "$hold",
        parameters(
            appointment_resource={
                "resourceType": "Appointment",
                "status": "proposed",
                "slot": [{"reference": f"Slot/{private.public_id}"}],
                "participant": [{"status": "accepted"}],
            }
        ),
    )
    assert outside.status_code == 403
    assert outside.json()["issue"][0]["details"]["coding"][0]["code"] == "out_of_perimeter"
    assert Entry.objects.filter(kind="refusal", channel=partner.contract.channel.public_id).exists()

    # Idempotency: the same key and body, the same answer, one appointment.
    first = find(partner_api, pitie_neurosurgeon)[0]
    body = parameters(appointment_resource=first, patient_resource=PATIENT)
    one = partner_api.post("$book", body, **{"Idempotency-Key": "book-1"})
    two = partner_api.post("$book", body, **{"Idempotency-Key": "book-1"})
    assert one.status_code == two.status_code == 201
    assert one.json() == two.json() and two["Idempotent-Replayed"] == "true"
    assert Appointment.objects.filter(channel=partner.contract.channel).count() == 1

    # The contract's holds at once.
    contract = partner.contract
    contract.holds_at_once = 2
    contract.save()
    results = [
        partner_api.post("$hold", parameters(appointment_resource=p)).status_code
        for p in find(partner_api, pitie_neurosurgeon)[:3]
    ]
    assert results == [201, 201, 429]

    # Without its token, nothing; with a wrong body, a clear refusal.
    assert client.post("/fhir/Appointment/$find", "{}", content_type=FHIR).status_code == 401
    bad = partner_api.post("$find", {"resourceType": "Parameters", "parameter": []})
    assert bad.status_code == 400
    assert bad.json()["issue"][0]["details"]["coding"][0]["code"] == "parameter_required"
    text = client.post(
        "/fhir/Appointment/$find",
        "start=x",
        content_type="text/plain",
        headers=partner_api.fhir.headers,
    )
    assert text.status_code == 415


def test_plain_fhir_rest_create_read_and_update_book_move_and_cancel(
    client, partner, partner_api, pitie_neurosurgeon, open_agenda, clock
):
    """For partners without IHE: POST Appointment (the patient contained) books, GET reads
    one's own, PUT moves or cancels; another partner's appointment is nobody else's."""
    open_agenda(pitie_neurosurgeon)
    first, later = find(partner_api, pitie_neurosurgeon)[:2]
    headers = partner_api.fhir.headers
    patient = {**PATIENT, "id": "p"}
    resource = {
        "resourceType": "Appointment",
        "status": "booked",
        "slot": first["slot"],
        "participant": [{"actor": {"reference": "#p"}, "status": "accepted"}],
        "contained": [patient],
    }

    def send(method, path, body, **more):
        call = client.post if method == "POST" else client.put
        return call(path, json.dumps(body), content_type=FHIR, headers={**headers, **more})

    made = send("POST", "/fhir/Appointment", resource, **{"Idempotency-Key": "rest-1"})
    assert made.status_code == 201, made.content
    booked = FhirAppointment.model_validate(made.json())
    assert booked.status == "booked"
    assert Appointment.objects.get(public_id=booked.id).patient_last_name == "Dupont"
    replay = send("POST", "/fhir/Appointment", resource, **{"Idempotency-Key": "rest-1"})
    assert replay.json()["id"] == booked.id and replay["Idempotent-Replayed"] == "true"
    with_id = send("POST", "/fhir/Appointment", {**resource, "id": "x"})
    assert with_id.status_code == 400
    read = client.get(f"/fhir/Appointment/{booked.id}", headers=headers)
    assert read.status_code == 200 and read.json()["id"] == booked.id

    moved = send("PUT", f"/fhir/Appointment/{booked.id}", {**made.json(), "slot": later["slot"]})
    assert moved.status_code == 200, moved.content
    assert moved.json()["start"] == later["start"]
    wrong = send("PUT", f"/fhir/Appointment/{booked.id}", {**made.json(), "id": "other"})
    assert wrong.status_code == 400
    other = bearer(client, register(partner.contract.channel.organisation, "fhir_partner", "B"))
    stolen = client.put(
        f"/fhir/Appointment/{booked.id}",
        json.dumps({**made.json(), "status": "cancelled"}),
        content_type=FHIR,
        headers=other.headers,
    )
    assert stolen.status_code == 404
    cancelled = send(
        "PUT", f"/fhir/Appointment/{booked.id}", {**made.json(), "status": "cancelled"}
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert Appointment.objects.get(public_id=booked.id).status == "cancelled_operator"
