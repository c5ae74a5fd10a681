"""The hospital's sign-on: staff sign in with the hospital's OpenID Connect provider
(mozilla-django-oidc does the code flow with PKCE, checks the ID token's signature against the
provider's keys and reads the user info). An account is matched by the provider's ``sub``; its
roles come from a claim when the provider sends one, and from the accesses set in the admin.
The provider's own second factor stands for Créneau's one-time code."""

import logging

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from creneau.directory.models import Department, Establishment, Organisation, Practitioner
from creneau.staff.models import SignOnIdentity, StaffAccess

log = logging.getLogger(__name__)

BACKEND = "creneau.staff.sign_on.HospitalSignOn"


def sign_on_configured() -> bool:
    return bool(settings.OIDC_RP_CLIENT_ID and settings.OIDC_OP_TOKEN_ENDPOINT)


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
    def verify_claims(self, claims) -> bool:
        return bool(claims.get("sub"))

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(sign_on__subject=str(claims["sub"]))

    def create_user(self, claims):
        users = get_user_model().objects
        wanted = str(claims.get("preferred_username") or claims["sub"])[:140]
        username, n = wanted, 1
        while users.filter(username=username).exists():
            n += 1
            username = f"{wanted}-{n}"
        user = users.create_user(username, email=claims.get("email", ""))  # no password here
        SignOnIdentity.objects.create(user=user, subject=str(claims["sub"]))
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        """The provider's names and e-mail, its roles when it sends them; an account with no
        access at all is refused (the login page says so)."""
        user.first_name = str(claims.get("given_name", user.first_name))[:150]
        user.last_name = str(claims.get("family_name", user.last_name))[:150]
        user.email = str(claims.get("email", user.email))[:254]
        user.save(update_fields=["first_name", "last_name", "email"])
        grants = claims.get(settings.CRENEAU_OIDC_ROLES_CLAIM)
        if isinstance(grants, str):
            grants = grants.split()
        if isinstance(grants, list):
            staff_accesses_from_claims(user, grants)
        SignOnIdentity.objects.filter(user=user).update(last_sign_on_at=timezone.now())
        if not StaffAccess.objects.filter(user=user).exists():
            raise SuspiciousOperation("signed on, but no access to the hospital's pages")
        return user


def sign_on_start(request: HttpRequest) -> HttpResponse:
    """To the provider (``next``: where to come back to in the hub)."""
    if not sign_on_configured():
        raise Http404("no hospital sign-on here")
    return OIDCAuthenticationRequestView.as_view()(request)


def sign_on_callback(request: HttpRequest) -> HttpResponse:
    """Back from the provider: the code is exchanged, the account opened or refused."""
    if not sign_on_configured():
        raise Http404("no hospital sign-on here")
    return OIDCAuthenticationCallbackView.as_view()(request)
