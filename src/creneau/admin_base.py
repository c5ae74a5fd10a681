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


class StaffAdminSite(OTPAdminSite):
    """The admin for staff who signed in with both factors (CRENEAU_STAFF_OTP)."""

    login_form = StaffLoginForm
    login_template = "admin/staff_login.html"
