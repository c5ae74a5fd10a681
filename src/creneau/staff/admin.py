from django.contrib import admin

from creneau.admin_base import ReadOnlyAdmin
from creneau.staff.models import PatientDataView, StaffAccess


@admin.register(StaffAccess)
class StaffAccessAdmin(admin.ModelAdmin):
    list_display = ["user", "role", "organisation", "establishment", "department", "practitioner"]
    list_filter = ["role", "organisation"]
    search_fields = ["user__username", "user__email", "practitioner__last_name", "department__name"]
    autocomplete_fields = ["user", "practitioner"]
    raw_id_fields = ["establishment", "department"]


@admin.register(PatientDataView)
class PatientDataViewAdmin(ReadOnlyAdmin):
    """The organisation reads who saw which patients' details."""

    list_display = ["at", "user", "kind", "subject", "shown"]
    list_filter = ["kind"]
    search_fields = ["user__username", "criteria_hash", "appointments__public_id"]
    date_hierarchy = "at"
    raw_id_fields = ["appointments"]
