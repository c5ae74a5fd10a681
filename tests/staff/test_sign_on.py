"""The hospital's sign-on, against a real OpenID Connect provider: django-oauth-toolkit's own,
served by a second process on loopback with its users, login page and RSA key. The hub sends
the browser there, the person signs in at the provider, and the hub exchanges the code, checks
the ID token's signature and reads the roles from the claims."""

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model

from creneau.staff.models import SignOnIdentity, StaffAccess
from tests.cli import free_port

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).parents[2]
CLIENT_ID, CLIENT_SECRET = "creneau-hub", "a-secret-of-the-hospital-it"
PASSWORD = "mot de passe de l'hôpital"


@pytest.fixture
def provider(tmp_path, places):
    """The provider, and the hub set to use it: m.dupont is a secretary of the Pitié's
    neurosurgery by the claim, j.sansrole has no role, r.audit is an auditor."""
    department = places["department"]
    claims = {
        "m.dupont": {
            "creneau_roles": [f"secretary:{department.establishment.finess}/{department.code}"],
            "given_name": "Marie",
            "family_name": "Dupont",
        },
        "j.sansrole": {},
        "r.audit": {"creneau_roles": ["auditor", "unknown:role"]},
    }
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.oidc_provider",
            str(port),
            "http://testserver/sign-on/callback/",
            CLIENT_ID,
            CLIENT_SECRET,
            json.dumps({name: PASSWORD for name in claims}),
        ],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "OIDC_PROVIDER_DB": str(tmp_path / "provider.sqlite3"),
            "OIDC_PROVIDER_KEY": pem,
            "OIDC_PROVIDER_CLAIMS": json.dumps(claims),
            "PYTHONPATH": str(ROOT),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout.readline().strip() == "ready"
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def hub_signs_on(settings, provider):
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = provider + "/o/authorize/"
    settings.OIDC_OP_TOKEN_ENDPOINT = provider + "/o/token/"
    settings.OIDC_OP_USER_ENDPOINT = provider + "/o/userinfo/"
    settings.OIDC_OP_JWKS_ENDPOINT = provider + "/o/.well-known/jwks.json"
    settings.CRENEAU_OIDC_NAME = "AP-HP"
    settings.AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.ModelBackend",
        "creneau.staff.sign_on.HospitalSignOn",
    ]
    return provider


def sign_on(client, username: str, password: str = PASSWORD):
    """What a browser does: the hub sends it to the provider, the person signs in there, the
    provider sends it back to the hub with a code. Returns the hub's last answer."""
    start = client.get("/sign-on/", {"next": "/staff/"})
    assert start.status_code == 302
    browser = requests.Session()
    authorize = start["Location"]
    to_login = browser.get(authorize, allow_redirects=False)
    login = urljoin(authorize, to_login.headers["Location"])
    page = browser.get(login)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    signed = browser.post(
        login,
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": token,
            "next": re.search(r'name="next" value="([^"]*)"', page.text).group(1),
        },
        allow_redirects=False,
    )
    assert signed.status_code == 302, "the provider refused the password"
    back = browser.get(
        urljoin(login, signed.headers["Location"]).replace("&amp;", "&"), allow_redirects=False
    )
    callback = urlsplit(back.headers["Location"])
    assert callback.netloc == "testserver" and callback.path == "/sign-on/callback/"
    return client.get(f"{callback.path}?{callback.query}")


def test_a_secretary_signs_on_with_the_hospitals_account_and_gets_the_claims_roles(
    client, places, hub_signs_on
):
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
    client, aphp, places, hub_signs_on
):
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


def test_an_account_without_any_role_is_refused_and_says_why(client, hub_signs_on):
    answer = sign_on(client, "j.sansrole")

    assert answer["Location"] == "/staff/login/?sign_on=refused"
    assert client.get("/staff/").status_code == 302  # not signed in
    page = client.get(answer["Location"]).content.decode()
    assert "n’a pas encore accès à ces pages" in page  # noqa: RUF001


def test_a_forged_callback_opens_nothing(client, hub_signs_on):
    client.get("/sign-on/", {"next": "/staff/"})
    answer = client.get("/sign-on/callback/", {"code": "forged", "state": "forged"})
    assert answer.status_code in {302, 400}
    assert client.get("/staff/").status_code == 302


def test_without_a_provider_there_is_no_sign_on(client):
    assert client.get("/sign-on/").status_code == 404
    assert "compte de l’hôpital" not in client.get("/staff/login/").content.decode()  # noqa: RUF001
