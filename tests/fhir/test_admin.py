"""The organisation registers a platform as it registers an operator, sets what the platform
may see, and sees its bookings in the operators' statistics."""

import pytest

from creneau.channels.models import Contract, Platform, PlatformVisibility
from creneau.directory.models import VisitType
from tests.fhir.test_sas import _book_through, by_type, sas_query

pytestmark = pytest.mark.django_db


def test_a_platform_is_registered_configured_and_counted(
    client, hospital_admin, aphp, public_site, pitie_neurosurgeon, open_agenda, behind_proxy, clock
):
    client.force_login(hospital_admin)
    added = client.post(
        "/admin/channels/contract/add/",
        {
            "operator_name": "SAS Île-de-France",
            "operator_kind": "sas",
            "organisation": aphp.pk,
            "perimeter": public_site.perimeter.pk,
            "starts_on": "2027-03-01",
            "ends_on": "",
            "may_search": "on",
            "may_book": "on",
            "bookings_per_day": 100,
            "holds_at_once": 5,
            "requests_per_minute": 600,
        },
    )
    assert added.status_code == 302, added.content.decode()[:1500]
    contract = Contract.objects.get(operator__name="SAS Île-de-France")
    platform = Platform.objects.get(contract=contract)
    spine = VisitType.objects.get(organisation=aphp, code="neurosurgery-spine")
    page = client.get(f"/admin/channels/platform/{platform.pk}/change/")
    assert page.status_code == 200 and "SAS Île-de-France" in page.content.decode()
    changed = client.post(
        f"/admin/channels/platform/{platform.pk}/change/",
        {
            "certificate_subject": "CN=sas-idf",
            "feedback_url": "https://sas.example/fhir",
            "regulator_identifier": "810000000099",
            "link_hours": 48,
            "visibility-TOTAL_FORMS": 1,
            "visibility-INITIAL_FORMS": 0,
            "visibility-MIN_NUM_FORMS": 0,
            "visibility-MAX_NUM_FORMS": 1000,
            "visibility-0-visit_type": spine.pk,
            "visibility-0-audience": "PRO_SNP",
        },
    )
    assert changed.status_code == 302, changed.content.decode()[:1500]
    platform.refresh_from_db()
    assert platform.certificate_subject == "CN=sas-idf" and platform.link_hours == 48
    assert PlatformVisibility.objects.get(platform=platform).codes == ["PRO", "SNP"]

    # Its booking appears beside the operators' in the organisation's statistics.
    from tests.fhir.conftest import CERT_HEADER, PROXY, Fhir

    open_agenda(pitie_neurosurgeon)
    fhir = Fhir(client, meta={"REMOTE_ADDR": PROXY, CERT_HEADER: "CN=sas-idf"})
    slots = by_type(fhir.json("Slot", sas_query(pitie_neurosurgeon)), "Slot")
    assert {c["code"] for s in slots for c in s["meta"]["security"]} >= {"PUBLIC"}
    _book_through(client, slots[0]["comment"], "?origin=sas")
    statistics = client.get(
        "/admin/channels/operatorcompany/statistics/",
        {"first": "2027-03-15", "last": "2027-03-15"},
    )
    assert statistics.status_code == 200
    assert "SAS Île-de-France" in statistics.content.decode()
