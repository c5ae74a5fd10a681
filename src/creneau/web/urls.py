"""The patient flow's pages, mounted twice: on the hub's site and under each widget's key."""

from django.urls import path

from creneau.web import views

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("practitioners/<str:practitioner_id>/", views.practitioner, name="practitioner"),
    path("hold/", views.hold, name="hold"),
    path("book/<str:hold_id>/", views.book, name="book"),
    path("book/<str:hold_id>/release/", views.release, name="release"),
    path("appointments/<str:appointment_id>/", views.manage, name="manage"),
    path("appointments/<str:appointment_id>/calendar.ics", views.calendar, name="calendar"),
    path("appointments/<str:appointment_id>/cancel/", views.cancel, name="cancel"),
    path("appointments/<str:appointment_id>/move/", views.move, name="move"),
    path("waiting-list/", views.waiting_join, name="waiting_join"),
    path("waiting-list/<str:entry_id>/", views.waiting_entry, name="waiting_entry"),
    # The short addresses in messages: an appointment (a) or a waiting-list offer (w).
    path("a/<str:token>", views.short_link, name="short_link"),
    path("w/<str:token>", views.short_link, name="short_offer_link"),
]
