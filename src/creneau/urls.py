from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from creneau.api import api
from creneau.web import views as web_views

admin.site.site_header = _("Créneau — administration")
admin.site.site_title = _("Créneau")
admin.site.index_title = _("Directory, channels and perimeters")

urlpatterns = [
    path("", web_views.home, name="home"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
]

handler404 = "creneau.web.views.not_found"
handler500 = "creneau.web.views.server_error"
