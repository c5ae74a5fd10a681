"""The hospital staff's pages."""

from django.urls import path

from creneau.staff import blocks, desk, rules, views

app_name = "staff"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("patients/", views.patients, name="patients"),
    path("access-log/", views.access_log, name="access_log"),
    path("reports/", views.reports, name="reports"),
    path("book/", desk.book, name="book"),
    path("appointments/<str:appointment_id>/", desk.appointment, name="appointment"),
    path("appointments/<str:appointment_id>/move/", desk.move, name="move"),
    path("appointments/<str:appointment_id>/slip/", desk.slip, name="slip"),
    path("appointments/<str:appointment_id>/cancel/", desk.cancel, name="cancel"),
    path("agenda/practitioner/<str:role_id>/block/", blocks.block, name="block"),
    path("agenda/practitioner/<str:role_id>/rules/", rules.rules, name="rules"),
    path("agenda/practitioner/<str:role_id>/rules/new/", rules.rule_edit, name="rule_new"),
    path("agenda/practitioner/<str:role_id>/rules/<str:rule_id>/", rules.rule_edit, name="rule"),
    path(
        "agenda/practitioner/<str:role_id>/rules/<str:rule_id>/end/",
        rules.rule_end,
        name="rule_end",
    ),
    path("blocked/<str:block_id>/", blocks.blocked, name="blocked"),
    path("blocked/<str:block_id>/open/", blocks.unblock, name="unblock"),
    path(
        "appointments/<str:appointment_id>/status/",
        views.appointment_status,
        name="appointment_status",
    ),
    path("agenda/practitioner/<str:role_id>/", views.practitioner_agenda, name="practitioner"),
    path("agenda/department/<int:department_id>/", views.department_agenda, name="department"),
    path(
        "agenda/establishment/<str:establishment_id>/",
        views.establishment_agenda,
        name="establishment",
    ),
]
