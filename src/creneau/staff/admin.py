from django.contrib import admin

from creneau.staff.models import StaffAccess


@admin.register(StaffAccess)
class StaffAccessAdmin(admin.ModelAdmin):
    list_display = ["user", "role", "organisation", "establishment", "department", "practitioner"]
    list_filter = ["role", "organisation"]
    search_fields = ["user__username", "user__email", "practitioner__last_name", "department__name"]
    autocomplete_fields = ["user", "practitioner"]
    raw_id_fields = ["establishment", "department"]
