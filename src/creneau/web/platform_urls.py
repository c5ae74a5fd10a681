"""The pages a platform's signed booking link opens (booking.links), under the platform's
channel: the link's own page, then the booking form and the appointment's pages. Nothing else:
a platform's channel has no search of its own here, so its key alone opens nothing."""

from django.urls import path

from creneau.web import views

app_name = "platform"

urlpatterns = [
    path("link/<str:token>/", views.platform_link, name="platform_link"),
    path("book/<str:hold_id>/", views.book, name="book"),
    path("book/<str:hold_id>/release/", views.release, name="release"),
    path("appointments/<str:appointment_id>/", views.manage, name="manage"),
    path("appointments/<str:appointment_id>/calendar.ics", views.calendar, name="calendar"),
    path("appointments/<str:appointment_id>/cancel/", views.cancel, name="cancel"),
]
