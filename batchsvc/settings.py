"""Settings for batchsvc, read from environment variables with working defaults.

Every variable is listed in .env.example. Nothing here needs a value to start:
the defaults give an embedded SQLite database under var/ and DEBUG off.
"""

import hashlib
import json
import os
from decimal import Decimal
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from batchsvc.api.flags import parse_bool

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
(VAR_DIR / "static").mkdir(parents=True, exist_ok=True)
# Metrics of every process on this machine (gunicorn workers, db_worker) meet here;
# see batchsvc.ops.metrics. Set before prometheus_client is imported, which reads it then.
PROMETHEUS_MULTIPROC_DIR = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus")
)
Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean; anything but true/false (any case) is a mistake, not False."""
    try:
        return parse_bool(os.environ.get(name), default=default)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} {exc}.") from None


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}.") from None


def env_days(name: str) -> int | None:
    """Days to keep something: empty keeps it forever."""
    days = env_int(name, None)
    if days is not None and days < 0:
        raise ImproperlyConfigured(f"{name} must be 0 or more days, or empty, not {days}.")
    return days


def env_optional_int(name: str) -> int | None:
    """A whole number above 0, or None when empty (no limit)."""
    value = env_int(name, 0)
    if value < 0 or (value == 0 and os.environ.get(name, "").strip()):
        raise ImproperlyConfigured(f"{name} must be a whole number above 0, or empty.")
    return value or None


def env_share(name: str) -> float:
    """A fraction above 0 and at most 1; empty is 1 (everything)."""
    value = os.environ.get(name, "").strip()
    try:
        share = float(value) if value else 1.0
    except ValueError:
        share = -1.0
    if not 0 < share <= 1:
        raise ImproperlyConfigured(f"{name} must be a number above 0 and at most 1, or empty.")
    return share


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_map(name: str, default: str) -> dict[str, str]:
    """Read ``key=value,key=value``; an entry without "=" is a mistake."""
    mapping = {}
    for item in env_list(name, default):
        key, equals, value = item.partition("=")
        if not (equals and key.strip() and value.strip()):
            raise ImproperlyConfigured(f"{name} must be name=column pairs, not {item!r}.")
        mapping[key.strip()] = value.strip()
    return mapping


def env_json(name: str, default):
    """Read a JSON value (numbers with a fraction as Decimal, exactly as written)."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return json.loads(value, parse_float=Decimal)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be JSON, not {value!r}.") from None


def env_limits(name: str, keys: tuple[str, ...], number) -> dict[str, dict]:
    """Read ``{"<name>": {"<key>": <number>, ...}, ...}`` (any subset of ``keys``),
    each number positive."""
    value = env_json(name, {})
    example = f'{{"openai": {{"{keys[0]}": ...}}}}'
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ImproperlyConfigured(f"{name} must be a JSON object such as {example}.")
    for entry in value.values():
        for key, amount in entry.items():
            if key not in keys:
                raise ImproperlyConfigured(f"{name}: {key!r} is not one of {', '.join(keys)}.")
            if isinstance(amount, bool) or not isinstance(amount, number) or amount <= 0:
                raise ImproperlyConfigured(f"{name}: {key} must be a positive number.")
    return value


DEBUG = env_bool("DEBUG", False)
# Where `make run` (and `make test`) generate a key once, for a machine that sets none.
SECRET_KEY_FILE = VAR_DIR / "secret_key"
# Only ever used with DEBUG on; the system check batchsvc.W001 warns if it is set by hand.
DEVELOPMENT_SECRET_KEY = "django-insecure-batchsvc-development-key-do-not-use-in-production"


def read_secret_key() -> str:
    """SECRET_KEY from the environment, else the generated file, else (DEBUG only) the
    development key. Serving without one would sign sessions with a public key."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    if SECRET_KEY_FILE.is_file() and (key := SECRET_KEY_FILE.read_text().strip()):
        return key
    if DEBUG:
        return DEVELOPMENT_SECRET_KEY
    raise ImproperlyConfigured(
        f"No secret key: set SECRET_KEY in the environment (or generate {SECRET_KEY_FILE} "
        "with `make secret-key`) before starting batchsvc with DEBUG off."
    )


SECRET_KEY = read_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "batchsvc",
    "traces",
    "setuplogs",
    "batches",
    "openai_api",
    "webhooks",
    # After batches, whose db_worker command wraps django_tasks_db's (see
    # batches/management/commands/db_worker.py).
    "django_tasks",
    "django_tasks_db",
]

MIDDLEWARE = [
    # First: its request id is on every log line and error body the others write.
    "batchsvc.ops.middleware.RequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise, which serves static files compressed ahead of time, and before
    # every middleware that writes a body (the JSON errors), so it compresses theirs.
    "batchsvc.ops.compression.GZipMiddleware",
    "batchsvc.api.errors.ApiErrorMiddleware",
    "batchsvc.api.errors.DatabaseUnavailableMiddleware",
    "batchsvc.api.errors.RefuseNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "batchsvc.urls"
SESSION_ENGINE = "batchsvc.ops.sessions"  # Django's database sessions; see the module
WSGI_APPLICATION = "batchsvc.wsgi.application"

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

# Database: DATABASE_URL (postgres://user@host/name) or the embedded SQLite file.
# CONN_HEALTH_CHECKS: a kept connection is tried before a request's first query,
# and one that failed is closed when the request ends, so that the first request
# after a database restart gets a new connection instead of the dead one.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Give up connecting after this many seconds (and answer 503) rather than
    # wait for the operating system's TCP timeout, minutes on a lost host.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("DB_CONNECT_TIMEOUT", 3)
    )
# While the database is unavailable requests answer 503 with this Retry-After
# (seconds); see batchsvc.api.errors.
DB_UNAVAILABLE_RETRY_AFTER = env_int("DB_UNAVAILABLE_RETRY_AFTER", 5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # Writers take the lock when their transaction starts and queue behind
        # each other for up to `timeout` seconds instead of failing with
        # "database is locked" half-way through.
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("SQLITE_BUSY_TIMEOUT", 30),
        # A 1000-run batch touches index pages all over the table (random
        # event_ids and run_ids): 4-9 MB of them once the table is large.
        # - Checkpoint every ~40 MB of WAL rather than every 4 MB: a rarer
        #   checkpoint copies each of those pages once instead of once per couple
        #   of commits.
        # - A 32 MiB page cache (SQLite's default is 2 MiB) holds a batch's dirty
        #   pages until its commit instead of spilling them to the WAL half-way.
        #   SQLite allocates it only as it is used.
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
            "PRAGMA wal_autocheckpoint=10000; PRAGMA cache_size=-32768"
        ),
    }
    # A file, not :memory:, so that live-server threads and worker processes
    # started by the tests share the test database.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("TEST_DB_NAME", str(VAR_DIR / "test.sqlite3"))
    }
else:
    # Checkouts that share one server (CI beside other work, several work trees)
    # each test in a database of their own rather than dropping each other's.
    checkout = hashlib.sha256(str(BASE_DIR).encode()).hexdigest()[:8]
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("TEST_DB_NAME", f"test_batchsvc_{checkout}")
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Request bodies: a 1000-run batch with sizeable context_json fits easily.
# Over the limit, the API answers a JSON 413 (see batchsvc.api.parsers).
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 16 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES

RUNS_BATCH_MAX = env_int("RUNS_BATCH_MAX", 1000)

# Who owns the runs and trace files stored before objects had owners: read once,
# by the migration that gives them one (default: the oldest superuser).
MIGRATE_OWNER = os.environ.get("MIGRATE_OWNER", "")

# Batch GET and field selection: how many ids one POST /api/v1/batch/get may ask for.
BATCH_GET_MAX_IDS = env_int("BATCH_GET_MAX_IDS", 100)

# Files (trace files, OpenAI-compatible uploads and results): the "traces" storage
# holds them all. FILES_STORAGE_URL chooses it: empty, a folder under TRACES_ROOT
# that writes atomically and never leaves its root; s3://bucket/prefix, that
# bucket through django-storages (credentials the usual AWS_* way). The code only
# talks to storages["traces"].
TRACES_ROOT = Path(os.environ.get("TRACES_ROOT") or VAR_DIR / "traces")
FILES_STORAGE_URL = os.environ.get("FILES_STORAGE_URL", "")


def files_storage(url: str) -> dict:
    """The STORAGES entry for FILES_STORAGE_URL."""
    if not url:
        return {
            "BACKEND": "traces.storage.TraceStorage",
            "OPTIONS": {"location": str(TRACES_ROOT), "fsync": env_bool("TRACES_FSYNC", True)},
        }
    scheme, _, rest = url.partition("://")
    bucket, _, prefix = rest.partition("/")
    if scheme != "s3" or not bucket:
        raise ImproperlyConfigured(
            f"FILES_STORAGE_URL must be empty or s3://bucket[/prefix], not {url!r}."
        )
    return {
        "BACKEND": "traces.s3.S3FilesStorage",
        "OPTIONS": {
            "bucket_name": bucket,
            "location": prefix.strip("/"),
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
            # Files are served by the API, never by a signed bucket URL.
            "querystring_auth": False,
        },
    }


STORAGES["traces"] = files_storage(FILES_STORAGE_URL)
TRACES_BATCH_MAX = env_int("TRACES_BATCH_MAX", 50)
TRACE_MAX_BYTES = env_int("TRACE_MAX_BYTES", 10 * 1024 * 1024)
# Body limit of the two write endpoints: one file at its largest, JSON-escaped.
TRACES_MAX_REQUEST_BYTES = env_int("TRACES_MAX_REQUEST_BYTES", 32 * 1024 * 1024)
# Files of one batch are written by this many threads at once.
TRACES_WRITE_THREADS = env_int("TRACES_WRITE_THREADS", 8)
# The admin shows text files up to this size; larger ones are cut.
TRACES_ADMIN_PREVIEW_BYTES = env_int("TRACES_ADMIN_PREVIEW_BYTES", 256 * 1024)
# Setup logs (setuplogs): lines per batch append, and the longest message in
# UTF-8 bytes; a longer line is skipped and reported, not truncated.
LOGS_BATCH_MAX = env_int("LOGS_BATCH_MAX", 1000)
LOG_MESSAGE_MAX = env_int("LOG_MESSAGE_MAX", 64 * 1024)

# Batch jobs: spreadsheet uploads sent row by row to a chat processor.
# Processors are registered by name; the URLs they call come only from here,
# never from an upload or a batch's options (no server-side request forgery).
BATCH_PROCESSORS = {
    "echo": "batches.processors.echo.EchoProcessor",
    "http": "batches.processors.http.HttpProcessor",
    "openai": "batches.processors.openai.OpenAIProcessor",
    "openai_batch": "batches.processors.passthrough.PassthroughProcessor",
}
BATCH_HTTP_URL = os.environ.get("BATCH_HTTP_URL", "")
OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "")
OPENAI_MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
BATCH_PROCESSOR_TIMEOUT = env_int("BATCH_PROCESSOR_TIMEOUT", 60)  # seconds per HTTP call
BATCH_PROCESSOR_RETRIES = env_int("BATCH_PROCESSOR_RETRIES", 3)  # extra tries when transient
BATCH_PROCESSOR_BACKOFF_MS = env_int("BATCH_PROCESSOR_BACKOFF_MS", 500)  # doubles per retry
BATCH_MAX_ROWS = env_int("BATCH_MAX_ROWS", 100_000)
# Other names for the question, chat_id and url columns, matched like them (any case,
# spaces, underscores and hyphens ignored); by default REDACTEDQUESTION is the question.
BATCH_COLUMN_ALIASES = env_map("BATCH_COLUMN_ALIASES", "REDACTEDQUESTION=question")
BATCH_MAX_UPLOAD_BYTES = env_int("BATCH_MAX_UPLOAD_BYTES", 50 * 1024 * 1024)
# How far an uploaded XLSX (a zip of XML) may inflate, checked before it is parsed.
BATCH_MAX_UNCOMPRESSED_BYTES = env_int("BATCH_MAX_UNCOMPRESSED_BYTES", 256 * 1024 * 1024)
BATCH_MAX_SHARED_STRINGS_BYTES = env_int("BATCH_MAX_SHARED_STRINGS_BYTES", 64 * 1024 * 1024)
# Provider rate limits, one budget per processor shared by every worker (batches.processors.lanes),
# e.g. {"openai": {"requests_per_minute": 500, "tokens_per_minute": 200000}}; a batch's
# options of the same names may only lower them.
BATCH_RATE_LIMITS = env_limits(
    "BATCH_RATE_LIMITS", ("requests_per_minute", "tokens_per_minute"), int
)
# US dollars per million tokens, by model, for the batches' estimated cost, e.g.
# {"gpt-4o-mini": {"prompt_per_million": 0.15, "completion_per_million": 0.60}}.
BATCH_MODEL_PRICES = env_limits(
    "BATCH_MODEL_PRICES", ("prompt_per_million", "completion_per_million"), int | Decimal
)
# Conversations one worker process runs at the same time (threads). Model calls wait
# on the network, so a worker has more threads than one batch takes by default: a
# new batch finds free threads whatever else runs.
BATCH_CONCURRENCY = env_int("BATCH_CONCURRENCY", 10)
# Conversations of one batch that run at the same time, over all workers, when its
# upload gives no concurrency.
BATCH_CONCURRENCY_DEFAULT = env_int("BATCH_CONCURRENCY_DEFAULT", 5)
# The most a batch's own concurrency may ask for.
BATCH_CONCURRENCY_MAX = env_int("BATCH_CONCURRENCY_MAX", 32)
# Per-owner quotas, defaults for every owner (the admin sets one owner's own): items of
# one owner running at once, batches queued or running at once (an upload over it is
# a 429), and the share of each provider's BATCH_RATE_LIMITS (above 0, at most 1).
QUOTA_RUNNING_ITEMS = env_optional_int("QUOTA_RUNNING_ITEMS")
QUOTA_QUEUED_BATCHES = env_optional_int("QUOTA_QUEUED_BATCHES")
QUOTA_PROVIDER_SHARE = env_share("QUOTA_PROVIDER_SHARE")
# A running item or batch whose worker has sent no heartbeat for this many seconds
# is taken over by another worker (its worker died: SIGKILL, lost machine).
BATCH_STALE_AFTER = env_int("BATCH_STALE_AFTER", 300)
# The OpenAI-compatible Batch API (openai_api, at /openai/v1/): the most lines and bytes
# of an input file, and the completion window after which a batch's lines are not sent.
OPENAI_BATCH_MAX_LINES = env_int("OPENAI_BATCH_MAX_LINES", 50_000)
OPENAI_BATCH_MAX_BYTES = env_int("OPENAI_BATCH_MAX_BYTES", 200 * 1024 * 1024)
OPENAI_BATCH_WINDOW_SECONDS = env_int("OPENAI_BATCH_WINDOW_SECONDS", 24 * 60 * 60)
# Background work: the Django Tasks API with its queue in the database.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# Webhooks (webhooks): sent by the worker when a batch ends, signed as Standard Webhooks.
# Endpoints on loopback, private or link-local addresses are refused unless allowed.
WEBHOOKS_ALLOW_PRIVATE = env_bool("WEBHOOKS_ALLOW_PRIVATE", False)
WEBHOOKS_TIMEOUT = env_int("WEBHOOKS_TIMEOUT", 10)  # seconds an attempt may take
WEBHOOKS_RETRY_FOR = env_int("WEBHOOKS_RETRY_FOR", 24 * 60 * 60)  # seconds, then given up
WEBHOOKS_BACKOFF_MS = env_int("WEBHOOKS_BACKOFF_MS", 5000)  # first wait, doubling, jittered
WEBHOOKS_BACKOFF_MAX = env_int("WEBHOOKS_BACKOFF_MAX", 60 * 60)  # longest wait, seconds
# After a secret is rotated, deliveries are signed with the old one too for this long.
WEBHOOKS_ROTATION_OVERLAP = env_int("WEBHOOKS_ROTATION_OVERLAP", 24 * 60 * 60)
WEBHOOKS_THREADS = env_int("WEBHOOKS_THREADS", 4)  # deliveries one worker sends at once

# Retention: days to keep finished batches (with their items and results), runs (with
# their log lines) and trace files; empty keeps them forever. The worker purges what is
# older every RETAIN_SWEEP_EVERY seconds (0: only `manage.py purge` does).
RETAIN_BATCHES_DAYS = env_days("RETAIN_BATCHES_DAYS")
RETAIN_RUNS_DAYS = env_days("RETAIN_RUNS_DAYS")
RETAIN_TRACE_FILES_DAYS = env_days("RETAIN_TRACE_FILES_DAYS")
RETAIN_SWEEP_EVERY = env_int("RETAIN_SWEEP_EVERY", 60 * 60)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: a view that takes uploads (batches) says so itself, so that no
    # other endpoint reads a form body past MAX_REQUEST_BYTES.
    "DEFAULT_PARSER_CLASSES": ["batchsvc.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["batchsvc.api.parsers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "batchsvc.api.parsers.ContentNegotiation",
    "EXCEPTION_HANDLER": "batchsvc.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "batchsvc.api.pagination.CursorPagination",
    "PAGE_SIZE": env_int("API_PAGE_SIZE", 100),
    # django-filter's, refusing query parameters a list does not take (batchsvc.api.filters).
    "DEFAULT_FILTER_BACKENDS": [
        "batchsvc.api.filters.FilterBackend",
        "batchsvc.api.pagination.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Scoped throttles for the batch endpoints (views set throttle_scope).
    # Counters live in the default cache: a database table shared by every
    # process, or Redis with CACHE_URL.
    "DEFAULT_THROTTLE_RATES": {
        "batch": os.environ.get("BATCH_THROTTLE_RATE", "600/minute") or None,
    },
    "NUM_PROXIES": env_int("NUM_PROXIES", 0) or None,
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["CACHE_URL"],
    }
    if os.environ.get("CACHE_URL")
    # Shared by every process (throttle counters must be), created by `migrate`.
    else {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "batchsvc_cache"}
}

# The rate limits' budgets live in Redis when the cache does, else in the database.
BATCH_LANES_REDIS_URL = (
    CACHES["default"]["LOCATION"] if CACHES["default"]["BACKEND"].endswith("RedisCache") else ""
)

SPECTACULAR_SETTINGS = {
    "TITLE": "batchsvc API",
    "DESCRIPTION": "Bulk work over HTTP: runs, log lines, trace files, spreadsheet batches.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # 3.1 speaks JSON Schema, which is what msgspec writes for request bodies.
    "OAS_VERSION": "3.1.0",
    "ENUM_NAME_OVERRIDES": {"RunStatusEnum": "traces.models.RunStatus"},
    "APPEND_COMPONENTS": {},  # filled by batchsvc.api.openapi from the msgspec schemas
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "batchsvc.api.openapi.without_trailing_slashes",
        "batchsvc.api.openapi.any_value_or_null",
        "batchsvc.api.fields.selectable_responses",
        "batchsvc.api.openapi.one_error_format",
        "batchsvc.api.openapi.links_between_operations",
    ],
}

# Operations: /metrics (see batchsvc.ops.metrics) needs this Bearer token when set, and is
# served only to connections from this machine when it is not.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# Log lines: readable text, or one JSON object a line for a log collector.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {"()": "batchsvc.ops.logs.formatter", "json": LOG_FORMAT == "json"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # One line per request, straight to the console: a handler on the root logger
        # (batchsvc_client's log handler in a process that also serves) gets none.
        "batchsvc.requests": {"handlers": ["console"], "propagate": False},
        # httpx says every provider call at INFO: a line per batch item, and a fifth of
        # the worker's time on a fast provider. Its warnings still show.
        "httpx": {"level": "WARNING"},
    },
}
