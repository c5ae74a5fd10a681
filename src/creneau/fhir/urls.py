from django.urls import path, re_path

from creneau.fhir import views

app_name = "fhir"

urlpatterns = [
    path("metadata", views.metadata, name="metadata"),
    # SMART Scheduling Links: the manifest, then its NDJSON files.
    path("$bulk-publish", views.bulk_publish, name="bulk_publish"),
    path("$bulk-publish/<str:name>.ndjson", views.bulk_file, name="bulk_file"),
    # IHE ITI Scheduling: $find, $hold, $book, and the caller's own appointments.
    path("Appointment/$find", views.appointment_find, name="appointment_find"),
    path("Appointment/$hold", views.appointment_hold, name="appointment_hold"),
    path("Appointment/$book", views.appointment_book, name="appointment_book"),
    path("Appointment", views.appointment_search, name="appointment_search"),
    path("Appointment/<str:appointment_id>", views.appointment_instance, name="appointment"),
    path("<str:resource_type>", views.search, name="search"),
    path("<str:resource_type>/<str:resource_id>", views.read, name="read"),
    # Anything else: a FHIR 404 (OperationOutcome), not a page.
    re_path(r"^(?P<path>.*)$", views.unknown, name="unknown"),
]
