from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FhirConfig(AppConfig):
    name = "creneau.fhir"
    verbose_name = _("Publishing (FHIR, SAS, SMART, IHE)")
