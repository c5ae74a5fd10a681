"""The SAS agenda publisher (INT_R01): the exact query of STANDARDS.md §1, answered as the ANS
guide's example is; the perimeter held even when a practitioner is asked by RPPS; the signed
booking link, which books through the SAS's channel, and an ``origin=sas`` appended to a public
link, which opens nothing more; visits reserved to professionals and regulators."""

import json
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fhir.resources.R4B.bundle import Bundle

from creneau.agenda.models import Slot
from creneau.agenda.queries import offerable_slots
from creneau.booking.models import Appointment
from creneau.channels.models import PlatformVisibility
from creneau.channels.queries import channel_scope_for_key
from creneau.directory.models import PractitionerRole, VisitType
from creneau.ledger.checkpoints import checkpoint_make
from tests.conftest import NOW, PATIENT
from tests.fhir.conftest import CERT_HEADER, PROXY, SAS_SUBJECT, Fhir, bearer

pytestmark = pytest.mark.django_db

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "sas"
IDNPS = "urn:oid:1.2.250.1.71.4.2.1"


def sas_query(*roles: PractitionerRole, days: int = 14) -> dict:
    start = NOW + timedelta(hours=1)
    end = start + timedelta(days=days)
    return {
        "_include": "Slot:schedule",
        "_include:iterate": "Schedule:actor",
        "start": [f"ge{start.isoformat()}", f"le{end.isoformat()}"],
        "schedule.actor:Practitioner.identifier": ",".join(
            f"{IDNPS}|8{role.practitioner.rpps}" for role in roles
        ),
        "status": "free",
    }


def by_type(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == kind]


def test_one_practitioner_over_fourteen_days(sas_client, pitie_neurosurgeon, open_agenda, sas):
    # Follow-ups (not open to new patients) are the practitioner's own: not published.
    open_agenda(pitie_neurosurgeon, codes=("neurosurgery-first", "neurosurgery-follow-up"))
    bundle = sas_client.json("Slot", sas_query(pitie_neurosurgeon))
    Bundle.model_validate(bundle)  # fhir.resources parses it whole
    assert bundle["type"] == "searchset"
    assert bundle["meta"]["profile"] == ["http://sas.fr/fhir/StructureDefinition/BundleAgregateur"]
    slots = by_type(bundle, "Slot")
    expected = (
        offerable_slots(channel_scope_for_key(sas.key), NOW)
        .filter(
            practitioner_role=pitie_neurosurgeon,
            visit_type__code="neurosurgery-first",
            starts_at__gte=NOW + timedelta(hours=1),
            starts_at__lte=NOW + timedelta(days=14, hours=1),
        )
        .count()
    )
    assert len(slots) == bundle["total"] == expected > 0
    assert [e["search"]["mode"] for e in bundle["entry"][:4]] == [
        "match",
        "include",
        "include",
        "include",
    ]
    (schedule,) = by_type(bundle, "Schedule")
    assert schedule["id"] == pitie_neurosurgeon.public_id
    (practitioner,) = by_type(bundle, "Practitioner")
    assert practitioner["identifier"][0]["value"] == "8" + pitie_neurosurgeon.practitioner.rpps
    (role,) = by_type(bundle, "PractitionerRole")
    assert (
        role["organization"]["identifier"]["value"] == "1" + pitie_neurosurgeon.establishment.finess
    )
    assert role["contained"][0]["address"]["city"] == pitie_neurosurgeon.establishment.city
    for slot in slots:
        assert slot["status"] == "free"
        assert slot["meta"]["security"][0]["code"] == "PUBLIC"
        assert slot["specialty"][0]["coding"][0]["code"] == "SM31"
        assert f"/p/{sas.key}/link/" in slot["comment"]
    starts = [slot["start"] for slot in slots]
    assert starts == sorted(starts)


def test_twenty_five_practitioners_and_no_more(sas_client, open_agenda, aphp):
    roles: list[PractitionerRole] = []
    for role in (
        PractitionerRole.objects.filter(establishment__organisation=aphp)
        .select_related("practitioner")
        .order_by("pk")
    ):
        if role.practitioner_id not in {r.practitioner_id for r in roles}:
            roles.append(role)
        if len(roles) == 26:
            break
    for role in roles[:25]:
        specialty = role.specialties.order_by("code").first()
        open_agenda(role, codes=(f"{specialty.code}-first",), horizon_weeks=3)
    bundle = sas_client.json("Slot", sas_query(*roles[:25]))
    Bundle.model_validate(bundle)
    found = {p["identifier"][0]["value"] for p in by_type(bundle, "Practitioner")}
    assert found == {"8" + role.practitioner.rpps for role in roles[:25]}
    assert bundle["total"] == len(by_type(bundle, "Slot")) > 25 * 5
    refused = sas_client.json("Slot", sas_query(*roles), status=400)
    assert refused["resourceType"] == "OperationOutcome"
    assert refused["issue"][0]["details"]["coding"][0]["code"] == "practitioners_count"
    none = sas_client.json(
        "Slot", {**sas_query(roles[0]), "schedule.actor:Practitioner.identifier": ""}, status=400
    )
    assert none["issue"][0]["code"] == "invalid"


def test_a_practitioner_outside_the_perimeter_never_appears_even_by_rpps(
    sas_client, pitie_neurosurgeon, private_neurosurgeon, open_agenda
):
    open_agenda(pitie_neurosurgeon)
    open_agenda(private_neurosurgeon)
    bundle = sas_client.json("Slot", sas_query(pitie_neurosurgeon, private_neurosurgeon))
    rpps = {p["identifier"][0]["value"] for p in by_type(bundle, "Practitioner")}
    assert rpps == {"8" + pitie_neurosurgeon.practitioner.rpps}
    private_slots = set(
        Slot.objects.filter(practitioner_role=private_neurosurgeon).values_list(
            "public_id", flat=True
        )
    )
    assert not private_slots & {s["id"] for s in by_type(bundle, "Slot")}
    alone = sas_client.json("Slot", sas_query(private_neurosurgeon))
    assert alone["total"] == 0 and "entry" not in alone
    # Nor by read: the same 404 as for what does not exist.
    hidden = sas_client.json(
        f"Practitioner/{private_neurosurgeon.practitioner.public_id}", status=404
    )
    assert hidden["issue"][0]["code"] == "not-found"
    slot = next(iter(private_slots))
    assert sas_client.get(f"Slot/{slot}").status_code == 404


def _paths(value, prefix: str = "") -> set[str]:
    """Every element path of a resource, lists flattened, narrative left out."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, dict) and "div" in item:
                continue
            paths.add(prefix + key)
            paths |= _paths(item, f"{prefix}{key}.")
    elif isinstance(value, list):
        for item in value:
            paths |= _paths(item, prefix)
    return paths


def _no_empty(value, where: str = "") -> None:
    assert value not in ({}, [], "", None), f"empty element at {where}"
    if isinstance(value, dict):
        for key, item in value.items():
            _no_empty(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            _no_empty(item, where)


def test_the_bundle_has_the_guide_example_s_elements(sas_client, pitie_neurosurgeon, open_agenda):
    """Structurally like Bundle-ExampleBundlePSIndiv.json: the same resource types, and for
    each the elements the guide's example shows (a visit by video, VR, and the example's
    Location identifier type aside), none empty."""
    open_agenda(pitie_neurosurgeon)
    ours = sas_client.json("Slot", sas_query(pitie_neurosurgeon))
    example = json.loads((VECTORS / "Bundle-ExampleBundlePSIndiv.json").read_text("utf-8"))
    assert _paths({k: v for k, v in ours.items() if k != "entry"}) >= _paths(
        {k: v for k, v in example.items() if k not in ("entry", "id")}
    )
    kinds = {e["resource"]["resourceType"] for e in example["entry"]}
    assert {e["resource"]["resourceType"] for e in ours["entry"]} == kinds
    for kind in kinds:
        wanted = set.union(*(_paths(r) for r in by_type(example, kind)))
        for resource in by_type(ours, kind):
            missing = wanted - _paths(resource)
            assert not missing, f"{kind} lacks {sorted(missing)}"
            _no_empty(resource, kind)
    for entry in ours["entry"]:
        assert set(entry) == {"fullUrl", "resource", "search"}
        profile = entry["resource"]["meta"]["profile"][0]
        assert profile.startswith("http://sas.fr/fhir/StructureDefinition/Fr")
    location = by_type(ours, "PractitionerRole")[0]["contained"][0]
    assert location["meta"]["profile"] == [
        "http://sas.fr/fhir/StructureDefinition/FrLocationAgregateur"
    ]
    assert len(location["address"]["line"]) == 1 and location["address"]["postalCode"]


def _link_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path


def _book_through(client, link: str, query: str = "", platform: str = "") -> Appointment:
    path = _link_path(link)
    page = client.get(path + query)
    assert page.status_code == 200, page.content[:500]
    assert platform in page.content.decode()  # the page names who sent the patient
    fields = dict(
        re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.content.decode())
    )
    held = client.post(path, fields)
    assert held.status_code == 303, held.content[:500]
    booked = client.post(held["Location"], PATIENT)
    assert booked.status_code == 303, booked.content[:1000]
    appointment_id = booked["Location"].split("/appointments/")[1].split("/")[0]
    return Appointment.objects.get(public_id=appointment_id)


def test_the_deep_link_books_through_the_sas_channel(
    client, sas_client, sas, pitie_neurosurgeon, open_agenda
):
    open_agenda(pitie_neurosurgeon)
    bundle = sas_client.json("Slot", sas_query(pitie_neurosurgeon))
    first = by_type(bundle, "Slot")[0]
    appointment = _book_through(
        client, first["comment"], "?origin=sas&regulator=810000000042", "Service d"
    )
    assert appointment.slot.public_id == first["id"]
    assert appointment.channel == sas.contract.channel
    assert appointment.operator == sas.contract.operator
    assert appointment.referral == {"origin": "sas", "regulator": "810000000042"}
    # The slot is gone from the next answer.
    again = sas_client.json("Slot", sas_query(pitie_neurosurgeon))
    assert first["id"] not in {s["id"] for s in by_type(again, "Slot")}


def test_a_link_altered_or_expired_opens_nothing(
    client, sas_client, pitie_neurosurgeon, open_agenda, clock
):
    open_agenda(pitie_neurosurgeon)
    slots = by_type(sas_client.json("Slot", sas_query(pitie_neurosurgeon)), "Slot")
    path = _link_path(slots[0]["comment"])
    other = slots[1]["id"]
    # Another slot's id put in the signed part: the signature no longer matches.
    token = path.rstrip("/").split("/")[-1]
    assert (
        client.get(
            path.replace(token, token[:-3] + ("abc" if token[-3:] != "abc" else "xyz"))
        ).status_code
        == 404
    )
    assert other not in path
    clock.shift(timedelta(hours=73))
    assert client.get(path).status_code == 410


def test_origin_sas_on_a_public_link_opens_nothing_more(
    client, sas_client, sas, pitie_neurosurgeon, open_agenda
):
    """The public site ignores origin=sas; a visit the SAS reserves to regulators is offered
    and booked only through the SAS's signed link."""
    open_agenda(pitie_neurosurgeon, codes=("neurosurgery-first", "neurosurgery-spine"))
    spine = VisitType.objects.get(
        code="neurosurgery-spine", organisation=pitie_neurosurgeon.establishment.organisation
    )
    PlatformVisibility.objects.create(platform=sas.platform, visit_type=spine, audience="SNP")

    public = client.get("/api/v1/slots", {"visit_type": spine.public_id, "origin": "sas"}).json()
    assert public["items"] == []
    reserved = (
        Slot.objects.filter(
            practitioner_role=pitie_neurosurgeon,
            visit_type=spine,
            starts_at__gt=NOW + timedelta(days=1),
        )
        .order_by("starts_at")
        .first()
    )
    refused = client.post(
        "/api/v1/holds?origin=sas",
        json.dumps({"slot": reserved.public_id}),
        content_type="application/json",
    )
    assert refused.status_code == 403 and refused.json()["code"] == "slot_reserved"

    bundle = sas_client.json("Slot", sas_query(pitie_neurosurgeon))
    codes = {s["id"]: [c["code"] for c in s["meta"]["security"]] for s in by_type(bundle, "Slot")}
    assert codes[reserved.public_id] == ["SNP"]
    assert {tuple(v) for k, v in codes.items() if k != reserved.public_id} <= {
        ("PUBLIC",),
        ("SNP",),
    }
    link = next(s["comment"] for s in by_type(bundle, "Slot") if s["id"] == reserved.public_id)
    appointment = _book_through(client, link, "?origin=sas")
    assert appointment.visit_type == spine and appointment.channel == sas.contract.channel


def test_the_certificate_counts_only_through_the_trusted_proxy(
    client, sas, pitie_neurosurgeon, open_agenda, behind_proxy
):
    open_agenda(pitie_neurosurgeon)
    # Straight from the internet, the header is anyone's: the public site answers.
    forged = Fhir(client, meta={"REMOTE_ADDR": "203.0.113.9", CERT_HEADER: SAS_SUBJECT})
    answer = forged.json("Slot", sas_query(pitie_neurosurgeon))
    assert "meta" not in answer
    assert all(
        f"/p/{sas.key}/" not in e["resource"].get("comment", "") for e in answer.get("entry", [])
    )
    unknown = Fhir(client, meta={"REMOTE_ADDR": PROXY, CERT_HEADER: "CN=someone-else"})
    refused = unknown.json("Slot", sas_query(pitie_neurosurgeon), status=403)
    assert refused["issue"][0]["details"]["coding"][0]["code"] == "certificate_unknown"
    # OAuth2 client credentials work too, and answer as the SAS.
    by_token = bearer(client, sas).json("Slot", sas_query(pitie_neurosurgeon))
    assert by_token["meta"]["profile"][0].endswith("BundleAgregateur")


def test_the_ledger_counts_the_platforms_offers_and_bookings(
    client, sas_client, sas, partner, pitie_neurosurgeon, open_agenda, settings, tmp_path, clock
):
    """The SAS, a SMART finder and an IHE partner each search and book; the verifier's report
    counts each channel's offers and bookings, and nothing outside any perimeter."""
    from django.core.management import call_command

    from creneau.ledger.checkpoints import signer_new
    from creneau.ledger.note import skey
    from creneau.ledger.verify import ExportSource, verify
    from tests.fhir.conftest import register
    from tests.fhir.test_ihe import PATIENT as FHIR_PATIENT
    from tests.fhir.test_ihe import Partner, find, parameters
    from tests.fhir.test_smart import extension, read_all

    signer = signer_new("test.creneau/ledger")
    settings.CRENEAU_LEDGER_ORIGIN = "test.creneau/ledger"
    settings.CRENEAU_LEDGER_KEY = skey(signer)
    open_agenda(pitie_neurosurgeon)
    bundle = sas_client.json("Slot", sas_query(pitie_neurosurgeon))
    _book_through(client, by_type(bundle, "Slot")[0]["comment"], "?origin=sas")

    finder = register(sas.contract.channel.organisation, "smart_finder", "Trouveur")
    published = read_all(bearer(client, finder))["Slot"]
    mine = [
        s for s in published if s["schedule"]["reference"].endswith(pitie_neurosurgeon.public_id)
    ]
    _book_through(client, extension(mine[-1], "booking-deep-link")["valueUrl"], "?source=x")

    ihe = Partner(client, partner)
    proposed = find(ihe, pitie_neurosurgeon)[-1]
    booked = ihe.post(
        "$book", parameters(appointment_resource=proposed, patient_resource=FHIR_PATIENT)
    )
    assert booked.status_code == 201, booked.content

    checkpoint_make()
    file = tmp_path / "ledger.json"
    call_command("ledger", "export", str(file))
    report, _state = verify(ExportSource(file), signer.verifier)
    assert report.failures == []
    for platform, least_offered in [
        (sas, bundle["total"]),
        (finder, len(published)),
        (partner, 1),
    ]:
        counts = report.channels[platform.contract.channel.public_id]
        assert counts.offers >= 1 and counts.slots_offered >= least_offered
        assert counts.bookings == 1 and counts.out_of_perimeter == 0
