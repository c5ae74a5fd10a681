"""`creneau demo` on a fresh data directory, served by real gunicorn on loopback."""

import base64
import json
import sqlite3
import urllib.error
import urllib.request
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.cli import demo_copied, hub_env, run_creneau, start_demo_hub


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("demo")
    # Four weeks of slots rather than 26: the same code, a quicker start.
    env = hub_env(tmp_path_factory.mktemp("elsewhere"), CRENEAU_HORIZON_WEEKS="4")
    try:
        base, process = start_demo_hub(data_dir, env)
    except RuntimeError as error:
        pytest.fail(str(error))
    yield base, data_dir, process
    process.terminate()
    process.wait(timeout=20)


def test_the_demo_serves_the_public_hospitals_and_no_private_one(demo_hub):
    base, data_dir, _process = demo_hub
    listed = get_json(base + "/api/v1/establishments?limit=200")
    assert listed["count"] >= 38
    assert {e["organisation"]["short_name"] for e in listed["items"]} == {"AP-HP"}
    database = sqlite3.connect(data_dir / "creneau.sqlite3")
    private = {
        row[0]
        for row in database.execute(
            "select e.finess from directory_establishment e join directory_organisation o "
            "on o.id = e.organisation_id where not o.is_public"
        )
    }
    assert len(private) >= 6
    assert private.isdisjoint({e["finess"] for e in listed["items"]})
    assert database.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_the_demo_writes_its_credentials_and_the_admin_login_works(demo_hub):
    base, data_dir, _process = demo_hub
    credentials = json.loads((data_dir / "demo-credentials.json").read_text())
    assert credentials["hub_url"] == base
    assert {c["kind"] for c in credentials["channels"]} >= {"public_site"}
    login_page = urllib.request.urlopen(base + "/admin/login/").read().decode()
    assert "csrfmiddlewaretoken" in login_page
    key = next(
        c["key"]
        for c in credentials["channels"]
        if c["kind"] == "public_site" and c["organisation"] == "AP-HP"
    )
    same = get_json(f"{base}/api/v1/establishments?channel={key}&limit=1")
    assert same["channel"]["kind"] == "public_site"


def test_the_demo_pages_carry_a_strict_content_security_policy(demo_hub):
    base, _data_dir, _process = demo_hub
    with urllib.request.urlopen(base + "/") as answer:
        policy = answer.headers["Content-Security-Policy"]
        page = answer.read().decode()
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "Hôpital Bicêtre" in page
    with urllib.request.urlopen(base + "/static/creneau/site.css") as answer:
        assert answer.status == 200


def test_the_demo_registers_the_platforms_and_their_calls_answer(demo_hub):
    base, data_dir, _process = demo_hub
    credentials = json.loads((data_dir / "demo-credentials.json").read_text())
    platforms = {p["kind"]: p for p in credentials["platforms"]}
    assert set(platforms) == {"sas", "smart_finder", "fhir_partner"}
    sas = platforms["sas"]
    assert sas["certificate_header"] == "X-SSL-Client-S-DN" and "CN=" in sas["certificate_subject"]
    pair = base64.b64encode(f"{sas['client_id']}:{sas['client_secret']}".encode()).decode()
    request = urllib.request.Request(
        base + sas["token_url"],
        data=b"grant_type=client_credentials",
        headers={"Authorization": f"Basic {pair}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        token = json.load(answer)["access_token"]
    assert credentials["fhir"]["base"] == base + "/fhir"
    query = urllib.request.Request(
        credentials["fhir"]["sas_query"], headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(query, timeout=10) as answer:
        bundle = json.load(answer)
    assert bundle["meta"]["profile"] == ["http://sas.fr/fhir/StructureDefinition/BundleAgregateur"]
    practitioners = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Practitioner"]
    assert bundle["total"] > 0 and 1 <= len(practitioners) <= 3
    manifest = get_json(credentials["fhir"]["smart_manifest"])
    assert [o["type"] for o in manifest["output"][:3]] == ["Location", "Schedule", "Slot"]


def test_a_demo_practitioner_s_calendar_takes_slots_out(demo_hub):
    """The demo's calendar on its example site: a weekly staff meeting (but next week) and a
    congress day remove that practitioner's slots; `creneau agenda busy` says so."""
    base, data_dir, _process = demo_hub
    credentials = json.loads((data_dir / "demo-credentials.json").read_text())
    calendar = credentials["calendar"]
    assert "Calendar" in (data_dir / "server.log").read_text()
    with urllib.request.urlopen(calendar["ics_url"], timeout=10) as answer:
        assert b"BEGIN:VCALENDAR" in answer.read()
    today = datetime.now(UTC).date()
    busy = run_creneau(
        "agenda",
        "busy",
        calendar["role"],
        "--from",
        today.isoformat(),
        "--to",
        # Past the congress and a week more: on the meeting's own weekday, once its hour has
        # passed, the next meeting is the one three weeks on (the second week is skipped and
        # the third is the congress day).
        (today + timedelta(days=22)).isoformat(),
        "--json",
        env=hub_env(data_dir),
        check=True,
    )
    intervals = json.loads(busy.stdout)
    hours = sorted(
        (datetime.fromisoformat(i["end"]) - datetime.fromisoformat(i["start"])).total_seconds()
        / 3600
        for i in intervals
    )
    # The staff meeting (an hour, weekly but for the second week) and a whole congress day.
    assert hours[0] == 1.0 and hours[-1] == 24.0, intervals
    # That day, the practitioner's week shows no slot, and the week before shows some.
    congress = next(i for i in intervals if i["end"][:10] != i["start"][:10])
    day = (datetime.fromisoformat(congress["start"]) + timedelta(hours=2)).date()
    family = calendar["practitioner"].split()[-1]
    practitioner = get_json(f"{base}/api/v1/practitioners?name={family}&limit=50")
    role_ids = {r["id"] for p in practitioner["items"] for r in p["roles"]}
    assert calendar["role"] in role_ids
    who = next(
        p for p in practitioner["items"] if calendar["role"] in {r["id"] for r in p["roles"]}
    )
    week = get_json(f"{base}/api/v1/practitioners/{who['id']}/availability?week={day}")
    slots_that_day = [d["slots"] for d in week["days"] if d["date"] == day.isoformat()]
    assert slots_that_day == [[]]
    before = get_json(
        f"{base}/api/v1/practitioners/{who['id']}/availability?week={day - timedelta(days=7)}"
    )
    assert any(d["slots"] for d in before["days"])


def test_a_second_run_keeps_the_data(demo_hub):
    _base, data_dir, _process = demo_hub
    before = json.loads((data_dir / "demo-credentials.json").read_text())
    port = before["hub_url"].rsplit(":", 1)[1]
    again = run_creneau(
        "demo",
        "--no-serve",
        "--data-dir",
        str(data_dir),
        "--port",
        port,
        env=hub_env(data_dir),
        check=True,
    )
    assert "Keeping the demo data" in again.stdout
    after = json.loads((data_dir / "demo-credentials.json").read_text())
    assert after["admin"]["password"] == before["admin"]["password"]
    assert after["channels"] == before["channels"]
    # The operators' API secrets stay (their servers keep working); each agent gets fresh
    # backup codes, so that those written always work.
    assert [o["api_client"] for o in after["operators"]] == [
        o["api_client"] for o in before["operators"]
    ]
    assert [o["kind"] for o in after["operators"]] == ["call_centre", "call_centre", "partner"]
    assert after["platforms"] == before["platforms"]
    assert (
        after["operators"][0]["agent"]["backup_codes"]
        != before["operators"][0]["agent"]["backup_codes"]
    )


def test_reset_starts_over_with_new_credentials(tmp_path):
    env = hub_env(tmp_path, CRENEAU_HORIZON_WEEKS="4")
    command = ["demo", "--no-serve", "--data-dir", str(tmp_path)]
    demo_copied(tmp_path, env)  # a demo loaded before
    run_creneau(*command, env=env, check=True)
    first = json.loads((tmp_path / "demo-credentials.json").read_text())
    database = sqlite3.connect(tmp_path / "creneau.sqlite3")
    database.execute("delete from channels_channelevent")
    database.commit()
    database.close()
    reset = run_creneau(*command, "--reset", env=env, check=True)
    assert "Demo data deleted." in reset.stdout
    assert "Loading the demo network" in reset.stdout
    second = json.loads((tmp_path / "demo-credentials.json").read_text())
    assert second["admin"]["password"] != first["admin"]["password"]
    database = sqlite3.connect(tmp_path / "creneau.sqlite3")
    assert database.execute("select count(*) from channels_channelevent").fetchone()[0] > 0


def call(method: str, url: str, body: dict | None = None, **headers) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_a_patient_finds_holds_books_moves_and_cancels_the_earliest_neurosurgery_slot(demo_hub):
    base = demo_hub[0]
    patient = {
        "last_name": "Durand",
        "first_name": "Inès",
        "birth_date": "1975-02-03",
        "phone": "0612345678",
    }
    found = get_json(base + "/api/v1/slots?specialty=neurosurgery&limit=20")["items"]
    assert found, "the demo offers neurosurgery slots"
    assert {i["establishment"]["name"] for i in found} <= {
        e["name"] for e in get_json(base + "/api/v1/establishments?limit=200")["items"]
    }
    earliest = found[0]
    status, hold = call("POST", base + "/api/v1/holds", {"slot": earliest["id"]})
    assert status == 201
    status, booked = call(
        "POST",
        base + "/api/v1/appointments",
        {"hold": hold["id"], "patient": patient},
        **{"Idempotency-Key": "demo-1"},
    )
    assert status == 201, booked
    token = {"X-Manage-Token": booked["manage_token"]}
    # Someone else waits for this visit type, and will get the slot when it frees.
    status, waiting = call(
        "POST",
        base + "/api/v1/waiting-list",
        {
            "visit_type": earliest["visit_type"]["id"],
            "before": str(
                date.fromisoformat(earliest["local_starts_at"][:10]) + timedelta(days=21)
            ),
            "patient": {**patient, "first_name": "Paul"},
        },
    )
    assert status == 201, waiting
    same_kind = [i for i in found[1:] if i["visit_type"]["id"] == earliest["visit_type"]["id"]]
    later = same_kind[-1]
    status, moved = call(
        "POST",
        f"{base}/api/v1/appointments/{booked['id']}/reschedule",
        {"slot": later["id"]},
        **token,
    )
    assert status == 200 and moved["starts_at"] == later["starts_at"], moved
    # The slot left behind went to the waiting patient first.
    status, entry = call(
        "GET",
        f"{base}/api/v1/waiting-list/{waiting['id']}",
        **{"X-Manage-Token": waiting["manage_token"]},
    )
    assert entry["status"] == "offered" and entry["offer"]["slot"]["id"] == earliest["id"]
    status, cancelled = call(
        "POST", f"{base}/api/v1/appointments/{booked['id']}/cancel", {"reason": "mieux"}, **token
    )
    assert status == 200 and cancelled["status"] == "cancelled_patient"
    again = get_json(base + "/api/v1/slots?specialty=neurosurgery&limit=100")["items"]
    assert later["id"] in {i["id"] for i in again}


def test_an_unknown_page_is_a_clear_404_page_not_a_server_error(demo_hub):
    base = demo_hub[0]
    for path in ("/favicon.ico", "/rendez-vous/inconnu"):
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(base + path, timeout=10)
        assert missing.value.code == 404
        page = missing.value.read().decode()
        assert "<html" in page and "Créneau" in page


def test_the_demo_staff_sign_in_and_see_their_scope_only(demo_hub):
    """The demo's department secretary signs in (password, then a backup code) and sees the
    Pitié's neurosurgery agenda; the auditor sees no practitioner at all."""
    import http.cookiejar
    import re
    import urllib.parse

    base, data_dir, _process = demo_hub
    staff = json.loads((data_dir / "demo-credentials.json").read_text())["staff"]
    assert {s["role"] for s in staff} == {"secretary", "practitioner", "est_admin", "auditor"}
    secretary = next(s for s in staff if s["role"] == "secretary")
    assert secretary["scope"]["establishment"] == "Hôpital de la Pitié-Salpêtrière"

    def signed_in(account: dict):
        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        page = browser.open(base + "/staff/login/").read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = {
            "csrfmiddlewaretoken": token,
            "username": account["username"],
            "password": account["password"],
            "otp_token": account["backup_codes"][0],
        }
        request = urllib.request.Request(
            base + "/staff/login/",
            data=urllib.parse.urlencode(form).encode(),
            headers={"Referer": base + "/staff/login/"},
        )
        home = browser.open(request)
        assert home.url.endswith("/staff/"), home.url
        return browser, home.read().decode()

    browser, home = signed_in(secretary)
    department = re.search(r'href="(/staff/agenda/department/\d+/)"', home).group(1)
    agenda = browser.open(base + department).read().decode()
    assert secretary["scope"]["department"] in agenda
    with pytest.raises(urllib.error.HTTPError) as refused:
        browser.open(base + "/staff/agenda/department/999999/")
    assert refused.value.code == 404
    _browser, auditor_home = signed_in(next(s for s in staff if s["role"] == "auditor"))
    assert "/staff/agenda/" not in auditor_home


def test_the_served_demo_adds_up_every_workers_metrics(demo_hub):
    """gunicorn's workers each count in the metrics directory; a scrape adds them up, whichever
    worker answers it."""
    from tests.test_operations import metric

    base, data_dir, _process = demo_hub
    assert (data_dir / "metrics").is_dir()

    def scrape() -> str:
        with urllib.request.urlopen(base + "/metrics", timeout=10) as answer:
            return answer.read().decode()

    ready = {"method": "GET", "route": "readyz", "status": "2xx"}
    before = metric(scrape(), "creneau_http_requests_total", **ready)
    for _ in range(12):
        assert get_json(base + "/readyz")["database"] == "ok"
    for _ in range(4):  # whichever of the workers answers the scrape
        assert metric(scrape(), "creneau_http_requests_total", **ready) == before + 12
    assert list((data_dir / "metrics").glob("*.db"))
