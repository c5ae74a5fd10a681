"""What several apps' admin pages share."""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django_otp.admin import OTPAdminSite

from creneau.second_factor import OneTimeCodeMixin


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record staff read but never write by hand (slots, the access log): the services
    that make them are the only writers."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StaffLoginForm(OneTimeCodeMixin, AdminAuthenticationForm):
    """The admin's sign-in: password, then the one-time code of the authenticator app or a
    backup code."""


# The developers' sections (OAuth2 tokens, one-time-code devices, task results): for
# superusers only, whatever permissions a staff account was given.
DEVELOPER_APPS = frozenset({"oauth2_provider", "otp_static", "otp_totp", "django_tasks_database"})


def _superusers_only(request, obj=None) -> bool:
    return request.user.is_active and request.user.is_superuser


class StaffAdminSite(OTPAdminSite):
    """The admin for staff who signed in with both factors (CRENEAU_STAFF_OTP)."""

    login_form = StaffLoginForm
    login_template = "admin/staff_login.html"

    def get_urls(self):
        for model, model_admin in self._registry.items():
            if model._meta.app_label in DEVELOPER_APPS:
                for name in (
                    "has_module_permission",
                    "has_view_permission",
                    "has_add_permission",
                    "has_change_permission",
                    "has_delete_permission",
                ):
                    setattr(model_admin, name, _superusers_only)
        return super().get_urls()
