"""Créneau's settings: one module, driven by ``CRENEAU_*`` environment variables.

Every value a deployment may change is read here through the small typed helpers below; a secret
may also come from a file named by ``<NAME>_FILE`` (Docker and systemd credentials). Production
(``CRENEAU_PRODUCTION=1``, which ``creneau serve`` sets) refuses a missing or default secret and
refuses debug mode, so that ``check --deploy`` is clean.
"""

import ipaddress
import os
import secrets
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str | None = None) -> str | None:
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        return Path(file_path).read_text(encoding="utf-8").strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


PACKAGE_DIR = Path(__file__).resolve().parent
PRODUCTION = env_bool("CRENEAU_PRODUCTION", False)
DEBUG = env_bool("CRENEAU_DEBUG", False)
DATA_DIR = Path(env_str("CRENEAU_DATA_DIR") or Path.cwd() / "creneau-data").resolve()

# Outside production a missing key is generated once per data directory, so a demo or a
# developer's hub keeps its sessions across restarts without anybody choosing a secret.
_DEFAULT_SECRET_PREFIX = "django-insecure"  # noqa: S105 (a prefix refused, not a secret)
SECRET_KEY = env_str("CRENEAU_SECRET_KEY") or ""
if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("CRENEAU_DEBUG must be off when CRENEAU_PRODUCTION is set.")
    if len(SECRET_KEY) < 50 or SECRET_KEY.startswith(_DEFAULT_SECRET_PREFIX):
        raise ImproperlyConfigured(
            "CRENEAU_SECRET_KEY (or CRENEAU_SECRET_KEY_FILE) must hold a random secret of at "
            "least 50 characters in production."
        )
elif not SECRET_KEY:
    _key_file = DATA_DIR / "secret-key"
    if _key_file.exists():
        SECRET_KEY = _key_file.read_text(encoding="utf-8").strip()
    else:
        SECRET_KEY = secrets.token_urlsafe(64)
        try:
            DATA_DIR.mkdir(parents=True, exist_ok=True)
            _key_file.write_text(SECRET_KEY, encoding="utf-8")
            _key_file.chmod(0o600)
        except OSError:
            pass  # a read-only data directory still runs, with sessions lost at restart

ALLOWED_HOSTS = env_list(
    "CRENEAU_ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("CRENEAU_ALLOWED_HOSTS must name the hub's host names.")
CSRF_TRUSTED_ORIGINS = env_list("CRENEAU_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "ninja",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "oauth2_provider",
    "django_tasks",
    "django_tasks_db",
    "creneau.directory",
    "creneau.channels",
    "creneau.agenda",
    "creneau.booking",
    "creneau.notify",
    "creneau.ledger",
    "creneau.web",
    "creneau.fhir",
    "creneau.staff",
    "creneau.operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "creneau.operations.metrics.MetricsMiddleware",
    "creneau.request_guard.RefuseNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "creneau.replicas.ReplicaMiddleware",
    "creneau.booking.waiting_room.WaitingRoomMiddleware",
    "creneau.web.middleware.CreneauLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "creneau.cross_origin.ApiBrowserPolicyMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "creneau.urls"
WSGI_APPLICATION = "creneau.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database(url: str) -> dict:
    config = dj_database_url.parse(url, conn_max_age=env_int("CRENEAU_DB_CONN_MAX_AGE", 60))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets readers go on while one writer commits; IMMEDIATE takes the write lock when
        # a transaction starts, so two bookings never both read a free slot and then both write
        # (the SQLite half of invariant 1). busy_timeout waits for the lock instead of failing.
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            # secure_delete: a patient's erased identity is overwritten with zeros in the file,
            # not left in a free page (staff.privacy checkpoints the log after an erasure).
            "init_command": (
                "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA foreign_keys=ON;"
                "PRAGMA secure_delete=ON;"
            ),
        }
        test_name = os.environ.get("CRENEAU_TEST_SQLITE_NAME")
        if test_name:
            config["TEST"] = {"NAME": test_name}
    else:
        config.setdefault("OPTIONS", {})
        config["CONN_HEALTH_CHECKS"] = True
        # Behind PgBouncer in transaction mode, a server connection serves another client
        # between two transactions: nothing may outlive one (named prepared statements, cursors
        # WITH HOLD). Advisory locks and SET LOCAL are transaction-scoped already.
        behind_pooler = env_bool("CRENEAU_DB_TRANSACTION_POOLER", False)
        if behind_pooler:
            config["DISABLE_SERVER_SIDE_CURSORS"] = True
        if env_bool("CRENEAU_DB_PREPARED_STATEMENTS", not behind_pooler):
            # Parameters bound by the server, and the queries a request repeats (channel,
            # search, booking) prepared after five uses: planning the search's joins costs
            # more than running them.
            config["OPTIONS"].update({"server_side_binding": True, "prepare_threshold": 5})
        pool = env_str("CRENEAU_DB_POOL", "") or ""
        if pool:
            # psycopg's pool in each process (min,max connections): Django then closes no
            # connection, it gives it back to the pool at the end of the request.
            low, _, high = pool.partition(",")
            if not (low.strip().isdigit() and (high or low).strip().isdigit()):
                raise ImproperlyConfigured(
                    f"CRENEAU_DB_POOL must be 'min,max' connections (4,16), not {pool!r}"
                )
            config["CONN_MAX_AGE"] = 0
            config["OPTIONS"]["pool"] = {
                "min_size": int(low),
                "max_size": int(high or low),
                "timeout": env_int("CRENEAU_DB_POOL_TIMEOUT", 10),
            }
    return config


DATABASE_URL = env_str("CRENEAU_DATABASE_URL") or f"sqlite:///{DATA_DIR / 'creneau.sqlite3'}"
DATABASES = {"default": _database(DATABASE_URL)}
# Streaming replicas of PostgreSQL (creneau.replicas): searches and the public read-only answers
# are read there; writes, and a client's reads right after its own write, on the primary.
for _number, _url in enumerate(env_list("CRENEAU_DATABASE_REPLICA_URLS", []), start=1):
    if not _url.startswith(("postgres://", "postgresql://")):
        raise ImproperlyConfigured("CRENEAU_DATABASE_REPLICA_URLS are PostgreSQL replicas")
    _replica = {**_database(_url), "TEST": {"MIRROR": "default"}, "CONN_HEALTH_CHECKS": False}
    if "pool" in _replica["OPTIONS"]:
        # A replica that went away must not hold a request for the primary's pool timeout.
        _replica["OPTIONS"]["pool"] = {**_replica["OPTIONS"]["pool"], "timeout": 2}
    DATABASES[f"replica{_number}"] = _replica
DATABASE_ROUTERS = ["creneau.replicas.ReplicaRouter"] if len(DATABASES) > 1 else []
# A client that wrote reads from a replica only once the replica has replayed its write: its
# position in the primary's log is kept in a cookie this long (seconds).
CRENEAU_REPLICA_READ_YOUR_WRITES = env_int("CRENEAU_REPLICA_READ_YOUR_WRITES", 300)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = env_str("CRENEAU_TIME_ZONE", "Europe/Paris") or "Europe/Paris"

STATIC_URL = "/static/"
# Uploaded branding (logos), served by the hub's own view with a restrictive policy.
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"
# Only for deployments that put a web server in front and run collectstatic.
STATIC_ROOT = env_str("CRENEAU_STATIC_ROOT") or None
# Static files are served by WhiteNoise straight from the installed packages: neither the demo
# nor a production install needs a collectstatic step or a separate web server to look right.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"


def _networks(name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for item in env_list(name, []):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not an address or a network (10.0.0.0/8, ::1)"
            ) from None
    return tuple(networks)


# The proxies (addresses or networks) whose X-Forwarded-For and X-Forwarded-Proto are believed;
# by default nobody's, so a client cannot choose the address its limits count against.
CRENEAU_TRUSTED_PROXIES = _networks("CRENEAU_TRUSTED_PROXIES")
# The hub's health-sector certificate and key (one PEM file) for the mutual TLS the SAS
# platform asks of the appointment feedback it receives (INT_R03); empty: no client certificate.
CRENEAU_SAS_CLIENT_CERT = env_str("CRENEAU_SAS_CLIENT_CERT", "") or ""
# Every request the hub makes to another server (creneau.outgoing): the networks it may reach
# besides the public internet (a hospital's internal CalDAV server or identity provider;
# loopback for the demo and the tests). CRENEAU_AGENDA_ALLOWED_NETWORKS, its former name, is
# still read. Then how much and how long an agenda source's answer is read.
CRENEAU_OUTGOING_ALLOWED_NETWORKS = _networks("CRENEAU_OUTGOING_ALLOWED_NETWORKS") or _networks(
    "CRENEAU_AGENDA_ALLOWED_NETWORKS"
)
CRENEAU_AGENDA_MAX_BYTES = env_int("CRENEAU_AGENDA_MAX_BYTES", 5_000_000)
CRENEAU_AGENDA_TIMEOUT_SECONDS = env_int("CRENEAU_AGENDA_TIMEOUT_SECONDS", 20)
# How long reading one calendar's events may take (agenda.sources.calendar bounds the work
# before it starts; this catches what the bounds let through).
CRENEAU_AGENDA_TIME_BUDGET_SECONDS = env_int("CRENEAU_AGENDA_TIME_BUDGET_SECONDS", 15)
# The hospital information system (HL7 v2 SIU over MLLP, STANDARDS.md §5): where
# `creneau mllp` listens for the HIS's SIU (its desk's appointments), which addresses may send
# them (loopback unless widened), and where the worker sends the hub's own SIU (host:port;
# empty: none are sent).
CRENEAU_MLLP_BIND = env_str("CRENEAU_MLLP_BIND", "127.0.0.1:2575") or ""
# The listener's bounds: connections at once, seconds with no message begun, seconds for one
# message to arrive whole.
CRENEAU_MLLP_MAX_CONNECTIONS = env_int("CRENEAU_MLLP_MAX_CONNECTIONS", 20)
CRENEAU_MLLP_IDLE_SECONDS = env_int("CRENEAU_MLLP_IDLE_SECONDS", 300)
CRENEAU_MLLP_MESSAGE_SECONDS = env_int("CRENEAU_MLLP_MESSAGE_SECONDS", 30)
# Who may read /metrics (Prometheus): loopback unless said otherwise.
CRENEAU_METRICS_ALLOWED_NETWORKS = _networks("CRENEAU_METRICS_ALLOWED_NETWORKS") or (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
CRENEAU_MLLP_ALLOWED_NETWORKS = _networks("CRENEAU_MLLP_ALLOWED_NETWORKS") or (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
CRENEAU_HIS_ADDRESS = env_str("CRENEAU_HIS_ADDRESS", "") or ""
CRENEAU_HIS_TIMEOUT_SECONDS = env_int("CRENEAU_HIS_TIMEOUT_SECONDS", 10)
# How many weeks of free slots the SMART Scheduling Links files publish (one file a week).
CRENEAU_SMART_WEEKS = env_int("CRENEAU_SMART_WEEKS", 8)
# The header in which the TLS proxy passes the subject of the client certificate a platform
# presented (the SAS authenticates with a certificate, not OAuth2). Believed only from
# CRENEAU_TRUSTED_PROXIES.
CRENEAU_CLIENT_CERT_HEADER = env_str("CRENEAU_CLIENT_CERT_HEADER", "X-SSL-Client-S-DN") or ""
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("CRENEAU_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("CRENEAU_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("CRENEAU_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("CRENEAU_HSTS_PRELOAD", True)
    # Which scheme the client used is gunicorn's to say (wsgi.url_scheme): it believes the
    # X-Forwarded-Proto of CRENEAU_TRUSTED_PROXIES only (operations.server).

# Pages load nothing from elsewhere: no CDN, no inline script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Operators' and partners' software: OAuth2 client credentials (django-oauth-toolkit). Secrets
# are stored hashed; tokens live an hour; each scope is also bounded by the client's contract.
OAUTH2_PROVIDER = {
    "SCOPES": {
        "slots:read": "Search the directory and free slots",
        "appointments:read": "Read the operator's appointments and find a caller's",
        "appointments:write": "Book, move and cancel appointments",
        "statistics:read": "Read the operator's own statistics",
    },
    "DEFAULT_SCOPES": ["slots:read", "appointments:read", "appointments:write", "statistics:read"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": env_int("CRENEAU_TOKEN_SECONDS", 3600),
    "OAUTH2_VALIDATOR_CLASS": "creneau.channels.oauth.ContractValidator",
    # Only client credentials are used (no refresh tokens, no redirects); the rest is locked.
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
    # The OAuth 2.0 Security BCP (RFC 9700) throughout: tokens only in the Authorization
    # header, stored as their hashes, no implicit or password grant.
    **{
        f"COMPLIANT_BCP_RFC9700_{name}": True
        for name in (
            "ACCESS_TOKEN_TRANSPORT",
            "AUTHZ_RESPONSE_ISS",
            "IMPLICIT_GRANT",
            "PASSWORD_GRANT",
            "PKCE_METHOD",
            "REDIRECT_URI_SCHEME",
            "REFRESH_TOKEN",
            "TOKEN_STORAGE",
        )
    },
}
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
# The hospital's own sign-on (OpenID Connect, mozilla-django-oidc): staff sign in with the
# hospital's account when these are set; the password and one-time code stay for the others.
# Roles come from the claim CRENEAU_OIDC_ROLES_CLAIM when the provider sends it ("secretary:
# FINESS/DEPARTMENT", "est_admin:FINESS", "practitioner:RPPS", "org_admin", "auditor"), and
# from the staff accesses set in the admin.
OIDC_RP_CLIENT_ID = env_str("CRENEAU_OIDC_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = env_str("CRENEAU_OIDC_CLIENT_SECRET", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("CRENEAU_OIDC_AUTHORIZATION_URL", "")
OIDC_OP_TOKEN_ENDPOINT = env_str("CRENEAU_OIDC_TOKEN_URL", "")
OIDC_OP_USER_ENDPOINT = env_str("CRENEAU_OIDC_USERINFO_URL", "")
OIDC_OP_JWKS_ENDPOINT = env_str("CRENEAU_OIDC_JWKS_URL", "")
OIDC_RP_SIGN_ALGO = env_str("CRENEAU_OIDC_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("CRENEAU_OIDC_SCOPES", "openid email profile")
OIDC_USE_PKCE = True
OIDC_TIMEOUT = 10
OIDC_AUTHENTICATION_CALLBACK_URL = "sign_on_callback"
CRENEAU_OIDC_ROLES_CLAIM = env_str("CRENEAU_OIDC_ROLES_CLAIM", "creneau_roles")
CRENEAU_OIDC_NAME = env_str("CRENEAU_OIDC_NAME", "") or "OpenID Connect"
# The provider's issuer identifier, exactly as its discovery document's "issuer": every ID
# token's "iss" must equal it (OpenID Connect Core §3.1.3.7). Sign-on stays off without it.
CRENEAU_OIDC_ISSUER = env_str("CRENEAU_OIDC_ISSUER", "")
# Seconds of clock difference allowed with the provider on "exp", "iat" and "nbf".
CRENEAU_OIDC_LEEWAY = env_int("CRENEAU_OIDC_LEEWAY", 60)
LOGIN_REDIRECT_URL = "/staff/"
LOGIN_REDIRECT_URL_FAILURE = "/staff/login/"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
if OIDC_RP_CLIENT_ID and OIDC_OP_TOKEN_ENDPOINT:
    if not CRENEAU_OIDC_ISSUER:
        raise ImproperlyConfigured(
            "CRENEAU_OIDC_ISSUER is required with CRENEAU_OIDC_CLIENT_ID: the sign-on checks "
            "that every ID token comes from that issuer."
        )
    AUTHENTICATION_BACKENDS.append("creneau.staff.sign_on.HospitalSignOn")

# An agent of a call centre signs in to the console with a password and a one-time code.
LOGIN_URL = "console:login"
OTP_TOTP_ISSUER = "Créneau"
# The organisation's staff sign in to the admin with a one-time code too (`creneau staff-otp
# USER` issues one); off only for a trial where nobody can scan a code.
CRENEAU_STAFF_OTP = env_bool("CRENEAU_STAFF_OTP", True)
# bench.booking's floor: /bench/baseline/ID reads one row by its key and answers JSON, served by
# the same gunicorn and database as the hub. Never on outside a benchmark.
CRENEAU_BENCH_BASELINE = env_bool("CRENEAU_BENCH_BASELINE", False)
# How long a caller found by an operator's look-up stays open to that operator for a change.
CRENEAU_LOOKUP_MINUTES = env_int("CRENEAU_LOOKUP_MINUTES", 30)
# Patients' identities are erased this many days after their appointment (or after their
# waiting-list entry closed), leaving anonymous records for the statistics.
CRENEAU_PATIENT_DATA_DAYS = env_int("CRENEAU_PATIENT_DATA_DAYS", 365)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        # One JSON object a line, for a log collector (CRENEAU_LOG_FORMAT=json).
        "json": {"()": "creneau.operations.log_redaction.JsonFormatter"},
    },
    # A manage token in a logged path or query is redacted (operations.log_redaction).
    "filters": {"secrets": {"()": "creneau.operations.log_redaction.RedactSecrets"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if env_str("CRENEAU_LOG_FORMAT", "") == "json" else "plain",
            "filters": ["secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("CRENEAU_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# gunicorn, for ``creneau serve`` (and the demo, on loopback).
CRENEAU_BIND = env_str("CRENEAU_BIND", "127.0.0.1:8000") or "127.0.0.1:8000"
CRENEAU_WORKERS = env_int("CRENEAU_WORKERS", 2 * (os.cpu_count() or 1) + 1)
CRENEAU_THREADS = env_int("CRENEAU_THREADS", 4)

# Booking: how long a hold keeps a slot while a patient types, how long a waiting-list offer
# stays exclusive, how far ahead slots are generated, and how long idempotency keys are kept.
CRENEAU_HOLD_MINUTES = env_int("CRENEAU_HOLD_MINUTES", 10)
CRENEAU_OFFER_MINUTES = env_int("CRENEAU_OFFER_MINUTES", 120)
CRENEAU_HORIZON_WEEKS = env_int("CRENEAU_HORIZON_WEEKS", 26)
CRENEAU_IDEMPOTENCY_HOURS = max(24, env_int("CRENEAU_IDEMPOTENCY_HOURS", 48))


def _rate(name: str, default: str) -> tuple[int, int]:
    """``COUNT/SECONDS``, e.g. ``30/600``; ``0`` switches the limit off."""
    raw = env_str(name, default) or default
    if raw.strip() == "0":
        return (0, 0)
    try:
        count, seconds = (int(part) for part in raw.split("/"))
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must look like 30/600 (count/seconds), not {raw!r}"
        ) from None
    if count < 1 or seconds < 1:
        raise ImproperlyConfigured(f"{name}: the count and the seconds must be positive")
    return (count, seconds)


# Per client address: holds, bookings and waiting-list requests without an account.
CRENEAU_RATE_LIMITS = {
    "hold": _rate("CRENEAU_RATE_HOLDS", "30/600"),
    "book": _rate("CRENEAU_RATE_BOOKINGS", "20/3600"),
    "wait": _rate("CRENEAU_RATE_WAITING_LIST", "10/3600"),
    # Per phone number, whatever the address: one person cannot fill an agenda from many.
    "book_phone": _rate("CRENEAU_RATE_BOOKINGS_PER_PHONE", "5/86400"),
    # Agents' sign-in attempts at the console, per address and account (a call centre's agents
    # share one address; django-otp also slows down a device after each wrong code).
    "console_login": _rate("CRENEAU_RATE_CONSOLE_LOGINS", "10/600"),
    # The hospital staff's sign-in attempts (the same rule), and their patient look-ups per
    # account (a secretary answers calls, nobody reads the whole file).
    "staff_login": _rate("CRENEAU_RATE_STAFF_LOGINS", "10/600"),
    "staff_lookup": _rate("CRENEAU_RATE_STAFF_LOOKUPS", "120/3600"),
    # SMART Scheduling Links files read without a token, per address: a finder polling every
    # minute reads about 27 files a minute (Location, Schedule and 26 weeks of Slot).
    "bulk": _rate("CRENEAU_RATE_BULK_FILES", "300/600"),
}
# Where those limits count. Every process and server must share the counts, or each limit is
# multiplied by the number of workers: the database by default; Django's Redis cache with
# CRENEAU_CACHE_URL=redis://host:6379/0 (``locmem://`` counts per process: tests of one
# process only, and ``check --deploy`` warns of it).
CRENEAU_CACHE_URL = env_str("CRENEAU_CACHE_URL", "") or ""
if CRENEAU_CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CRENEAU_CACHE_URL,
            "KEY_PREFIX": "creneau",
        }
    }
elif CRENEAU_CACHE_URL in ("", "locmem://"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    raise ImproperlyConfigured(
        f"CRENEAU_CACHE_URL must be redis://HOST:PORT/DB or locmem://, not {CRENEAU_CACHE_URL!r}"
    )
# The waiting room (booking.waiting_room): patients let in a second when a crowd arrives (0:
# none), how many are let in at once, and how long a patient once in may search, hold and book.
CRENEAU_WAITING_ROOM_RATE = env_int("CRENEAU_WAITING_ROOM_RATE", 0)
CRENEAU_WAITING_ROOM_BURST = env_int("CRENEAU_WAITING_ROOM_BURST", 20)
CRENEAU_WAITING_ROOM_PASS_MINUTES = env_int("CRENEAU_WAITING_ROOM_PASS_MINUTES", 15)
# How many requests one ticket admits (a search's pages, a practitioner's weeks, a hold, a
# booking): enough for one patient, not for ten sharing it.
CRENEAU_WAITING_ROOM_PASS_REQUESTS = env_int("CRENEAU_WAITING_ROOM_PASS_REQUESTS", 60)
CRENEAU_COUNTERS = "cache" if CRENEAU_CACHE_URL else "database"

# Text messages go only to mobile numbers of these regions (ISO 3166 codes, as libphonenumber
# names them): France and its overseas departments by default.
CRENEAU_SMS_REGIONS = env_list("CRENEAU_SMS_REGIONS", ["FR", "GP", "MQ", "GF", "RE", "YT"])

# Holds one visitor (client address) may keep at once; 0 switches the cap off.
CRENEAU_HOLDS_PER_VISITOR = env_int("CRENEAU_HOLDS_PER_VISITOR", 3)


# Background jobs: Django's tasks API (django-tasks) on the database, so that a job is written
# in the same transaction as the change that causes it. ``creneau worker`` runs them.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
CRENEAU_TASK_RESULTS_DAYS = env_int("CRENEAU_TASK_RESULTS_DAYS", 7)

# Messages to patients. Links in them start with the hub's public address.
CRENEAU_PUBLIC_URL = env_str("CRENEAU_PUBLIC_URL", "http://localhost:8000") or ""
CRENEAU_OUTBOX = Path(env_str("CRENEAU_OUTBOX") or DATA_DIR / "outbox")
CRENEAU_REMINDER_HOURS = env_int("CRENEAU_REMINDER_HOURS", 48)
# A reminder that can no longer come this long before the appointment is not sent.
CRENEAU_REMINDER_MIN_LEAD_MINUTES = env_int("CRENEAU_REMINDER_MIN_LEAD_MINUTES", 60)


def _quiet_hours(name: str, default: str) -> tuple[int, int] | None:
    """``HH:MM-HH:MM`` in Paris time (``21:00-08:00``), as minutes of the day; ``off`` (or an
    empty value) sends at any hour."""
    raw = (env_str(name, default) or "").strip()
    if raw.lower() in ("", "off", "0"):
        return None
    try:
        start, end = (part.strip() for part in raw.split("-"))
        minutes = []
        for part in (start, end):
            hours, mins = (int(n) for n in part.split(":"))
            if not (0 <= hours < 24 and 0 <= mins < 60):
                raise ValueError
            minutes.append(hours * 60 + mins)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be two times of day, HH:MM-HH:MM (for example 21:00-08:00), or off, "
            f"not {raw!r}"
        ) from None
    if minutes[0] == minutes[1]:
        raise ImproperlyConfigured(f"{name} starts and ends at the same time: say off instead.")
    return minutes[0], minutes[1]


# Offers, reminders and the hospital's notices wait out these hours (Paris time), and a
# waiting-list offer's window counts only the hours outside them; a confirmation of what the
# patient has just done is never delayed.
CRENEAU_QUIET_HOURS = _quiet_hours("CRENEAU_QUIET_HOURS", "21:00-08:00")
CRENEAU_MESSAGE_MAX_ATTEMPTS = max(1, env_int("CRENEAU_MESSAGE_MAX_ATTEMPTS", 8))
# How long a worker keeps a message it is sending before another may take it again.
CRENEAU_MESSAGE_LEASE_SECONDS = max(1, env_int("CRENEAU_MESSAGE_LEASE_SECONDS", 120))
# How often the worker looks for messages whose job was lost or whose retry time has come.
CRENEAU_SWEEP_SECONDS = max(1, env_int("CRENEAU_SWEEP_SECONDS", 60))

DEFAULT_FROM_EMAIL = env_str("CRENEAU_EMAIL_FROM", "rendez-vous@localhost") or ""
_smtp_host = env_str("CRENEAU_SMTP_HOST")
if _smtp_host:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _smtp_host
    EMAIL_PORT = env_int("CRENEAU_SMTP_PORT", 587)
    EMAIL_HOST_USER = env_str("CRENEAU_SMTP_USER", "") or ""
    EMAIL_HOST_PASSWORD = env_str("CRENEAU_SMTP_PASSWORD", "") or ""
    EMAIL_USE_TLS = env_bool("CRENEAU_SMTP_STARTTLS", EMAIL_PORT == 587)
    EMAIL_USE_SSL = env_bool("CRENEAU_SMTP_SSL", EMAIL_PORT == 465)
    EMAIL_TIMEOUT = env_int("CRENEAU_SMTP_TIMEOUT", 20)
else:
    # No SMTP server configured: each e-mail is a file in the outbox (the demo's mailbox).
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = CRENEAU_OUTBOX / "email"

CRENEAU_SMS_BACKEND = env_str("CRENEAU_SMS_BACKEND", "file") or "file"
CRENEAU_SMS_HTTP = {
    "url": env_str("CRENEAU_SMS_URL", "") or "",
    "body": env_str(
        "CRENEAU_SMS_BODY",
        '{"to": "$to", "text": "$text", "sender": "$sender", "reference": "$reference"}',
    )
    or "",
    "content_type": env_str("CRENEAU_SMS_CONTENT_TYPE", "json") or "json",
    "sender": env_str("CRENEAU_SMS_SENDER", "") or "",
    "user": env_str("CRENEAU_SMS_USER", "") or "",
    "password": env_str("CRENEAU_SMS_PASSWORD", "") or "",
    "token": env_str("CRENEAU_SMS_TOKEN", "") or "",
    "timeout": env_int("CRENEAU_SMS_TIMEOUT", 10),
    "reference_field": env_str("CRENEAU_SMS_REFERENCE_FIELD", "") or "",
}
if CRENEAU_SMS_BACKEND == "http" and not CRENEAU_SMS_HTTP["url"]:
    raise ImproperlyConfigured("CRENEAU_SMS_BACKEND=http needs CRENEAU_SMS_URL.")


# The transparency ledger: checkpoints are signed notes whose first line (and key name) is the
# log's origin; the Ed25519 signer key (PRIVATE+KEY+... as the Go note tools write it) comes from
# the environment (or CRENEAU_LEDGER_KEY_FILE), else from the data directory (made once there).
CRENEAU_LEDGER_ORIGIN = env_str("CRENEAU_LEDGER_ORIGIN", "creneau.localhost/ledger") or ""
CRENEAU_LEDGER_KEY = env_str("CRENEAU_LEDGER_KEY") or ""
CRENEAU_LEDGER_KEY_PATH = DATA_DIR / "ledger-key"
CRENEAU_LEDGER_CHECKPOINT_SECONDS = max(5, env_int("CRENEAU_LEDGER_CHECKPOINT_SECONDS", 60))
