from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from creneau.directory.models import (
    Department,
    Establishment,
    Organisation,
    Practitioner,
    PractitionerRole,
    Specialty,
    VisitType,
)


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "short_name", "finess_ej", "is_public", "runs_hub"]
    list_filter = ["is_public", "runs_hub"]
    search_fields = ["name", "short_name", "finess_ej"]
    readonly_fields = ["public_id"]


@admin.register(Establishment)
class EstablishmentAdmin(admin.ModelAdmin):
    list_display = ["name", "finess", "organisation", "city", "postcode", "is_active"]
    list_filter = ["organisation", "is_active", "time_zone"]
    search_fields = ["name", "finess", "city", "postcode"]
    list_select_related = ["organisation"]
    readonly_fields = ["public_id"]


@admin.register(Specialty)
class SpecialtyAdmin(admin.ModelAdmin):
    list_display = ["label_fr", "label_en", "code"]
    search_fields = ["code", "label_fr", "label_en"]


@admin.register(Department)
class DepartmentAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "establishment"]
    list_filter = ["establishment__organisation"]
    search_fields = ["name", "code", "establishment__name", "establishment__finess"]
    list_select_related = ["establishment"]
    autocomplete_fields = ["establishment"]
    readonly_fields = ["public_id"]


class PractitionerRoleInline(admin.TabularInline):
    model = PractitionerRole
    extra = 0
    autocomplete_fields = ["establishment", "department"]
    filter_horizontal = ["specialties"]
    readonly_fields = ["public_id"]


@admin.register(Practitioner)
class PractitionerAdmin(admin.ModelAdmin):
    list_display = ["last_name", "first_name", "title", "rpps"]
    list_filter = ["title", "roles__specialties", "roles__establishment__organisation"]
    search_fields = ["last_name", "first_name", "search_name", "rpps"]
    readonly_fields = ["public_id"]
    inlines = [PractitionerRoleInline]

    def save_model(self, request, obj, form, change):
        # The folded name is what the practitioner search matches; keep it in step with edits.
        obj.refresh_search_name()
        super().save_model(request, obj, form, change)


@admin.register(PractitionerRole)
class PractitionerRoleAdmin(admin.ModelAdmin):
    list_display = ["practitioner", "establishment", "department", "is_active"]
    list_filter = ["is_active", "specialties", "establishment__organisation"]
    search_fields = [
        "practitioner__last_name",
        "practitioner__rpps",
        "establishment__name",
        "establishment__finess",
        "department__name",
    ]
    list_select_related = ["practitioner", "establishment", "department"]
    autocomplete_fields = ["practitioner", "establishment", "department"]
    ordering = ["practitioner__last_name", "practitioner__first_name", "establishment__name", "pk"]

    def get_queryset(self, request):
        # What each role is called by (its specialties too), for lists and pickers alike.
        return (
            super()
            .get_queryset(request)
            .select_related("practitioner", "establishment", "department")
            .prefetch_related("specialties")
        )

    filter_horizontal = ["specialties"]
    readonly_fields = ["public_id"]


@admin.register(VisitType)
class VisitTypeAdmin(admin.ModelAdmin):
    list_display = [
        "label_fr",
        "specialty",
        "organisation",
        "duration_minutes",
        "new_patients_allowed",
        "is_active",
    ]
    list_filter = ["organisation", "specialty", "new_patients_allowed", "is_active"]
    search_fields = ["label_fr", "label_en", "code"]
    list_select_related = ["specialty", "organisation"]
    readonly_fields = ["public_id"]
    fieldsets = [
        (None, {"fields": ["public_id", "organisation", "code", "specialty", "is_active"]}),
        (_("Labels"), {"fields": ["label_fr", "label_en"]}),
        (_("Booking"), {"fields": ["duration_minutes", "new_patients_allowed"]}),
        (_("Preparation"), {"fields": ["preparation_fr", "preparation_en"]}),
    ]
