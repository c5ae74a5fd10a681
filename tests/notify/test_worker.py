"""The worker as it runs: `creneau worker` processes beside a real hub (the demo, on its own
database), the SMS gateway a real HTTP server on loopback. A worker is killed with SIGKILL at the
worst moment, after the gateway took the SMS and before the worker could record it: nothing is
lost, nothing is sent twice."""

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

from tests.cli import CRENEAU, hub_database, hub_env, start_demo_hub, suite_engine
from tests.notify.gateway import Gateway


def book(base: str, phone: str) -> dict:
    with urllib.request.urlopen(base + "/api/v1/slots?specialty=neurosurgery&limit=1") as answer:
        slot = json.load(answer)["items"][0]
    body = {
        "slot": slot["id"],
        "patient": {
            "last_name": "Roux",
            "first_name": "Inès",
            "birth_date": "1979-04-02",
            "phone": phone,
        },
    }
    request = urllib.request.Request(
        base + "/api/v1/appointments",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def messages(database) -> list[tuple]:
    return database.rows(
        "SELECT kind, status, attempts FROM notify_message WHERE kind = 'confirmation'"
    )


def wait_for(condition, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def start_worker(env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(
        [*CRENEAU, "worker", "--interval", "0.2", "--tick", "0.5"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(params=[suite_engine()])
def engine(request):
    return request.param


def test_a_worker_killed_between_sending_and_recording_sends_the_sms_once(tmp_path_factory, engine):
    data_dir = tmp_path_factory.mktemp(f"crash-{engine}")
    with hub_database(engine, data_dir) as (engine_env, database):
        crash_and_restart(data_dir, engine_env, database)


def crash_and_restart(data_dir, engine_env: dict, database) -> None:
    gateway = Gateway()
    env = hub_env(
        data_dir,
        CRENEAU_HORIZON_WEEKS="2",
        CRENEAU_SMS_BACKEND="http",
        CRENEAU_SMS_URL=gateway.url,
        CRENEAU_OUTGOING_ALLOWED_NETWORKS="127.0.0.0/8",  # the gateway is on loopback
        CRENEAU_MESSAGE_LEASE_SECONDS="2",
        CRENEAU_SWEEP_SECONDS="1",
        **engine_env,
    )
    base, hub = start_demo_hub(data_dir, env, "--no-worker")
    env["CRENEAU_PUBLIC_URL"] = base  # as the demo tells its own worker
    log = (data_dir / "workers.log").open("w", encoding="utf-8")
    try:
        booked = book(base, "06 55 44 33 22")
        assert messages(database) == [("confirmation", "queued", 0)]

        # The gateway takes the SMS; the worker dies before it hears the answer.
        first = start_worker(env, log)
        killed = threading.Event()

        def kill(request) -> None:
            if not killed.is_set():
                os.kill(first.pid, signal.SIGKILL)
                killed.set()
                time.sleep(0.5)  # answer only once the worker is gone

        gateway.on_request = kill
        wait_for(killed.is_set)
        first.wait(timeout=10)
        assert first.returncode == -signal.SIGKILL
        # The message is left as the worker left it: being sent, by a lease that will run out.
        assert messages(database) == [("confirmation", "sending", 1)]
        assert len(gateway.delivered) == 1

        # A worker comes back; once the lease has run out, it sends again with the same key.
        second = start_worker(env, log)
        try:
            wait_for(lambda: messages(database) == [("confirmation", "sent", 2)])
        finally:
            second.terminate()
            second.wait(timeout=30)
        keys = [request["key"] for request in gateway.requests]
        assert len(keys) == 2 and len(set(keys)) == 1
        # The gateway sent one SMS: the second request was the same message, not a new one.
        assert len(gateway.delivered) == 1
        text = next(iter(gateway.delivered.values()))["text"]
        assert text.startswith("RDV confirmé")
        assert text.endswith(f"{base}/a/{booked['manage_token']}")
    finally:
        log.close()
        gateway.close()
        hub.terminate()
        hub.wait(timeout=30)


def test_the_demo_runs_a_worker_that_writes_messages_to_its_outbox(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("outbox")
    env = hub_env(data_dir, CRENEAU_HORIZON_WEEKS="2")
    base, hub = start_demo_hub(data_dir, env)
    try:
        booked = book(base, "06 12 34 56 79")
        outbox = data_dir / "outbox" / "sms.jsonl"
        line = wait_for(lambda: outbox.exists() and outbox.read_text(encoding="utf-8"))
        sms = json.loads(line.splitlines()[0])
        assert sms["to"] == "+33612345679"
        # The link in the SMS opens the appointment on this demo.
        link = sms["text"].split("Gérer : ")[1]
        assert link == f"{base}/a/{booked['manage_token']}"
        with urllib.request.urlopen(link) as page:
            assert f"/appointments/{booked['id']}/" in page.url
            assert "Votre rendez-vous" in page.read().decode()
    finally:
        hub.terminate()
        hub.wait(timeout=30)
    # The demo's worker stopped with it.
    worker_log = (data_dir / "worker.log").read_text(encoding="utf-8")
    assert "Worker" in worker_log
