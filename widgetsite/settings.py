"""Settings for the voice widget platform, driven by environment variables.

Safe local defaults: SQLite, the in-memory channel layer, the offline speech stack and
DEBUG off. Every variable is documented in README.md ("Configuration").
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> str:
    key = os.environ.get("DJANGO_SECRET_KEY", "")
    key_file = os.environ.get("DJANGO_SECRET_KEY_FILE", "")
    if not key_file and (VAR_DIR / "secret_key").exists():
        key_file = str(VAR_DIR / "secret_key")
    if not key and key_file:
        try:
            key = Path(key_file).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"DJANGO_SECRET_KEY_FILE {key_file!r} cannot be read: {exc}"
            ) from exc
    if key:
        return key
    if DEBUG or os.environ.get("PYTEST_VERSION"):  # pytest sets it: tests need no key file
        return "insecure-development-key-do-not-use-in-production-0123456789"
    raise ImproperlyConfigured(
        "Set DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) to a long random string, "
        "or DJANGO_DEBUG=1 for local development. `make run` creates one in var/secret_key."
    )


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

# Behind a reverse proxy that sets X-Forwarded-Proto / X-Forwarded-Host, honour them only
# when told the proxy is trusted (otherwise any client could forge the gateway URL host).
TRUST_PROXY_HEADERS = env_bool("DJANGO_TRUST_PROXY_HEADERS", False)
USE_X_FORWARDED_HOST = TRUST_PROXY_HEADERS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUST_PROXY_HEADERS else None

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "jobs",
    "accounts",
    "assistants",
    "widgets",
    "calls",
    "webhooks",
    "telephony",
]

MIDDLEWARE = [
    # First: oversized bodies (413) and NUL in paths or query parameters are refused before
    # any other work (accounts/middleware.py).
    "accounts.middleware.RequestGuardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "widgets.cors.WidgetCorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "widgetsite.urls"
ASGI_APPLICATION = "widgetsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# The job worker (`manage.py worker`) keeps its database connections: it runs one short job
# after another, and a new PostgreSQL connection per job cost more than the job. Web processes
# close theirs after each request (ASGI's threads come and go).
RUNNING_WORKER = sys.argv[1:2] == ["worker"]
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=300 if RUNNING_WORKER else 0,
        conn_health_checks=RUNNING_WORKER,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # daphne and the job worker share the file: in WAL mode readers (the worker polls its queue
    # ten times a second) never block a writer, and IMMEDIATE transactions take the write
    # lock up front instead of failing half-way with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20,
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        transaction_mode="IMMEDIATE",
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Serve straight from the app and project folders (no collectstatic step needed);
# WhiteNoise also sends `Access-Control-Allow-Origin: *` so host pages can load the
# widget's modules and audio worklet cross-origin.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
WHITENOISE_MAX_AGE = 300
warnings.filterwarnings("ignore", message="No directory at")

MEDIA_ROOT = Path(os.environ.get("RECORDINGS_DIR", VAR_DIR / "recordings"))

# The largest request body (bytes); larger ones get a 413 before any work. The largest valid
# API body, an assistant with 500 knowledge entries at their length limits, is about 1.3 MB.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.APIKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Bounded size and depth, no unstorable text (NUL, lone surrogates): accounts/parsers.py.
    "DEFAULT_PARSER_CLASSES": ["accounts.parsers.BoundedJSONParser"],
    # The envelope and the error statuses, documented once for every operation.
    "DEFAULT_SCHEMA_CLASS": "accounts.openapi.EnvelopeAutoSchema",
    "EXCEPTION_HANDLER": "accounts.errors.envelope_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "NUM_PROXIES": 1 if TRUST_PROXY_HEADERS else 0,
    "DEFAULT_THROTTLE_RATES": {"widget_call": os.environ.get("WIDGET_CALL_RATE", "30/min")},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Voice widget platform API",
    "DESCRIPTION": (
        "Assistants, embeddable widgets and calls. Authenticate with `X-API-Key: KEY` "
        "(or `Authorization: Bearer KEY`); each endpoint names the scope it needs."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "tryItOutEnabled": True},
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets shared by fields of the same name get their own component names.
    "ENUM_NAME_OVERRIDES": {
        "CallStatusCodeEnum": "calls.serializers.STATUS_CODE_CHOICES",
        "CallStatusEnum": "calls.vocabulary.CallStatus",
        # Shared by the Call and CallDetail components; a data field's `type` is another set.
        "CallTypeEnum": "calls.vocabulary.CallType",
        "CallTransportEnum": [("websocket", "websocket"), ("webrtc", "webrtc")],
        "AnalysisDataTypeEnum": "assistants.models.DATA_TYPES",
        "PhoneProviderEnum": "telephony.models.Provider",
        # `status` of the seed-mandated flat success bodies (always true; errors: false)
        "SuccessStatusEnum": [(True, True)],
    },
}

# CORS is answered only for origins some widget allows (see widgets.cors), and only on
# the public widget endpoints; everything else is same-origin.
CORS_URLS_REGEX = r"^/v1/widgets/(create-call|[0-9a-f]{24}/public)/?$"
CORS_ALLOW_HEADERS = ["content-type", "x-api-key", "authorization"]
CORS_PREFLIGHT_MAX_AGE = 600

# Background jobs: django-q2 on the ORM broker (the database is the queue: no extra service,
# SQLite or PostgreSQL). A job leased by a worker that dies is re-delivered after `retry`
# seconds, so `retry` must exceed `timeout`. `python manage.py worker` runs a worker.
JOBS_SYNC = env_bool("JOBS_SYNC", False)  # run jobs in-line (tests, scripts): no worker needed
_jobs_timeout = env_int("JOBS_TIMEOUT_SECONDS", 60, minimum=5, maximum=3600)
Q_CLUSTER = {
    "name": "voicewidget",
    "orm": "default",
    "workers": env_int("JOBS_WORKERS", 2, minimum=1, maximum=64),
    "timeout": _jobs_timeout,
    "retry": env_int("JOBS_RETRY_SECONDS", _jobs_timeout + 30, minimum=_jobs_timeout + 1),
    "max_attempts": 10,
    "ack_failures": True,  # a job that raised is done; the rows and sweepers decide what is left
    "save_limit": 200,
    "catch_up": False,
    "scheduler": False,  # periodic jobs are ticked by `manage.py worker` (seconds, not minutes)
    "poll": 0.1,
    "bulk": 5,  # tasks taken per queue read
    "guard_cycle": 0.5,
    "label": "Jobs",
}

# Calls and the realtime gateway.
CALL_TOKEN_TTL_SECONDS = env_int("CALL_TOKEN_TTL_SECONDS", 60, minimum=5, maximum=60)
CALL_MAX_SECONDS = env_int("CALL_MAX_SECONDS", 600, minimum=10, maximum=4 * 3600)
VOICE_MODEL_DIR = Path(os.environ.get("VOICE_MODEL_DIR", VAR_DIR / "models"))

# WebRTC (aiortc). No public STUN server by default: on one machine or a LAN host
# candidates are enough; give STUN/TURN URLs for browsers behind NAT.
WEBRTC_ENABLED = env_bool("WEBRTC_ENABLED", True)
WEBRTC_ICE_SERVERS = env_list("WEBRTC_ICE_SERVERS")
WEBRTC_TURN_USERNAME = os.environ.get("WEBRTC_TURN_USERNAME", "")
WEBRTC_TURN_CREDENTIAL = os.environ.get("WEBRTC_TURN_CREDENTIAL", "")
WEBRTC_HOST_ADDRESSES = env_list("WEBRTC_HOST_ADDRESSES")
if any(u.startswith(("turn:", "turns:")) for u in WEBRTC_ICE_SERVERS) and not (
    WEBRTC_TURN_USERNAME and WEBRTC_TURN_CREDENTIAL
):
    raise ImproperlyConfigured(
        "WEBRTC_ICE_SERVERS names a TURN server: set WEBRTC_TURN_USERNAME and WEBRTC_TURN_CREDENTIAL."
    )

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # django-q logs every job it runs at INFO (periodic sweeps every few seconds): warnings only.
    "loggers": {"daphne": {"level": "WARNING"}, "django-q": {"level": "WARNING"}},
}

# Webhooks, and encryption at rest of stored secrets (webhook signing secrets, provider
# credentials; see accounts/crypto.py).


def _field_encryption_keys() -> list[str]:
    """Fernet keys, newest first: FIELD_ENCRYPTION_KEY (comma-separated while rotating), else
    FIELD_ENCRYPTION_KEY_FILE or var/field_key (made by `make`)."""
    from cryptography.fernet import Fernet

    raw = os.environ.get("FIELD_ENCRYPTION_KEY", "")
    key_file = Path(os.environ.get("FIELD_ENCRYPTION_KEY_FILE", "") or VAR_DIR / "field_key")
    if not raw and key_file.exists():
        try:
            raw = key_file.read_text().replace("\n", ",")
        except OSError as exc:
            raise ImproperlyConfigured(f"{key_file} cannot be read: {exc}") from exc
    if not raw and os.environ.get("PYTEST_VERSION"):
        # Tests need no key file: a key derived from the (test) secret key.
        import base64
        import hashlib

        digest = hashlib.sha256(f"field-encryption:{SECRET_KEY}".encode()).digest()
        raw = base64.urlsafe_b64encode(digest).decode()
    if not raw and DEBUG:
        # Local development without `make`: make the file once, as `make` would.
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(Fernet.generate_key().decode() + "\n")
        raw = key_file.read_text()
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        raise ImproperlyConfigured(
            "Set FIELD_ENCRYPTION_KEY (a Fernet key: `python -c 'from cryptography.fernet import "
            "Fernet; print(Fernet.generate_key().decode())'`), or run `make install`, which "
            "creates var/field_key. Keep it: stored secrets cannot be read without it."
        )
    for key in keys:
        try:
            Fernet(key.encode())
        except ValueError as exc:
            raise ImproperlyConfigured(
                "FIELD_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes), "
                "comma-separated, newest first."
            ) from exc
    return keys


FIELD_ENCRYPTION_KEYS = _field_encryption_keys()
# Webhook URLs must be https and resolve to public addresses; these loosen it for local
# development and the test suite (never in production: they let API users reach your LAN).
WEBHOOK_ALLOW_HTTP = env_bool("WEBHOOK_ALLOW_HTTP", False)
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env_bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", False)
WEBHOOK_TIMEOUT_SECONDS = 10  # seed 002: a receiver has 10 s to answer
# The waits before retries, in seconds; only tests and trials shorten the default schedule
# (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h).
try:
    WEBHOOK_RETRY_SCHEDULE_SECONDS = [
        int(v) for v in env_list("WEBHOOK_RETRY_SCHEDULE_SECONDS") if 0 < int(v) <= 86400
    ] or None
except ValueError as exc:
    raise ImproperlyConfigured(
        "WEBHOOK_RETRY_SCHEDULE_SECONDS must be comma-separated whole seconds"
    ) from exc

# Phone calls (telephony/). PUBLIC_BASE_URL is how the phone provider reaches this server: the
# status callback and voice webhook URLs, and the media stream's URL (wss:// for https://),
# are built from it, and the provider's request signatures are checked against it, so it must
# be exactly the scheme and host the provider calls (https, with a certificate, in production).
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").strip().rstrip("/")
if not PUBLIC_BASE_URL.startswith(("http://", "https://")) or "?" in PUBLIC_BASE_URL:
    raise ImproperlyConfigured(
        "PUBLIC_BASE_URL must be this server's public origin, e.g. https://voice.example.com"
    )
# Empty: the real Twilio REST API. Else the base URL of a stand-in (the Twilio emulator, a
# test server) that the official SDK is pointed at through its HTTP client.
TWILIO_API_BASE_URL = os.environ.get("TWILIO_API_BASE_URL", "").strip().rstrip("/")
TWILIO_HTTP_TIMEOUT_SECONDS = env_int("TWILIO_HTTP_TIMEOUT_SECONDS", 15, minimum=1, maximum=120)
# How long an outbound call's stream token stays valid: the callee must answer within it
# (Twilio rings for 60 s by default).
TWILIO_STREAM_TOKEN_TTL_SECONDS = env_int(
    "TWILIO_STREAM_TOKEN_TTL_SECONDS", 180, minimum=30, maximum=900
)

# Calls one process carries at once (speech runs on its CPU): over it, create-call and
# initiate answer 503 with Retry-After and a hello on the call socket is closed 4503.
MAX_CONCURRENT_CALLS = env_int("MAX_CONCURRENT_CALLS", 10, minimum=1, maximum=1000)

# Speech providers
# Networked speech endpoints (OpenAI-compatible) are the operator's: assistants pick one by
# name ("options": {"endpoint": "local"}), never a URL or key. JSON, e.g.
# {"openai": {"base_url": "https://api.openai.com/v1", "api_key_env": "OPENAI_API_KEY"},
#  "local": {"base_url": "http://127.0.0.1:11434/v1", "allow_private": true}}
# Server paths and process settings of the offline providers (model_dir, model_path,
# cpu_threads, ...) come from VOICE_PROVIDER_OPTIONS, e.g. {"stt.faster-whisper": {"cpu_threads": 4}}.
from voice.providers.openai_http import parse_endpoints  # noqa: E402 - framework-free
from voice.providers.options import operator_options  # noqa: E402

try:
    VOICE_ENDPOINTS = parse_endpoints(os.environ.get("VOICE_ENDPOINTS", ""), os.environ)
except ValueError as exc:
    raise ImproperlyConfigured(f"VOICE_ENDPOINTS: {exc}") from None
try:
    VOICE_PROVIDER_OPTIONS = operator_options(os.environ.get("VOICE_PROVIDER_OPTIONS", ""))
except ValueError as exc:
    raise ImproperlyConfigured(f"VOICE_PROVIDER_OPTIONS: {exc}") from None
# Warm providers kept per kind (one per model identity; tuning never adds one).
VOICE_PROVIDER_CACHE_SIZE = env_int("VOICE_PROVIDER_CACHE_SIZE", 8, minimum=1, maximum=64)
# Load and warm the default speech models when a server process starts (widgetsite.serve),
# before it accepts calls; 0: the first call loads them (1-2 s more for that call).
VOICE_WARM_START = env_bool("VOICE_WARM_START", True)
