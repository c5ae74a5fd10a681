"""Créneau's own checks for ``creneau check --deploy``: what would make a production hub's
promises weaker than they read."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def limits_shared(app_configs, **kwargs):
    warnings = []
    if settings.CRENEAU_COUNTERS == "cache" and settings.CACHES["default"]["BACKEND"].endswith(
        "LocMemCache"
    ):
        warnings.append(
            Warning(
                "The per-client limits and operators' quotas are counted per process "
                "(CRENEAU_CACHE_URL=locmem://): each is multiplied by the number of workers "
                "and servers.",
                hint="Leave CRENEAU_CACHE_URL unset (the database counts) or point it at Redis.",
                id="creneau.W001",
            )
        )
    if not settings.CRENEAU_TRUSTED_PROXIES:
        warnings.append(
            Warning(
                "No trusted proxy: X-Forwarded-For and X-Forwarded-Proto are ignored, so behind "
                "a proxy every patient is counted under the proxy's address and https is not "
                "recognised.",
                hint="Set CRENEAU_TRUSTED_PROXIES to the addresses or networks of the TLS proxy.",
                id="creneau.W002",
            )
        )
    return warnings
