from django.conf import settings
from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from oauth2_provider.views import RevokeTokenView, TokenView

from creneau.admin_base import StaffAdminSite
from creneau.api import api
from creneau.booking.feeds import practitioner_feed
from creneau.operations.health import bench_baseline, healthz, readyz
from creneau.operations.metrics import metrics
from creneau.staff import sign_on
from creneau.web import embed

if settings.CRENEAU_STAFF_OTP:
    # Staff sign in with a password and a one-time code (django-otp), as agents do.
    admin.site.__class__ = StaffAdminSite
admin.site.site_header = _("Créneau — administration")
admin.site.site_title = _("Créneau")
admin.site.index_title = _("Directory, channels and perimeters")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    # OAuth2 client credentials for operators' and partners' software (no other grant).
    path("oauth/token/", TokenView.as_view(), name="oauth_token"),
    path("oauth/revoke_token/", RevokeTokenView.as_view(), name="oauth_revoke"),
    # The FHIR server: directory and slots for other platforms (SAS, SMART finders, partners).
    path("fhir/", include("creneau.fhir.urls", namespace="fhir")),
    # A practitioner's bookings as a calendar feed, at a secret address (agenda sources).
    path("agenda/<str:token>.ics", practitioner_feed, name="practitioner_feed"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    # The hospital's sign-on (OpenID Connect): out of the language prefixes, the callback's
    # address is registered at the provider.
    path("sign-on/", sign_on.sign_on_start, name="sign_on"),
    path("sign-on/callback/", sign_on.sign_on_callback, name="sign_on_callback"),
    path("embed.js", embed.embed_js, name="embed_js"),
    path("branding/<str:kind>/<str:public_id>.css", embed.branding_css, name="branding_css"),
    path("branding/<str:kind>/<str:public_id>/logo", embed.branding_logo, name="branding_logo"),
    # Patient pages: French at /, English at /en/ (the language is in the address, since a
    # widget inside another site's page cannot keep a cookie).
    *i18n_patterns(
        # The transparency ledger: public, no login (the page in both languages).
        path("ledger/", include("creneau.ledger.urls", namespace="ledger")),
        # The operator console (agents sign in with a password and a one-time code).
        path("console/", include("creneau.web.console_urls", namespace="console")),
        # The hospital's own staff (a password and a one-time code, then their scope).
        path("staff/", include("creneau.staff.urls", namespace="staff")),
        path("", include("creneau.web.urls", namespace="site")),
        path("embed/<str:channel_key>/", include("creneau.web.urls", namespace="embed")),
        # What a platform's signed booking link opens (booking.links), under its channel.
        path("p/<str:channel_key>/", include("creneau.web.platform_urls", namespace="platform")),
        prefix_default_language=False,
    ),
]

handler404 = "creneau.web.views.not_found"
handler500 = "creneau.web.views.server_error"

if settings.CRENEAU_BENCH_BASELINE:
    urlpatterns.insert(0, path("bench/baseline/<int:pk>", bench_baseline, name="bench_baseline"))
