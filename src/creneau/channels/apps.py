from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsConfig(AppConfig):
    name = "creneau.channels"
    verbose_name = _("Channels and perimeters")
