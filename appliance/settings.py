"""The one settings module. Production behaviour comes from the TOML file named by APPLIANCE_CONFIG (default
/etc/appliance/appliance.toml) and from APPLIANCE_* environment variables; secrets come only from files.

Without APPLIANCE_CONFIG and without the default file, the appliance runs in development mode: everything lives
under the checkout's `var/` (SQLite database, blobs, generated development keys) and cookies are not marked
Secure, because the development server speaks plain HTTP on 127.0.0.1. A production config that is wrong or
incomplete stops start-up with a message naming the setting.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.utils.csp import CSP

from appliance.lib.config import ConfigError, load_config

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = Path("/etc/appliance/appliance.toml")

_explicit = os.environ.get("APPLIANCE_CONFIG")
_config_path = Path(_explicit) if _explicit else DEFAULT_CONFIG
config = load_config(_config_path, required=bool(_explicit))
MODE = config.string("appliance.mode", "development" if not _config_path.exists() else "production")
if MODE not in {"development", "production"}:
    raise ConfigError(f"setting 'appliance.mode' must be 'development' or 'production', got {MODE!r}")
PRODUCTION = MODE == "production"

# Where state lives. Development: the checkout's var/; production: must be configured.
DATA_DIR = config.path("paths.data_dir", None if PRODUCTION else BASE_DIR / "var")
KEY_DIR = config.path("paths.key_dir", None if PRODUCTION else DATA_DIR / "keys")
POLICY_DIR = config.path("paths.policy_dir", BASE_DIR / "policies")
STATIC_ROOT = config.path("paths.static_root", DATA_DIR / "static")
APPLIANCE_ID = config.string("appliance.id", "appliance.dev.local")
# Space allocated to the audit tables; `appliance.auditlog.storage` alerts at 75% of it (V-222483).
AUDIT_STORAGE_BUDGET_MB = config.integer("audit.storage_budget_mb", 10240, minimum=1)

# The vault (docs/configuration.md, [vault]): where the KEK lives and where encrypted blobs go. The KEK file or the
# PKCS#11 PIN file is read when first needed, by appliance.vault.keys, never here.
VAULT_PROVIDER = config.string("vault.provider", "file")
if VAULT_PROVIDER not in {"file", "pkcs11"}:
    raise ConfigError(f"setting 'vault.provider' must be 'file' or 'pkcs11', got {VAULT_PROVIDER!r}")
VAULT_KEK_FILE = config.path("vault.kek_file", KEY_DIR / "vault-kek")
VAULT_PKCS11 = (
    {
        "module": config.path("vault.pkcs11_module"),
        "token": config.string("vault.pkcs11_token"),
        "pin_file": config.path("vault.pkcs11_pin_file"),
        "key_label": config.string("vault.pkcs11_key_label"),
    }
    if VAULT_PROVIDER == "pkcs11"
    else None
)
VAULT_SEGMENT_SIZE = config.integer("vault.segment_size", 1 << 20, minimum=16)
if VAULT_SEGMENT_SIZE > 64 << 20:
    raise ConfigError(f"setting 'vault.segment_size' must be at most {64 << 20} bytes, got {VAULT_SEGMENT_SIZE}")
VAULT_BLOB_DIR = config.path("vault.blob_dir", DATA_DIR / "blobs")

# Imports (docs/configuration.md, [datasets]; docs/import-safety.md): caps checked before and while decoding.
_MiB = 1024 * 1024
IMPORT_MAX_IMAGE_BYTES = config.integer("datasets.max_image_mb", 256, minimum=1) * _MiB
IMPORT_MAX_PIXELS = config.integer("datasets.max_pixels", 8192 * 8192, minimum=1)
IMPORT_MAX_ARCHIVE_MEMBERS = config.integer("datasets.max_archive_members", 10_000, minimum=1)
IMPORT_MAX_ARCHIVE_BYTES = config.integer("datasets.max_archive_mb", 4096, minimum=1) * _MiB
# Images with more pixels than this get a downscaled preview for the browser; the original stays downloadable.
PREVIEW_OVER_PIXELS = config.integer("datasets.preview_over_pixels", 4096 * 4096, minimum=1)
# Files one upload request may carry (Django's default is 100); more go in an archive.
DATA_UPLOAD_MAX_NUMBER_FILES = config.integer("datasets.max_upload_files", 1000, minimum=1)
# Uploads are encrypted into a spool under VAULT_BLOB_DIR as they arrive: never a plaintext temporary file, never a
# whole file in memory (appliance/datasets/uploads.py). Over a cap the view answers 413 with the reason. A single
# file may be as large as an archive may expand to; images inside are held to datasets.max_image_mb by the import.
FILE_UPLOAD_HANDLERS = ["appliance.datasets.uploads.EncryptingUploadHandler"]
UPLOAD_MAX_FILE_BYTES = config.integer("datasets.upload_max_file_mb", 4096, minimum=1) * _MiB
UPLOAD_MAX_REQUEST_BYTES = config.integer("datasets.upload_max_request_mb", 4096, minimum=1) * _MiB
if UPLOAD_MAX_REQUEST_BYTES < UPLOAD_MAX_FILE_BYTES:
    raise ConfigError("setting 'datasets.upload_max_request_mb' must be at least 'datasets.upload_max_file_mb'")


def _development_secret_key() -> str:
    """Development only: a random key generated once under var/keys (0600), never committed."""
    path = KEY_DIR / "django-secret-key"
    if not path.exists():
        KEY_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(64))
    return path.read_text().strip()


if PRODUCTION:
    SECRET_KEY = config.secret("secret_key")
    if SECRET_KEY is None or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ConfigError("setting 'secret_key_file' must name a file with at least 50 random characters")
else:
    SECRET_KEY = _development_secret_key()

DEBUG = False  # never: tracebacks can carry classified data; tests and development use the real error pages
ALLOWED_HOSTS = config.string_list("http.allowed_hosts", None if PRODUCTION else ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = config.string_list("http.csrf_trusted_origins", [] if not PRODUCTION else None)


def _database_from_url(url: str, password_file_setting: str) -> dict[str, object]:
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ConfigError(f"setting 'database.url' must be a postgres:// URL, got scheme {parts.scheme!r}")
    if parts.password:
        raise ConfigError("setting 'database.url' must not contain a password; use 'database.password_file'")
    database: dict[str, object] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "appliance",
        "USER": unquote(parts.username or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {},
    }
    password = config.secret(password_file_setting.removesuffix("_file"), required=False)
    if password:
        database["PASSWORD"] = password
    options = {"sslmode": config.string("database.sslmode", "prefer")}
    # The CA that signed the database server's certificate, for sslmode verify-full (else libpq's PGSSLROOTCERT).
    rootcert = config.string("database.sslrootcert", "")
    if rootcert:
        options["sslrootcert"] = rootcert
    database["OPTIONS"] = options
    return database


_database_url = os.environ.get("DATABASE_URL") or config.string("database.url", "") or ""
if _database_url:
    DATABASES = {"default": _database_from_url(_database_url, "database.password_file")}
elif PRODUCTION:
    raise ConfigError("setting 'database.url' is required in production (postgres://user@host/name)")
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "appliance.sqlite3",
            # IMMEDIATE: a transaction takes SQLite's write lock at BEGIN, which serialises audit appends.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": DATA_DIR / "test.sqlite3"},
        }
    }

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_tasks_db",
    "appliance.access",
    "appliance.auditlog",
    "appliance.vault",
    "appliance.accounts",
    "appliance.datasets",
    "appliance.labeling",
    "appliance.inference",
    "appliance.exchange",
    "appliance.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "appliance.auditlog.middleware.AuditContextMiddleware",
    "appliance.accounts.middleware.SessionPolicyMiddleware",
    "appliance.access.middleware.DenyByDefaultMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "appliance.urls"
WSGI_APPLICATION = "appliance.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "appliance.web.context.page_context",
            ],
        },
    }
]

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
# PBKDF2-HMAC-SHA256 only: a FIPS-approved construction (V-222542); iterations come from policies/security.toml.
PASSWORD_HASHERS = ["appliance.accounts.passwords.PolicyPBKDF2PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [{"NAME": "appliance.accounts.passwords.PolicyPasswordValidator"}]
LOGIN_URL = "accounts:consent"
LOGIN_REDIRECT_URL = "web:home"

# Sessions live in the database so that logout, timeout and an admin's lock destroy them server-side.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_NAME = "appliance_session"
SESSION_COOKIE_HTTPONLY = True  # V-222575
SESSION_COOKIE_SAMESITE = "Strict"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True  # V-222578
SESSION_COOKIE_AGE = 24 * 3600  # upper bound; the absolute lifetime from policy is enforced by middleware
SESSION_COOKIE_SECURE = PRODUCTION  # V-222576
CSRF_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Strict"
LANGUAGE_COOKIE_SECURE = PRODUCTION

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    # TLS ends at nginx on the same host, which sets X-Forwarded-Proto (V-222596).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = config.boolean("http.ssl_redirect", True)
    SECURE_HSTS_SECONDS = config.integer("http.hsts_seconds", 31_536_000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Strict CSP: no inline script or style anywhere, nothing from another origin (V-222602).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "appliance.accounts.tokens.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["appliance.access.drf.PolicyPermission"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "appliance.access.api_errors.handle_api_exception",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# The OpenAPI description (appliance/web/api_docs.py); Swagger UI from the sidecar package's static files, never a CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "Labeling appliance API",
    "DESCRIPTION": "Every endpoint goes through the access decision; hidden objects answer 404.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Three fields are called "format" (an item's image format, an export's and an import's file format): each
    # choice set gets a name of its own in the schema.
    "ENUM_NAME_OVERRIDES": {
        "ExportFormatEnum": "appliance.exchange.models.ExportFormat",
        "ImportFormatEnum": "appliance.exchange.importing.FORMATS",
    },
}

DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200

STATIC_URL = "/static/"
STATICFILES_DIRS: list[Path] = []

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Structured logs to stderr; journald (or the site's syslog) collects them. Never a secret in a message.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": config.string("logging.level", "INFO")},
    "loggers": {"django.security": {"level": "INFO"}},
}

# Pre-labeling (docs/configuration.md, [inference]; appliance/inference/conf.py reads these): execution providers in
# the order to try (a GPU host lists CUDA first; onnxruntime falls back to the CPU), images per call where the model
# allows batching, onnxruntime's intra-op threads (0 = all cores), and how long a job's worker may be silent before
# the job may be resumed elsewhere.
INFERENCE_PROVIDERS = config.string_list("inference.providers", ["CUDAExecutionProvider", "CPUExecutionProvider"])
INFERENCE_BATCH = config.integer("inference.batch", 4, minimum=1)
INFERENCE_THREADS = config.integer("inference.threads", 0, minimum=0)
INFERENCE_STALE_SECONDS = config.integer("inference.stale_seconds", 120, minimum=0)

# Background work (pre-labeling, exports) on Django's tasks framework with a database queue: jobs survive restarts
# and any number of worker hosts share one queue (`manage.py db_worker`).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
