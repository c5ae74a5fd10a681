"""The public read API, as each channel sees it: over HTTP through the whole middleware stack."""

import pytest

from creneau.channels import services
from creneau.channels.models import Channel
from creneau.directory.models import Establishment, Practitioner

pytestmark = pytest.mark.django_db


@pytest.fixture
def one_hospital_widget(aphp) -> Channel:
    pitie = Establishment.objects.get(name="Hôpital de la Pitié-Salpêtrière")
    perimeter = services.perimeter_create(
        organisation=aphp, name="Pitié seule", establishments=[pitie]
    )
    return services.channel_create(
        organisation=aphp, name="Widget Pitié", kind=Channel.Kind.EMBED, perimeter=perimeter
    )


def test_the_public_site_lists_the_organisations_hospitals_and_no_private_one(
    client, aphp, private_establishments
):
    answer = client.get("/api/v1/establishments", {"limit": 200}).json()
    names = {item["name"] for item in answer["items"]}
    assert answer["count"] == Establishment.objects.filter(organisation=aphp).count() >= 38
    assert names.isdisjoint({e.name for e in private_establishments})
    assert {item["organisation"]["short_name"] for item in answer["items"]} == {"AP-HP"}
    assert answer["channel"]["kind"] == "public_site"


def test_private_neurosurgeons_never_reach_the_public_site(client, private_establishments):
    answer = client.get("/api/v1/practitioners", {"specialty": "neurosurgery", "limit": 200}).json()
    assert answer["count"] > 0
    private_finess = {e.finess for e in private_establishments}
    shown = {role["establishment"]["finess"] for p in answer["items"] for role in p["roles"]}
    assert shown.isdisjoint(private_finess)
    private_neuro = Practitioner.objects.filter(
        roles__establishment__in=private_establishments, roles__specialties__code="neurosurgery"
    ).values_list("rpps", flat=True)
    assert set(private_neuro).isdisjoint({p["rpps"] for p in answer["items"]})


def test_a_one_hospital_widget_lists_that_hospital_alone(client, one_hospital_widget):
    for request in (
        lambda: client.get("/api/v1/establishments", {"channel": one_hospital_widget.key}),
        lambda: client.get(
            "/api/v1/establishments", headers={"X-Creneau-Channel": one_hospital_widget.key}
        ),
    ):
        answer = request().json()
        assert [item["name"] for item in answer["items"]] == ["Hôpital de la Pitié-Salpêtrière"]
        assert answer["channel"]["perimeter"] == "Pitié seule"
    practitioners = client.get(
        "/api/v1/practitioners", {"channel": one_hospital_widget.key, "limit": 200}
    ).json()
    assert practitioners["count"] > 0
    for practitioner in practitioners["items"]:
        assert {r["establishment"]["name"] for r in practitioner["roles"]} == {
            "Hôpital de la Pitié-Salpêtrière"
        }


def test_a_practitioner_outside_the_perimeter_is_not_found_even_by_id(client, one_hospital_widget):
    outsider = Practitioner.objects.exclude(
        roles__establishment__name="Hôpital de la Pitié-Salpêtrière"
    ).first()
    for ident in (outsider.public_id, outsider.rpps):
        answer = client.get(f"/api/v1/practitioners/{ident}", {"channel": one_hospital_widget.key})
        assert answer.status_code == 404
        assert answer.json()["code"] == "not_found"


def test_a_practitioner_with_roles_in_two_places_shows_only_the_role_inside(
    client, one_hospital_widget
):
    at_pitie = Practitioner.objects.filter(
        roles__establishment__name="Hôpital de la Pitié-Salpêtrière"
    )
    multi = [p for p in at_pitie if p.roles.count() > 1]
    assert multi, "the demo seed gives some Pitié practitioner a second role"
    answer = client.get(
        f"/api/v1/practitioners/{multi[0].rpps}", {"channel": one_hospital_widget.key}
    )
    assert [r["establishment"]["name"] for r in answer.json()["roles"]] == [
        "Hôpital de la Pitié-Salpêtrière"
    ]


def test_an_unknown_channel_key_is_a_clear_404(client):
    answer = client.get(
        "/api/v1/establishments", {"channel": "no-such-key"}, headers={"Accept-Language": "en"}
    )
    assert answer.status_code == 404
    assert answer.json() == {
        "code": "channel_not_found",
        "message": "No channel has the key no-such-key.",
    }


def test_a_disabled_channel_is_refused(client, one_hospital_widget):
    services.channel_set_active(channel=one_hospital_widget, active=False)
    answer = client.get("/api/v1/establishments", {"channel": one_hospital_widget.key})
    assert answer.status_code == 403
    assert answer.json()["code"] == "channel_disabled"


def test_practitioner_search_by_name_ignores_accents_and_case(client):
    target = Practitioner.objects.filter(last_name="Lefèvre").first()
    answer = client.get("/api/v1/practitioners", {"name": "LEFEVRE", "limit": 200}).json()
    assert answer["count"] >= 1
    assert target.rpps in {p["rpps"] for p in answer["items"]}
    assert all("lef" in p["last_name"].lower() for p in answer["items"])


def test_practitioners_filter_by_specialty_and_establishment(client):
    pitie = Establishment.objects.get(name="Hôpital de la Pitié-Salpêtrière")
    answer = client.get(
        "/api/v1/practitioners",
        {"specialty": "neurosurgery", "establishment": pitie.finess, "limit": 200},
    ).json()
    assert answer["count"] >= 1
    for practitioner in answer["items"]:
        assert any(
            r["establishment"]["finess"] == pitie.finess and "neurosurgery" in r["specialties"]
            for r in practitioner["roles"]
        )


def test_pagination_walks_every_practitioner_once(client):
    first = client.get("/api/v1/practitioners", {"limit": 100}).json()
    seen = []
    offset = 0
    while offset < first["count"]:
        page = client.get("/api/v1/practitioners", {"limit": 100, "offset": offset}).json()
        seen += [p["id"] for p in page["items"]]
        offset += 100
    assert len(seen) == len(set(seen)) == first["count"]


def test_listing_practitioners_costs_the_same_queries_for_10_or_200(
    client, django_assert_max_num_queries
):
    client.get("/api/v1/practitioners", {"limit": 10})
    with django_assert_max_num_queries(8):
        client.get("/api/v1/practitioners", {"limit": 10})
    with django_assert_max_num_queries(8):
        client.get("/api/v1/practitioners", {"limit": 200})


def test_specialties_and_visit_types_follow_the_perimeter(client, one_hospital_widget):
    everywhere = {s["code"] for s in client.get("/api/v1/specialties").json()}
    in_widget = {
        s["code"]
        for s in client.get("/api/v1/specialties", {"channel": one_hospital_widget.key}).json()
    }
    assert "neurosurgery" in in_widget
    assert in_widget < everywhere
    visit_types = client.get("/api/v1/visit-types", {"channel": one_hospital_widget.key}).json()
    assert {v["specialty"] for v in visit_types} <= in_widget
    assert any(v["code"] == "neurosurgery-spine" for v in visit_types)


def test_labels_follow_the_language_asked_for(client):
    french = client.get("/api/v1/specialties", headers={"Accept-Language": "fr"}).json()
    english = client.get("/api/v1/specialties", headers={"Accept-Language": "en"}).json()
    assert {s["label"] for s in french if s["code"] == "neurosurgery"} == {"Neurochirurgie"}
    assert {s["label"] for s in english if s["code"] == "neurosurgery"} == {"Neurosurgery"}


@pytest.mark.parametrize(
    ("query", "field"),
    [({"limit": 0}, "limit"), ({"limit": 500}, "limit"), ({"offset": -1}, "offset")],
)
def test_bad_parameters_get_a_422_naming_the_field(client, query, field):
    answer = client.get("/api/v1/practitioners", query)
    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == "invalid_request"
    assert body["errors"][0]["field"] == field


def test_unknown_api_addresses_answer_json(client):
    answer = client.get("/api/v1/nothing-here")
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"


def test_the_openapi_spec_and_docs_are_served(client):
    spec = client.get("/api/v1/openapi.json").json()
    assert {
        "/api/v1/practitioners",
        "/api/v1/establishments",
        "/api/v1/specialties",
        "/api/v1/visit-types",
    } <= set(spec["paths"])
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert b"cdn." not in docs.content  # served from the hub itself, no CDN
