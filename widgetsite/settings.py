"""Settings for the voice widget platform, driven by environment variables.

Safe local defaults: SQLite, the in-memory channel layer, the offline speech stack and
DEBUG off. Every variable is documented in README.md ("Configuration").
"""

from __future__ import annotations

import os
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
    "accounts",
    "assistants",
    "widgets",
    "calls",
]

MIDDLEWARE = [
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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
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

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.APIKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.HasScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
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
}

# CORS is answered only for origins some widget allows (see widgets.cors), and only on
# the public widget endpoints; everything else is same-origin.
CORS_URLS_REGEX = r"^/v1/widgets/(create-call|[0-9a-f]{24}/public)/?$"
CORS_ALLOW_HEADERS = ["content-type", "x-api-key", "authorization"]
CORS_PREFLIGHT_MAX_AGE = 600

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
    "loggers": {"daphne": {"level": "WARNING"}},
}
