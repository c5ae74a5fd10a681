"""The operator console, for agents of call centres under contract."""

from django.urls import path

from creneau.web import console

app_name = "console"

urlpatterns = [
    path("", console.home, name="home"),
    path("login/", console.login, name="login"),
    path("logout/", console.logout, name="logout"),
    path("slots/", console.slots, name="slots"),
    path("details/", console.details, name="details"),
    path("book/", console.book, name="book"),
    path("lookup/", console.lookup, name="lookup"),
    path("appointments/", console.appointments, name="appointments"),
    path("appointments/<str:appointment_id>/cancel/", console.cancel, name="cancel"),
    path("appointments/<str:appointment_id>/move/", console.move, name="move"),
    path("statistics/", console.statistics, name="statistics"),
]
