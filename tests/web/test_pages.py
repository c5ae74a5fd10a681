"""Patient pages and the widget through the whole middleware stack (no browser): what each page
shows and refuses, its headers, and the abuse limits. The browser tests cover the same flow in
Chromium; these run on SQLite and PostgreSQL."""

import re
from datetime import timedelta
from html import unescape

import icalendar
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from creneau.agenda.models import Slot
from creneau.booking.models import Appointment, Hold, WaitingListEntry
from creneau.channels.models import parse_origins
from creneau.directory.branding import validate_brand_colour, validate_logo
from tests.conftest import NOW, role_in

pytestmark = pytest.mark.django_db

DETAILS = {
    "last_name": "Durand",
    "first_name": "Camille",
    "birth_date": "1968-09-21",
    "phone": "06 45 67 89 01",
}


@pytest.fixture
def neurosurgery(pitie_neurosurgeon, private_neurosurgeon, open_agenda):
    open_agenda(pitie_neurosurgeon, codes=("neurosurgery-first", "neurosurgery-spine"))
    open_agenda(private_neurosurgeon)
    return pitie_neurosurgeon


def free_slots(role, count: int, code="neurosurgery-first") -> list[Slot]:
    """Bookable now, one visit type, at distinct times (no two overlap)."""
    found = (
        Slot.objects.filter(
            practitioner_role=role, visit_type__code=code, booked=0, held=0, overlaps=0
        )
        .filter(bookable_from__lte=NOW, bookable_until__gt=NOW)
        .order_by("starts_at")
    )
    return list(found[:count])


def free_slot(role, code="neurosurgery-first") -> Slot:
    return free_slots(role, 1, code)[0]


def book_through_pages(client, slot, prefix="", details=DETAILS):
    held = client.post(f"{prefix}/hold/", {"slot": slot.public_id})
    assert held.status_code == 303, held.content.decode()[:500]
    booked = client.post(held["Location"], details)
    assert booked.status_code == 303, booked.content.decode()[:2000]
    return booked["Location"]


def test_search_shows_the_earliest_public_slots_per_practitioner_and_none_private(
    client, neurosurgery, clock
):
    page = client.get("/search/", {"what": "s:neurosurgery", "when": "soon"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Hôpital de la Pitié-Salpêtrière" in html
    assert "Horizon" not in html and "Clinique" not in html
    first = free_slot(neurosurgery)
    assert first.public_id in html
    # Where: a postcode that no public hospital has finds nothing, accents do not matter.
    assert (
        "Hôpital de la Pitié"
        in client.get(
            "/search/", {"what": "s:neurosurgery", "where": "pitie salpetriere"}
        ).content.decode()
    )
    nothing = client.get("/search/", {"what": "s:neurosurgery", "where": "13001"})
    assert "Aucun hôpital de ce site ne correspond" in nothing.content.decode()
    missing = client.get("/search/", {"what": ""})
    assert missing.status_code == 422
    assert "Choisissez une spécialité" in missing.content.decode()


def test_book_see_download_move_and_cancel_through_the_pages(client, neurosurgery, clock):
    slot = free_slot(neurosurgery)
    manage = book_through_pages(client, slot)
    appointment = Appointment.objects.get(slot=slot)
    assert appointment.patient_phone == "+33645678901"
    page = client.get(manage)
    html = page.content.decode()
    assert "Votre rendez-vous est réservé" in html
    assert page["Cache-Control"] == "no-store"
    assert not page.cookies  # nothing the flow needs lives in a cookie

    calendar = unescape(re.search(r'href="([^"]*calendar\.ics[^"]*)"', html).group(1))
    ics = icalendar.Calendar.from_ical(client.get(calendar).content)
    event = ics.walk("VEVENT")[0]
    assert event["uid"] == f"appointment-{appointment.public_id}@creneau"
    assert str(event.decoded("dtstart").tzinfo) == "Europe/Paris"
    assert event.decoded("dtstart") == slot.starts_at
    assert ics.walk("VTIMEZONE")[0]["tzid"] == "Europe/Paris"

    token = re.search(r"token=([\w-]+)", manage).group(1)
    target = free_slot(neurosurgery, "neurosurgery-first")
    moved = client.post(
        f"/appointments/{appointment.public_id}/move/", {"token": token, "slot": target.public_id}
    )
    assert moved.status_code == 303
    appointment.refresh_from_db()
    assert appointment.slot_id == target.pk
    sequence = icalendar.Calendar.from_ical(client.get(calendar).content).walk("VEVENT")[0]
    assert sequence["sequence"] == 1  # a calendar that imported it updates the same event

    cancelled = client.post(
        f"/appointments/{appointment.public_id}/cancel/", {"token": token, "reason": "elsewhere"}
    )
    assert cancelled.status_code == 303
    appointment.refresh_from_db()
    assert appointment.status == Appointment.Status.CANCELLED_BY_PATIENT
    assert appointment.cancel_reason == "elsewhere"
    again = client.post(f"/appointments/{appointment.public_id}/cancel/", {"token": token})
    assert again.status_code == 409
    assert "plus réservé" in again.content.decode()
    # The cancelled appointment's page shows the cancellation's receipt, not the move's.
    from creneau.ledger.models import Entry

    cancel_entry = Entry.objects.filter(kind="cancel").latest("pk")
    assert appointment.ledger_entry == cancel_entry.public_id
    assert cancel_entry.public_id in client.get(manage).content.decode()
    # Its move link says it is cancelled, not that a slot was just taken.
    move_page = client.get(f"/appointments/{appointment.public_id}/move/", {"token": token})
    assert move_page.status_code == 410
    html = move_page.content.decode()
    assert "Ce rendez-vous ne peut pas être déplacé" in html and "vient d" not in html


def test_the_move_page_offers_other_practitioners_earlier_times_only(
    client, neurosurgery, open_agenda, clock
):
    from creneau.directory.models import PractitionerRole

    colleague = (
        PractitionerRole.objects.filter(
            establishment__organisation__is_public=True, specialties__code="neurosurgery"
        )
        .exclude(practitioner=neurosurgery.practitioner)
        .order_by("pk")
        .first()
    )
    open_agenda(colleague)
    late = free_slots(neurosurgery, 12)[-1]
    manage = book_through_pages(client, late)
    token = re.search(r"token=([\w-]+)", manage).group(1)
    appointment = Appointment.objects.get(slot=late)
    html = client.get(f"/en/appointments/{appointment.public_id}/move/", {"token": token})
    others = re.search(r'<ul class="others">(.*?)</ul>', html.content.decode(), re.S)[1]
    offered = re.findall(r'name="slot" value="([^"]+)"', others)
    assert offered
    for slot in Slot.objects.filter(public_id__in=offered):
        assert slot.starts_at < appointment.starts_at


def test_a_wrong_token_and_an_unknown_appointment_look_the_same(client, neurosurgery, clock):
    manage = book_through_pages(client, free_slot(neurosurgery))
    public_id = manage.split("/")[2]
    wrong = client.get(f"/appointments/{public_id}/", {"token": "x" * 43})
    unknown = client.get("/appointments/aaaaaaaaaaaaaaaa/", {"token": "x" * 43})
    assert wrong.status_code == unknown.status_code == 404
    strip = re.compile(r"/appointments/\w+/")
    assert strip.sub("", wrong.content.decode()) == strip.sub("", unknown.content.decode())
    assert "Durand" not in wrong.content.decode()


def test_a_hold_expired_while_typing_still_books_a_free_slot(client, neurosurgery, clock):
    """The patient took too long: the slot is still free, so it is booked all the same."""
    slot = free_slot(neurosurgery)
    held = client.post("/hold/", {"slot": slot.public_id})
    clock.shift(timedelta(minutes=11))
    form = client.get(held["Location"]).content.decode()
    assert "Vous pouvez tout de même confirmer" in form and "Trop tard" not in form
    late = client.post(held["Location"], DETAILS)
    assert late.status_code == 303, late.content.decode()[:500]
    assert Appointment.objects.get(slot=slot).patient_last_name == "Durand"
    taken = client.post("/hold/", {"slot": slot.public_id})
    assert taken.status_code == 409
    assert "Ce créneau vient d\u2019être pris" in taken.content.decode()


def test_a_slot_taken_after_the_hold_expired_keeps_the_details_and_offers_the_nearest(
    client, neurosurgery, clock
):
    slot, other = free_slots(neurosurgery, 2)
    held = client.post("/en/hold/", {"slot": slot.public_id})
    clock.shift(timedelta(minutes=11))
    # Someone else books the freed slot meanwhile.
    book_through_pages(client, slot, details={**DETAILS, "last_name": "Autre"})
    late = client.post(held["Location"], DETAILS)
    assert late.status_code == 409
    html = late.content.decode()
    assert "This slot was taken while you were typing" in html
    assert 'value="Durand"' in html and 'value="06 45 67 89 01"' in html  # kept
    assert f'name="slot" value="{other.public_id}"' in html
    chosen = client.post(held["Location"], {**DETAILS, "slot": other.public_id})
    assert chosen.status_code == 303
    assert Appointment.objects.get(slot=other).patient_last_name == "Durand"


def test_patient_details_are_checked_field_by_field_and_nothing_is_booked(
    client, neurosurgery, clock
):
    slot = free_slot(neurosurgery)
    held = client.post("/en/hold/", {"slot": slot.public_id})
    page = client.post(
        held["Location"],
        {**DETAILS, "phone": "12", "birth_date": "2090-01-01", "email": "camille@"},
    )
    assert page.status_code == 422
    html = page.content.decode()
    # Every error at once: the e-mail the form cannot read, and the booking rules' own.
    assert '<a href="#id_email">E-mail: ' in html
    assert 'id="id_birth_date_error"' in html and "future" in html
    # The page opens on the first field in error, which names its error; the summary links to each.
    birth = re.search(r"<input[^>]*name=\"birth_date\"[^>]*>", html)[0]
    assert "autofocus" in birth and 'aria-describedby="id_birth_date_error"' in birth
    assert "autofocus" not in re.search(r"<input[^>]*name=\"phone\"[^>]*>", html)[0]
    assert '<a href="#id_birth_date">Date of birth: ' in html
    assert '<a href="#id_phone">Phone: ' in html
    assert not Appointment.objects.filter(slot=slot).exists()


def test_a_form_posted_from_another_site_is_refused(client, neurosurgery, clock):
    slot = free_slot(neurosurgery)
    refused = client.post(
        "/hold/", {"slot": slot.public_id}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert refused.status_code == 403
    other = client.post(
        "/hold/", {"slot": slot.public_id}, headers={"Origin": "https://evil.example"}
    )
    assert other.status_code == 403
    assert not Hold.objects.filter(slot=slot).exists()


def test_one_visitor_keeps_at_most_three_slots_at_once(client, neurosurgery, clock, settings):
    settings.CRENEAU_HOLDS_PER_VISITOR = 3
    slots = free_slots(neurosurgery, 4)
    for slot in slots[:3]:
        assert client.post("/hold/", {"slot": slot.public_id}).status_code == 303
    fourth = client.post("/hold/", {"slot": slots[3].public_id})
    assert fourth.status_code == 429
    assert "Vous gardez déjà 3 créneaux" in fourth.content.decode()
    other = client.post("/hold/", {"slot": slots[3].public_id}, REMOTE_ADDR="192.0.2.7")
    assert other.status_code == 303


def test_bookings_are_limited_per_phone_number_in_pages_and_api(
    client, neurosurgery, clock, settings
):
    settings.CRENEAU_RATE_LIMITS = {**settings.CRENEAU_RATE_LIMITS, "book_phone": (2, 86400)}
    slots = free_slots(neurosurgery, 3)
    book_through_pages(client, slots[0], details={**DETAILS, "phone": "0645678901"})
    book_through_pages(client, slots[1], details={**DETAILS, "phone": "+33 6 45 67 89 01"})
    held = client.post("/hold/", {"slot": slots[2].public_id}, REMOTE_ADDR="198.51.100.4")
    page = client.post(held["Location"], DETAILS, REMOTE_ADDR="198.51.100.4")
    assert page.status_code == 429
    assert int(page["Retry-After"]) > 0
    assert "Trop de réservations pour ce numéro" in page.content.decode()
    api = client.post(
        "/api/v1/appointments",
        {"slot": slots[2].public_id, "patient": {**DETAILS, "phone": "06 45 67 89 01"}},
        content_type="application/json",
    )
    assert api.status_code == 429
    assert api.json()["code"] == "too_many_requests"


def test_the_widget_is_framed_only_by_its_origins_and_offers_only_its_perimeter(
    client, widget, neurosurgery, clock
):
    home = client.get(f"/embed/{widget.key}/")
    assert home.status_code == 200
    # The policy's directives, in whatever order the middleware writes them.
    directives = {
        d.strip().split(" ", 1)[0]: d.strip() for d in home["Content-Security-Policy"].split(";")
    }
    assert directives["frame-ancestors"] == "frame-ancestors https://www.example-hospital.fr"
    assert "X-Frame-Options" not in home
    assert 'data-embed-origins="https://www.example-hospital.fr"' in home.content.decode()
    site = client.get("/")
    assert "frame-ancestors 'none'" in site["Content-Security-Policy"]
    assert site["X-Frame-Options"] == "DENY"
    # The widget's colour, from its own stylesheet (no inline style under the policy).
    css = re.search(r'href="(/branding/channel/[^"]+)"', home.content.decode()).group(1)
    assert "--brand-colour: #6b2d5c;" in client.get(css).content.decode()

    results = client.get(f"/embed/{widget.key}/search/", {"what": "s:neurosurgery"})
    ids = set(re.findall(r'name="slot" value="(\w+)"', results.content.decode()))
    assert ids
    offered = Slot.objects.filter(public_id__in=ids)
    assert {s.practitioner_role.department_id for s in offered} == {neurosurgery.department_id}
    # A slot of another hospital cannot be held through the widget, even by its id.
    elsewhere = (
        Slot.objects.exclude(establishment=neurosurgery.establishment).filter(booked=0).first()
    )
    refused = client.post(f"/embed/{widget.key}/hold/", {"slot": elsewhere.public_id})
    assert refused.status_code == 403
    # The flow completes inside the widget and the appointment records the widget's channel.
    book_through_pages(client, free_slot(neurosurgery), prefix=f"/embed/{widget.key}")
    assert Appointment.objects.get(channel=widget).establishment == neurosurgery.establishment


def test_a_public_site_key_or_an_unknown_key_is_no_widget(client, public_site):
    assert client.get(f"/embed/{public_site.key}/").status_code == 404
    assert client.get("/embed/nope/").status_code == 404


def test_embed_js_is_served_for_any_site_and_checks_origins(client):
    script = client.get("/embed.js")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("text/javascript")
    assert script["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert b"event.origin !== hub" in script.content


def test_waiting_list_join_then_take_the_offered_slot(client, neurosurgery, clock):
    joined = client.post(
        "/waiting-list/",
        {**DETAILS, "visit_type": neurosurgery_first_id(neurosurgery), "before": "2027-03-20"},
    )
    assert joined.status_code == 303, joined.content.decode()[:1500]
    entry_url = joined["Location"]
    entry = WaitingListEntry.objects.get()
    slot = free_slot(neurosurgery)
    other = book_through_pages(client, slot, details={**DETAILS, "phone": "0611111111"})
    token = re.search(r"token=([\w-]+)", other).group(1)
    client.post(f"/appointments/{other.split('/')[2]}/cancel/", {"token": token})
    offer = client.get(entry_url)
    assert "Un créneau vous est proposé" in offer.content.decode()
    entry_token = re.search(r"token=([\w-]+)", entry_url).group(1)
    taken = client.post(
        f"/waiting-list/{entry.public_id}/", {"token": entry_token, "action": "accept"}
    )
    assert taken.status_code == 303
    assert Appointment.objects.filter(slot=slot, status="booked").count() == 1


def neurosurgery_first_id(role) -> str:
    from creneau.directory.models import VisitType

    return VisitType.objects.get(
        organisation_id=role.establishment.organisation_id, code="neurosurgery-first"
    ).public_id


def test_brand_colours_must_keep_white_text_readable_and_origins_must_be_origins():
    validate_brand_colour("#12417a")
    with pytest.raises(ValidationError, match=r"4[.,]5:1"):
        validate_brand_colour("#ffdd00")
    with pytest.raises(ValidationError):
        validate_brand_colour("blue")
    assert parse_origins("https://WWW.Hopital.fr/\nhttp://localhost:8001") == [
        "https://www.hopital.fr",
        "http://localhost:8001",
    ]
    for bad in ("https://hopital.fr/page", "*.hopital.fr", "javascript:alert(1)", "https://*.fr"):
        with pytest.raises(ValidationError):
            parse_origins(bad)


def test_the_same_page_in_english_by_its_address(client, neurosurgery, clock):
    english = client.get("/en/search/", {"what": "s:neurosurgery"})
    assert '<html lang="en">' in english.content.decode()
    assert "Earliest slots" in english.content.decode()
    assert 'href="/search/?what=s%3Aneurosurgery" hreflang="fr"' in english.content.decode()


def test_the_admin_shows_the_widget_snippet_and_a_preview(client, hospital_admin, widget):
    client.force_login(hospital_admin)
    page = client.get(f"/admin/channels/channel/{widget.pk}/change/")
    assert page.status_code == 200
    html = unescape(page.content.decode())
    assert f'<script src="http://testserver/embed.js" data-channel="{widget.key}" async>' in html
    assert f'<iframe src="http://testserver/embed/{widget.key}/"' in html
    assert f'href="/embed/{widget.key}/"' in html
    assert "https://www.example-hospital.fr" in html


def test_a_shared_location_shows_distances_nearest_first(client, neurosurgery, open_agenda, clock):
    bicetre = role_in("Hôpital Bicêtre", "neurosurgery")
    open_agenda(bicetre)
    pitie = neurosurgery.establishment
    page = client.get(
        "/search/",
        {"what": "s:neurosurgery", "latitude": pitie.latitude, "longitude": pitie.longitude},
    )
    html = page.content.decode()
    assert "les plus proches d’abord" in html  # noqa: RUF001
    distances = [float(km.replace(",", ".")) for km in re.findall(r"à ([\d,]+) km", html)]
    assert distances[0] == 0.0
    assert distances == sorted(distances) and distances[-1] > 0


# The smallest valid PNG: one transparent pixel.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)


def admin_form_data(page) -> dict:
    """What the admin's change form would send back unchanged."""
    form = page.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if name == "logo" or value is None:
            continue
        data[name] = value
    return data


def test_a_logo_uploaded_in_the_admin_heads_the_patient_pages(
    client, hospital_admin, aphp, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(hospital_admin)
    address = f"/admin/directory/organisation/{aphp.pk}/change/"
    data = admin_form_data(client.get(address))

    # A file that is not the image its name says is refused, and nothing changes.
    fake = SimpleUploadedFile("logo.png", b"<script>alert(1)</script>", "image/png")
    refused = client.post(address, {**data, "logo": fake})
    assert refused.status_code == 200
    assert "n\u2019est pas l\u2019image PNG" in unescape(refused.content.decode())
    aphp.refresh_from_db()
    assert not aphp.logo

    saved = client.post(address, {**data, "logo": SimpleUploadedFile("aphp.png", PIXEL)})
    assert saved.status_code == 302
    aphp.refresh_from_db()
    assert aphp.logo and aphp.name == data["name"]

    home = client.get("/").content.decode()
    src = re.search(r'<img class="logo" src="([^"]+)"', home)[1]
    logo = client.get(src)
    assert logo.status_code == 200 and logo["Content-Type"] == "image/png"
    assert b"".join(logo.streaming_content) == PIXEL
    assert "sandbox" in logo["Content-Security-Policy"]


def test_a_logo_must_be_the_image_its_name_says():
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'
    validate_logo(SimpleUploadedFile("logo.svg", svg))
    validate_logo(SimpleUploadedFile("logo.jpg", b"\xff\xd8\xff\xe0" + bytes(20)))
    for name, content in [
        ("logo.svg", b"<html><script>alert(1)</script></html>"),
        ("logo.jpg", PIXEL),
        ("logo.gif", b"GIF89a"),
        ("logo.webp", b"RIFF\0\0\0\0WAVE"),
    ]:
        with pytest.raises(ValidationError):
            validate_logo(SimpleUploadedFile(name, content))


def card_of(card: str) -> tuple[str, str]:
    """A result card's practitioner and place."""
    name = re.search(r"<h3><a [^>]*>([^<]+)</a>", card)[1]
    return name, re.search(r'<p class="place">([^<]+)', card)[1]


def test_results_are_one_card_per_practitioner_counted_and_paged_through(
    client, open_agenda, clock
):
    """Twelve neurosurgeons with two visits each: one card per practitioner (not per visit),
    how many were found, and a second page with the rest."""
    from creneau.directory.models import PractitionerRole

    roles = list(
        PractitionerRole.objects.filter(
            establishment__organisation__is_public=True, specialties__code="neurosurgery"
        ).order_by("pk")[:12]
    )
    assert len(roles) == 12
    for role in roles:
        open_agenda(role, codes=("neurosurgery-first", "neurosurgery-spine"))
    first = client.get("/en/search/", {"what": "s:neurosurgery", "when": "soon"}).content.decode()
    assert "12 practitioners have a free slot. Page 1 of 2." in first
    cards = re.findall(r'<li class="card result">.*?</li>', first, re.S)
    assert len(cards) == 10
    names = [card_of(card) for card in cards]
    assert len(set(names)) == 10  # each practitioner once in each place
    # Both visits on one card: each time names its visit.
    assert "First consultation" in cards[0] and "Spine" in cards[0]
    second_url = unescape(re.search(r'href="([^"]+)" rel="next"', first)[1])
    second = client.get(second_url).content.decode()
    assert "Page 2 of 2." in second
    later = [
        re.search(r"<h3><a [^>]*>([^<]+)</a>", c)[1]
        for c in re.findall(r'<li class="card result">.*?</li>', second, re.S)
    ]
    assert len(later) == 2 and not set(later) & set(names)


def test_a_practitioners_week_with_all_visits_names_each_slots_visit(client, neurosurgery, clock):
    practitioner = neurosurgery.practitioner.public_id
    week = free_slot(neurosurgery).starts_at.date().isoformat()
    html = client.get(f"/en/practitioners/{practitioner}/", {"week": week}).content.decode()
    buttons = re.findall(r'<button type="submit" name="slot"[^>]*>(.*?)</button>', html, re.S)
    assert buttons
    visible = [re.sub(r'<span class="visually-hidden">.*?</span>', "", b) for b in buttons]
    assert all('class="slot-visit"' in b for b in visible)
    assert any("Spine" in b for b in visible) and any("First consultation" in b for b in visible)
    one_visit = client.get(
        f"/en/practitioners/{practitioner}/",
        {"week": week, "visit": free_slot(neurosurgery).visit_type.public_id},
    ).content.decode()
    assert 'class="slot-visit"' not in one_visit
