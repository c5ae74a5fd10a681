"""The hospital staff's pages."""

from django.urls import path

from creneau.staff import views

app_name = "staff"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("patients/", views.patients, name="patients"),
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
