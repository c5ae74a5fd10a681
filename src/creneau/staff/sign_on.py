"""The hospital's sign-on: staff sign in with the hospital's OpenID Connect provider
(mozilla-django-oidc does the code flow with PKCE and reads the user info). The ID token is
validated here as OpenID Connect Core §3.1.3.7 requires: its signature against the provider's
keys, ``iss`` equal to the configured issuer, ``aud`` containing this hub's client id (and
``azp`` naming it when present or when there are several audiences), ``exp``, ``iat`` and
``nbf`` within a small leeway for clocks. The account is the verified ID token's ``sub``; a
userinfo answer about another subject is refused (Core §5.3.2). Roles come from a claim when
the provider sends one, and from the accesses set in the admin. The provider's own second
factor stands for Créneau's one-time code. Every refusal ends on the sign-in page with a
message, never an error page."""

import json
import logging
from urllib.parse import urlencode

import jwt
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from creneau import outgoing
from creneau.directory.models import Department, Establishment, Organisation, Practitioner
from creneau.spreadsheets import FORMULA_START
from creneau.staff.models import SignOnIdentity, StaffAccess

log = logging.getLogger(__name__)

BACKEND = "creneau.staff.sign_on.HospitalSignOn"
# What the sign-in page says after a sign-on that did not open a session (?sign_on=…).
NO_ACCESS, FAILED = "refused", "failed"


def sign_on_configured() -> bool:
    return bool(
        settings.OIDC_RP_CLIENT_ID
        and settings.OIDC_OP_TOKEN_ENDPOINT
        and settings.CRENEAU_OIDC_ISSUER
    )


def signed_on(request: HttpRequest) -> bool:
    """This session was opened by the hospital's sign-on (its provider checked both factors)."""
    return request.session.get(BACKEND_SESSION_KEY) == BACKEND


def _access(grant: str, organisation: Organisation) -> dict | None:
    """One role of the claim, as a staff access's fields; None for one this hub does not know
    (logged, without the person)."""
    role, _colon, ident = grant.strip().partition(":")
    if role in {StaffAccess.Role.ORGANISATION_ADMIN, StaffAccess.Role.AUDITOR} and not ident:
        return {"role": role}
    if role == StaffAccess.Role.ESTABLISHMENT_ADMIN:
        found = Establishment.objects.filter(organisation=organisation, finess=ident).first()
        return {"role": role, "establishment": found} if found else None
    if role == StaffAccess.Role.SECRETARY:
        finess, _slash, code = ident.partition("/")
        found = Department.objects.filter(
            establishment__organisation=organisation, establishment__finess=finess, code=code
        ).first()
        return {"role": role, "department": found} if found else None
    if role == StaffAccess.Role.PRACTITIONER:
        found = Practitioner.objects.filter(rpps=ident).first()
        return {"role": role, "practitioner": found} if found else None
    return None


@transaction.atomic
def staff_accesses_from_claims(user, grants: list[str]) -> int:
    """Replace the accesses the sign-on gave ``user`` by the claim's; those set in the admin
    stay. Returns how many the claim gives."""
    organisation = Organisation.objects.filter(runs_hub=True).first()
    StaffAccess.objects.filter(user=user, from_sign_on=True).delete()
    given = 0
    for grant in grants:
        fields = _access(str(grant), organisation) if organisation else None
        if fields is None:
            log.warning("sign-on: a role of the claim is unknown here: %s", str(grant)[:80])
            continue
        access = StaffAccess(user=user, organisation=organisation, from_sign_on=True, **fields)
        try:
            access.full_clean(validate_unique=False, validate_constraints=False)
        except ValidationError:
            log.warning("sign-on: a role of the claim does not fit: %s", str(grant)[:80])
            continue
        if not StaffAccess.objects.filter(user=user, organisation=organisation, **fields).exists():
            access.save()
        given += 1
    return given


class HospitalSignOn(OIDCAuthenticationBackend):
    def _refuse(self, reason: str, why: str):
        """Log why (never the person), and tell the sign-in page what to say."""
        log.warning("sign-on refused: %s", why)
        if self.request is not None:
            self.request.sign_on_refusal = reason
        return SuspiciousOperation(why)

    def authenticate(self, request, **kwargs):
        try:
            return super().authenticate(request, **kwargs)
        except SuspiciousOperation as error:
            if not getattr(request, "sign_on_refusal", None):
                self._refuse(FAILED, str(error))
        except (outgoing.OutgoingError, jwt.PyJWTError, ValueError, KeyError) as error:
            # The provider unreachable, or an answer that is not what the protocol says.
            self._refuse(
                FAILED, f"the provider's answer could not be used ({type(error).__name__})"
            )
        return None

    def _ask(self, url: str, what: str, **options) -> outgoing.Answer:
        """The provider's endpoints through the hub's guarded client, as any outgoing call."""
        answer = outgoing.request(
            url, timeout=settings.OIDC_TIMEOUT, max_bytes=1_000_000, **options
        )
        if answer.status != 200:
            raise self._refuse(FAILED, f"the provider's {what} answered {answer.status}")
        return answer

    def get_token(self, payload):
        answer = self._ask(
            self.OIDC_OP_TOKEN_ENDPOINT,
            "token endpoint",
            method="POST",
            body=urlencode(payload).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        return json.loads(answer.body)

    def retrieve_matching_jwk(self, token):
        """The provider's key that signed ``token``: the same kid and, when the key says, the
        same algorithm."""
        keys = json.loads(self._ask(self.OIDC_OP_JWKS_ENDPOINT, "key set").body)["keys"]
        header = jwt.get_unverified_header(token)
        for key in keys:
            if (
                key.get("kid") == header.get("kid")
                and key.get("alg", header["alg"]) == header["alg"]
            ):
                return jwt.PyJWK(key)
        raise self._refuse(FAILED, "no key of the provider matches the token's")

    def _verify_jws(self, payload, key):
        """The ID token (or a signed userinfo answer): signature, issuer, audience and times."""
        client_id = settings.OIDC_RP_CLIENT_ID
        try:
            alg = jwt.get_unverified_header(payload).get("alg")
            if alg != self.OIDC_RP_SIGN_ALGO:
                raise self._refuse(FAILED, f"the token is signed with {alg!r}")
            claims = jwt.decode(
                payload,
                key,
                algorithms=[alg],
                audience=client_id,
                issuer=settings.CRENEAU_OIDC_ISSUER,
                leeway=settings.CRENEAU_OIDC_LEEWAY,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.InvalidTokenError as error:
            raise self._refuse(
                FAILED, f"the ID token is not valid ({type(error).__name__})"
            ) from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if ("azp" in claims or len(audiences) > 1) and claims.get("azp") != client_id:
            raise self._refuse(FAILED, "the ID token was issued to another party (azp)")
        return claims

    def get_userinfo(self, access_token, id_token, payload):
        answer = self._ask(
            self.OIDC_OP_USER_ENDPOINT,
            "userinfo endpoint",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )
        if answer.headers.get("content-type", "").lower().startswith("application/jwt"):
            info = self.verify_token(answer.body.decode())  # a signed answer
        else:
            info = json.loads(answer.body)
        if not isinstance(info, dict) or str(info.get("sub")) != str(payload.get("sub")):
            raise self._refuse(FAILED, "the userinfo answer is about another subject")
        return info

    def verify_claims(self, claims) -> bool:
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(sign_on__subject=str(claims["sub"]))

    def create_user(self, claims):
        users = get_user_model().objects
        wanted = str(claims.get("preferred_username") or claims["sub"])[:140]
        # A name a spreadsheet would run as a formula; the hub's CSV files neutralise it too.
        if wanted.startswith(FORMULA_START):
            raise self._refuse(FAILED, "the provider's user name starts like a formula")
        username, n = wanted, 1
        while users.filter(username=username).exists():
            n += 1
            username = f"{wanted}-{n}"
        user = users.create_user(username, email=claims.get("email", ""))  # no password here
        SignOnIdentity.objects.create(user=user, subject=str(claims["sub"]))
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        """The provider's names and e-mail, and its roles: a sign-on without the roles claim
        leaves only the accesses set in the admin (many providers omit a claim that became
        empty). An account with no access at all is refused (the login page says so)."""
        user.first_name = str(claims.get("given_name", user.first_name))[:150]
        user.last_name = str(claims.get("family_name", user.last_name))[:150]
        user.email = str(claims.get("email", user.email))[:254]
        user.save(update_fields=["first_name", "last_name", "email"])
        grants = claims.get(settings.CRENEAU_OIDC_ROLES_CLAIM)
        if isinstance(grants, str):
            grants = grants.split()
        staff_accesses_from_claims(user, grants if isinstance(grants, list) else [])
        SignOnIdentity.objects.filter(user=user).update(last_sign_on_at=timezone.now())
        if not StaffAccess.objects.filter(user=user).exists():
            raise self._refuse(NO_ACCESS, "signed on, but no access to the hospital's pages")
        return user


class SignOnCallback(OIDCAuthenticationCallbackView):
    """The library's callback, ending every refusal on the sign-in page with its reason (a
    state this browser did not start is one too, not a bare 400)."""

    @property
    def failure_url(self) -> str:
        reason = getattr(self.request, "sign_on_refusal", None) or FAILED
        return f"{settings.LOGIN_REDIRECT_URL_FAILURE}?sign_on={reason}"

    def get(self, request):
        try:
            return super().get(request)
        except SuspiciousOperation as error:
            log.warning("sign-on refused: %s", error)
            return self.login_failure()


def sign_on_start(request: HttpRequest) -> HttpResponse:
    """To the provider (``next``: where to come back to in the hub)."""
    if not sign_on_configured():
        raise Http404("no hospital sign-on here")
    return OIDCAuthenticationRequestView.as_view()(request)


def sign_on_callback(request: HttpRequest) -> HttpResponse:
    """Back from the provider: the code is exchanged, the account opened or refused."""
    if not sign_on_configured():
        raise Http404("no hospital sign-on here")
    return SignOnCallback.as_view()(request)
