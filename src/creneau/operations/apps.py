from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OperationsConfig(AppConfig):
    name = "creneau.operations"
    verbose_name = _("Operations")

    def ready(self) -> None:
        from creneau.operations import checks  # noqa: F401 (registers the deploy checks)
