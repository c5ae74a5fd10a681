"""Free text typed in a search never reaches the public, append-only ledger (issue 14, point 9):
patient-like text in every search field of the console, the patient pages and the API, then
the ledger's entries, stored and served, are searched for it."""

import pytest

from creneau.ledger.checkpoints import checkpoint_make
from creneau.ledger.models import Entry
from tests.operators.conftest import agent_login, api_for
from tests.operators.test_console import HX, visit_type_id

pytestmark = pytest.mark.django_db

TYPED = "Durand Sophie 0611223344"
TRACES = ("Durand", "Sophie", "0611223344", "611223344", "06 11 22 33 44")


def test_free_text_in_every_search_field_stays_out_of_the_ledger(
    client, alpha, pitie_neurosurgeon, clock
):
    # The console: the practitioner's name, and the caller's look-up.
    assert agent_login(client, alpha.agent).status_code == 302
    visit = visit_type_id(client.get("/console/").content.decode())
    answered = client.get(
        "/console/slots/", {"visit_type": visit, "practitioner": TYPED}, headers=HX
    )
    assert answered.status_code == 200
    client.get("/console/slots/", {"visit_type": visit, "practitioner": ""}, headers=HX)
    client.post(
        "/console/lookup/",
        {"last_name": "Durand", "birth_date": "1980-05-17", "phone": "0611223344"},
        headers=HX,
    )
    client.logout()

    # The patient pages: every field of the search form, and the practitioner's page.
    for params in [
        {"what": "s:neurosurgery", "where": TYPED},
        {"what": TYPED, "where": TYPED, "when": "date", "date": "2027-03-20"},
        {"what": "s:neurosurgery", "where": "Paris"},
    ]:
        client.get("/search/", params)
    practitioner = pitie_neurosurgeon.practitioner.public_id
    client.get(f"/practitioners/{practitioner}/", {"visit_type": TYPED, "week": "2027-03-22"})

    # The API: as a visitor, and with an operator's token.
    for params in [
        {"specialty": "neurosurgery", "establishment": TYPED},
        {"specialty": "neurosurgery", "practitioner": TYPED},
        {"visit_type": TYPED},
        {"specialty": TYPED},
        {"specialty": "neurosurgery"},
    ]:
        client.get("/api/v1/slots", params)
        api_for(client, alpha.api).get("/slots", params)
    client.get(f"/api/v1/practitioners/{practitioner}/availability", {"visit_type": TYPED})

    offers = Entry.objects.filter(kind="offer")
    assert offers.count() >= 4  # the searches that were answered are recorded
    stored = "\n".join(Entry.objects.values_list("data", flat=True))
    checkpoint_make()  # sequenced, the entries are served
    size = Entry.objects.filter(leaf_index__isnull=False).count()
    served = client.get("/ledger/entries", {"start": max(0, size - 1000), "end": size})
    assert served.status_code == 200
    for trace in TRACES:
        assert trace not in stored
        assert trace not in served.content.decode()
