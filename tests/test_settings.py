"""Production settings refuse unsafe configurations; `check --deploy` is clean."""

import os

import pytest

from tests.cli import hub_env, run_creneau

GOOD_SECRET = "k3H9s!Vq2#rT8wZ@pL5mN0xB7cD4fG6jY1uE%aQ^iO&eR*tU(yW)" * 2


def run(env_extra: dict[str, str], *args: str):
    return run_creneau(*args, env=hub_env(os.environ["CRENEAU_DATA_DIR"], **env_extra))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CRENEAU_PRODUCTION": "1", "CRENEAU_ALLOWED_HOSTS": "rdv.example"}, "CRENEAU_SECRET_KEY"),
        (
            {
                "CRENEAU_PRODUCTION": "1",
                "CRENEAU_ALLOWED_HOSTS": "rdv.example",
                "CRENEAU_SECRET_KEY": "django-insecure-" + "x" * 60,
            },
            "CRENEAU_SECRET_KEY",
        ),
        (
            {
                "CRENEAU_PRODUCTION": "1",
                "CRENEAU_DEBUG": "1",
                "CRENEAU_SECRET_KEY": GOOD_SECRET,
                "CRENEAU_ALLOWED_HOSTS": "rdv.example",
            },
            "CRENEAU_DEBUG must be off",
        ),
        ({"CRENEAU_PRODUCTION": "1", "CRENEAU_SECRET_KEY": GOOD_SECRET}, "CRENEAU_ALLOWED_HOSTS"),
        ({"CRENEAU_DEBUG": "maybe"}, "CRENEAU_DEBUG must be a boolean"),
        (
            {"CRENEAU_DATABASE_URL": "postgres://postgres@127.0.0.1/x", "CRENEAU_DB_POOL": "many"},
            "CRENEAU_DB_POOL must be 'min,max' connections",
        ),
        (
            {"CRENEAU_DATABASE_REPLICA_URLS": "sqlite:///replica.sqlite3"},
            "CRENEAU_DATABASE_REPLICA_URLS are PostgreSQL replicas",
        ),
        (
            {
                "CRENEAU_OIDC_CLIENT_ID": "creneau-hub",
                "CRENEAU_OIDC_TOKEN_URL": "https://login.hopital.example/token",
            },
            "CRENEAU_OIDC_ISSUER is required",
        ),
    ],
)
def test_production_refuses_to_start_unsafe(env, message):
    result = run(env, "check")
    assert result.returncode != 0
    assert message in result.stderr


def test_the_secret_key_may_come_from_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(GOOD_SECRET + "\n")
    result = run(
        {
            "CRENEAU_PRODUCTION": "1",
            "CRENEAU_SECRET_KEY_FILE": str(secret),
            "CRENEAU_ALLOWED_HOSTS": "rdv.example",
        },
        "check",
    )
    assert result.returncode == 0, result.stderr


def test_check_deploy_is_clean_for_production_settings():
    result = run(
        {
            "CRENEAU_PRODUCTION": "1",
            "CRENEAU_SECRET_KEY": GOOD_SECRET,
            "CRENEAU_ALLOWED_HOSTS": "rdv.example",
            "CRENEAU_TRUSTED_PROXIES": "10.0.0.5,fd00::/8",
        },
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_check_deploy_warns_of_limits_counted_per_process_and_of_no_trusted_proxy():
    production = {
        "CRENEAU_PRODUCTION": "1",
        "CRENEAU_SECRET_KEY": GOOD_SECRET,
        "CRENEAU_ALLOWED_HOSTS": "rdv.example",
    }
    per_process = run(
        {**production, "CRENEAU_CACHE_URL": "locmem://", "CRENEAU_TRUSTED_PROXIES": "10.0.0.5"},
        "check",
        "--deploy",
    )
    assert "creneau.W001" in per_process.stderr + per_process.stdout
    assert "creneau.W002" not in per_process.stderr + per_process.stdout
    no_proxy = run(production, "check", "--deploy")
    assert "creneau.W002" in no_proxy.stderr + no_proxy.stdout
    assert "creneau.W001" not in no_proxy.stderr + no_proxy.stdout
    bad = run({**production, "CRENEAU_TRUSTED_PROXIES": "the proxy"}, "check")
    assert bad.returncode != 0
    assert "CRENEAU_TRUSTED_PROXIES" in bad.stderr


def test_sqlite_runs_in_wal_mode(db):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        mode = cursor.fetchone()[0]
    # The test database lives in memory, where SQLite answers "memory"; files get WAL.
    assert mode in {"wal", "memory"}


def test_log_lines_carry_no_manage_token():
    import logging

    from creneau.operations.log_redaction import RedactSecrets, redact

    assert redact("GET /en/a/AbC-12_x HTTP/1.1") == "GET /en/a/[redacted] HTTP/1.1"
    assert redact("/appointments/k2/?token=s3cr3t&x=1") == "/appointments/k2/?token=[redacted]&x=1"
    record = logging.LogRecord("django.request", 30, "", 0, "Not Found: %s", ("/w/s3cr3t",), None)
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "Not Found: /w/[redacted]"
