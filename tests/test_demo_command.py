"""`creneau demo` on a fresh data directory, served by real gunicorn on loopback."""

import json
import socket
import sqlite3
import subprocess
import time
import urllib.request

import pytest

from tests.cli import CRENEAU, hub_env, run_creneau


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


@pytest.fixture(scope="module")
def demo_hub(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("demo")
    port = free_port()
    process = subprocess.Popen(
        [*CRENEAU, "demo", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=hub_env(tmp_path_factory.mktemp("elsewhere")),
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/api/v1/specialties", timeout=2)
            break
        except OSError:
            if process.poll() is not None:
                pytest.fail("the demo stopped: " + process.stdout.read())
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("the demo did not answer within 120 s")
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


def test_reset_starts_over_with_new_credentials(tmp_path):
    env = hub_env(tmp_path)
    command = ["demo", "--no-serve", "--data-dir", str(tmp_path)]
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
