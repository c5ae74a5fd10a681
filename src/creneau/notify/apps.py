from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotifyConfig(AppConfig):
    name = "creneau.notify"
    verbose_name = _("Messages to patients")
