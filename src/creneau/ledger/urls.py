from django.urls import path

from creneau.ledger import views

app_name = "ledger"

urlpatterns = [
    path("", views.transparency, name="transparency"),
    path("checkpoint", views.checkpoint, name="checkpoint"),
    path("checkpoints", views.checkpoints, name="checkpoints"),
    path("entries", views.entries, name="entries"),
    path("entry/<str:public_id>", views.entry, name="entry"),
    path("proof/inclusion", views.inclusion, name="inclusion"),
    path("proof/consistency", views.consistency, name="consistency"),
    path("perimeters", views.perimeters, name="perimeters"),
]
