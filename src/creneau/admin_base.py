"""What several apps' admin pages share."""

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminSite

from creneau.second_factor import second_factor_verify


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record staff read but never write by hand (slots, the access log): the services
    that make them are the only writers."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StaffLoginForm(AdminAuthenticationForm):
    """The admin's sign-in: password, then the one-time code of the authenticator app or a
    backup code. django-otp records the device on the session at login."""

    otp_token = forms.CharField(
        label=_("One-time code"),
        max_length=16,
        help_text=_("The 6 digits of your authenticator app, or a backup code."),
        widget=forms.TextInput({"autocomplete": "one-time-code"}),
    )

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        if user is not None:
            device = second_factor_verify(user=user, code=self.cleaned_data.get("otp_token", ""))
            if device is None:
                raise forms.ValidationError(_("The one-time code is not valid."))
            user.otp_device = device  # django-otp's login signal keeps it on the session
        return cleaned


class StaffAdminSite(OTPAdminSite):
    """The admin for staff who signed in with both factors (CRENEAU_STAFF_OTP)."""

    login_form = StaffLoginForm
    login_template = "admin/staff_login.html"
