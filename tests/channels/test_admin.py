"""Hospital IT manages perimeters and channels in the admin; the API follows at once."""

from creneau.channels.models import Channel, Perimeter
from creneau.directory.models import Establishment


def test_a_widget_channel_created_in_the_admin_with_one_hospital_lists_it_alone(
    client, aphp, hospital_admin
):
    client.force_login(hospital_admin)
    necker = Establishment.objects.get(name="Hôpital Necker-Enfants malades")
    answer = client.post(
        "/admin/channels/perimeter/add/",
        {
            "organisation": aphp.pk,
            "name": "Necker seul",
            "establishments": [necker.pk],
            "note": "widget du site de Necker",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    perimeter = Perimeter.objects.get(name="Necker seul")
    version = perimeter.versions.get()
    assert version.published_by == hospital_admin
    answer = client.post(
        "/admin/channels/channel/add/",
        {
            "organisation": aphp.pk,
            "name": "Widget Necker",
            "kind": "embed",
            "perimeter": perimeter.pk,
            "is_active": "on",
            "events-TOTAL_FORMS": "0",
            "events-INITIAL_FORMS": "0",
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    channel = Channel.objects.get(name="Widget Necker")
    assert channel.events.get().action == "created"

    client.logout()
    listed = client.get("/api/v1/establishments", {"channel": channel.key}).json()
    assert [e["name"] for e in listed["items"]] == [necker.name]


def test_editing_a_perimeter_in_the_admin_publishes_a_new_version(client, aphp, hospital_admin):
    client.force_login(hospital_admin)
    hospitals = list(Establishment.objects.filter(organisation=aphp)[:2])
    client.post(
        "/admin/channels/perimeter/add/",
        {
            "organisation": aphp.pk,
            "name": "Deux",
            "establishments": [hospitals[0].pk],
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )
    perimeter = Perimeter.objects.get(name="Deux")
    answer = client.post(
        f"/admin/channels/perimeter/{perimeter.pk}/change/",
        {
            "establishments": [h.pk for h in hospitals],
            "note": "ajout",
            "versions-TOTAL_FORMS": "1",
            "versions-INITIAL_FORMS": "1",
            "versions-0-id": perimeter.versions.get().pk,
            "versions-0-perimeter": perimeter.pk,
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:3000]
    assert list(perimeter.versions.order_by("number").values_list("number", flat=True)) == [1, 2]
    assert perimeter.versions.get(number=2).establishments.count() == 2


def test_a_channel_cannot_be_bound_to_another_organisations_perimeter_in_the_admin(
    client, aphp, hospital_admin, private_establishments
):
    client.force_login(hospital_admin)
    foreign = private_establishments[0].organisation
    client.post(
        "/admin/channels/perimeter/add/",
        {
            "organisation": foreign.pk,
            "name": "Privé",
            "establishments": [private_establishments[0].pk],
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )
    answer = client.post(
        "/admin/channels/channel/add/",
        {
            "organisation": aphp.pk,
            "name": "Fuite",
            "kind": "embed",
            "perimeter": Perimeter.objects.get(name="Privé").pk,
            "is_active": "on",
            "events-TOTAL_FORMS": "0",
            "events-INITIAL_FORMS": "0",
        },
    )
    assert answer.status_code == 200
    assert "un périmètre de son organisation" in answer.content.decode()  # French by default
    assert not Channel.objects.filter(name="Fuite").exists()


def test_staff_without_rights_cannot_touch_channels(client, secretary):
    client.force_login(secretary)
    assert client.get("/admin/channels/channel/").status_code == 403
    assert client.get("/admin/channels/perimeter/add/").status_code == 403


def test_the_admin_directory_lists_are_searchable(client, hospital_admin):
    client.force_login(hospital_admin)
    answer = client.get("/admin/directory/practitioner/", {"q": "Lefèvre"})
    assert answer.status_code == 200
    assert "Lefèvre" in answer.content.decode()
    answer = client.get("/admin/directory/establishment/", {"q": "Bicêtre"})
    assert "Hôpital Bicêtre" in answer.content.decode()
