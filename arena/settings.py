"""Arena settings: every value comes from an environment variable with a safe default.

Two run modes with no code change between them:
- embedded (default): SQLite, Celery tasks executed in-process, in-memory cache and channel layer;
- distributed: DATABASE_URL=postgres://... and REDIS_URL=redis://... switch to PostgreSQL (psycopg 3)
  and to Redis as Celery broker, cache and Channels layer.
Production (DEBUG off) has no default for secrets: SECRET_KEY and ARENA_IP_SALT must be set.
docs/deploy.md lists every variable.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from arena.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("ARENA_VAR_DIR", str(BASE_DIR / "var")))
# The SQLite database, exports and beat's schedule live here; on a read-only image, mount it.
with contextlib.suppress(OSError):
    VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)


_PLACEHOLDERS = {"change-me", "changeme", "secret", "please-change-me"}


def _secret(name: str) -> str:
    """The secret from the environment; with DEBUG on and none set, this installation's own random one.

    No usable default is shipped: a published key would let anyone sign an admitted voter's cookie.
    The embedded mode makes one on first run and keeps it in ARENA_VAR_DIR (readable by its owner
    only), so cookies and IP hashes survive restarts.
    """
    value = env_str(name)
    if value and not DEBUG and value.strip().lower() in _PLACEHOLDERS:
        raise ImproperlyConfigured(f"{name} still has the example value {value!r}; set a real secret.")
    if value:
        return value
    if DEBUG:
        return _local_secret(VAR_DIR / f".{name.lower()}")
    raise ImproperlyConfigured(f"{name} must be set when DEBUG is off (or {name}_FILE naming a file).")


def _local_secret(path: Path) -> str:
    with contextlib.suppress(FileNotFoundError):
        if value := path.read_text(encoding="utf-8").strip():
            return value
    value = secrets.token_urlsafe(48)
    try:  # created readable by its owner only; of two processes starting at once, the first one wins
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _local_secret(path)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(value)
    return value


SECRET_KEY = _secret("SECRET_KEY")
# Salt for hashing voter IP addresses; raw IPs are never stored.
ARENA_IP_SALT = _secret("ARENA_IP_SALT")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "ninja",  # serves its Swagger UI assets as static files (no CDN) for /api/v1/docs
    "arena",
    "arena.exports.apps.ExportsConfig",
    "arena.judges.apps.JudgesConfig",
    "arena.leaderboards.apps.LeaderboardsConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "arena.web.middleware.ContentSecurityPolicyMiddleware",
    "arena.web.middleware.DatabaseUnavailableMiddleware",
    "arena.web.middleware.StaleVoterMiddleware",
    "arena.web.middleware.JsonBodyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "arena.urls"
ASGI_APPLICATION = "arena.asgi.application"
WSGI_APPLICATION = "arena.wsgi.application"

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
    }
]

# --- Database -------------------------------------------------------------------------------------
# An empty DATABASE_URL (a blank line in an .env file) means the default, as REDIS_URL does.
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'arena.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI every request may run its sync code on another thread, so per-thread persistent
    # connections would pile up; a psycopg pool per process bounds them instead.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # No health check on every checkout (a round trip per request): a connection found broken makes
    # the outage middleware check the whole pool at once (arena.web.middleware.DatabaseCircuit.failed).
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env_bool("DB_POOL_CHECK", False)
    # Prepared statements for arena.core.hot_sql (server-side parameters, planned once per
    # connection). The ORM binds on the client and never prepares, whatever this says.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 0
    # A server that does not answer (a host gone, a network cut) fails a new connection after this
    # many seconds instead of psycopg's 130 (libpq's minimum is 2). A refused one fails at once.
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env_int("DB_CONNECT_TIMEOUT", 2))
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env_int("DB_POOL_MIN_SIZE", 2),
        "max_size": env_int("DB_POOL_MAX_SIZE", 10),
        "timeout": env_float("DB_POOL_TIMEOUT", 10.0),
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite: wait for the writer instead of failing at once, and take the write lock up front.
    # Write-ahead logging: readers never wait for the writer (the embedded worker writes while pages read).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# While PostgreSQL is down, a web process answers with the outage page at once and lets one request
# try the database again every this many seconds (arena.web.middleware.DatabaseCircuit).
DB_OUTAGE_RETRY_AFTER = env_float("DB_OUTAGE_RETRY_AFTER", 1.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker, cache and Channels layer -------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "") or ""

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "arena.cache.SharedPoolRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # channels_redis blocks up to 5 s per read; a longer socket timeout keeps a quiet
            # websocket (a voter waiting for a slow model) from being dropped by redis-py's default.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}], "capacity": 2000, "expiry": 60},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = None
# Without a broker, tasks run in-process (the embedded mode).
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "arena.leaderboards.tasks.*": {"queue": "ratings"},
    # Generation is sent explicitly to generate_api or generate_gpu by the model's backend
    # (arena.services.dispatch.queue_for); this route is the fallback.
    "arena.tasks.generate_response": {"queue": "generate_api"},
    "arena.tasks.reap_stale_responses": {"queue": "default"},
    "arena.tasks.compute_voter_quality": {"queue": "default"},
    # Judge tasks are sent to their judge backend's queue (arena.judges.running.dispatch); this is the fallback.
    "arena.judges.tasks.judge_pairings": {"queue": "generate_api"},
    "arena.judges.tasks.reap_stale_judging": {"queue": "default"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
    # One attempt to reach an unreachable broker host gives up after 5 s, not the kernel's 2 minutes.
    "socket_connect_timeout": 5,
}
if CELERY_BROKER_URL.startswith("memory://"):
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = 0.05  # the embedded worker's pick-up delay
# The embedded mode: the ASGI server runs a Celery worker (thread pool, every queue) and beat in threads
# of its own process, fed through the in-memory broker (arena.embedded). Off where a broker is set.
ARENA_IN_PROCESS_WORKERS = env_bool("ARENA_IN_PROCESS_WORKERS", CELERY_BROKER_URL.startswith("memory://"))
ARENA_IN_PROCESS_CONCURRENCY = env_int("ARENA_IN_PROCESS_CONCURRENCY", 8)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A Redis restart: workers stay up and consume again within about 2 s of Redis being back
# (arena/worker_resilience.py, docs/reliability.md). This consumer reconnects every 1-2 s (Celery's own
# backs off to 30 s), and it never gives up: a worker without its broker has nothing else to do (the
# default, 100 attempts, would end the process after a few minutes).
CELERY_WORKER_CONSUMER = "arena.worker_resilience:Consumer"
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A task running when the connection drops goes on to its end (a generation is not thrown away because
# Redis restarted). Celery's current default, stated because Celery 6 changes it to True.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Beat keeps its last-run times here (a writable place, not the code directory).
CELERY_BEAT_SCHEDULE_FILENAME = env_str("CELERY_BEAT_SCHEDULE_FILENAME", str(VAR_DIR / "celerybeat-schedule"))
CELERY_BEAT_SCHEDULE = {
    "recompute-active-campaigns": {
        "task": "arena.leaderboards.tasks.recompute_active_campaigns",
        "schedule": env_float("ARENA_RECOMPUTE_INTERVAL", 60.0),
    },
    "reap-stale-responses": {
        "task": "arena.tasks.reap_stale_responses",
        "schedule": env_float("ARENA_GENERATION_REAP_INTERVAL", 3.0),  # one indexed query when all is well
    },
    "reap-stale-judging": {"task": "arena.judges.tasks.reap_stale_judging", "schedule": 60.0},
}

# --- Auth and security ------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Health checks from the orchestrator come over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- Static files -----------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
WHITENOISE_USE_FINDERS = DEBUG

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Arena ------------------------------------------------------------------------------------------
# Trust X-Forwarded-For from a reverse proxy for the voter's IP (hashed with ARENA_IP_SALT).
ARENA_TRUST_X_FORWARDED_FOR = env_bool("ARENA_TRUST_X_FORWARDED_FOR", False)
# Seconds between two recomputes of one campaign's leaderboard (debounce).
ARENA_RECOMPUTE_DEBOUNCE = env_float("ARENA_RECOMPUTE_DEBOUNCE", 5.0)
# Seconds before the staff dashboard asks a worker for fresh voter-quality figures.
ARENA_QUALITY_MAX_AGE = env_float("ARENA_QUALITY_MAX_AGE", 300.0)
# Bootstrap rounds for leaderboard intervals.
ARENA_BOOTSTRAP_ROUNDS = env_int("ARENA_BOOTSTRAP_ROUNDS", 1000)
# An open battle older than this (seconds) no longer holds a slot under "K votes per item".
ARENA_BATTLE_TTL = env_int("ARENA_BATTLE_TTL", 1800)
# Live prompts: longest prompt accepted, in characters.
ARENA_MAX_PROMPT_CHARS = env_int("ARENA_MAX_PROMPT_CHARS", 4000)
# Live prompts (new battles and further turns) per voter and minute; 0 = no limit.
ARENA_LIVE_PROMPTS_PER_MINUTE = env_int("ARENA_LIVE_PROMPTS_PER_MINUTE", 10)
# Live prompts per IP address (its HMAC), per minute and per hour, and per campaign and minute: limits
# that a client cannot reset by dropping its cookies (arena.services.guardrails.flood); 0 = no limit.
ARENA_IP_LIVE_PROMPTS_PER_MINUTE = env_int("ARENA_IP_LIVE_PROMPTS_PER_MINUTE", 20)
ARENA_IP_LIVE_PROMPTS_PER_HOUR = env_int("ARENA_IP_LIVE_PROMPTS_PER_HOUR", 200)
ARENA_CAMPAIGN_LIVE_PROMPTS_PER_MINUTE = env_int("ARENA_CAMPAIGN_LIVE_PROMPTS_PER_MINUTE", 120)
# User turns in one live battle before the voter must vote or start anew.
ARENA_LIVE_MAX_TURNS = env_int("ARENA_LIVE_MAX_TURNS", 8)
# Live battles: at most one websocket frame per side every this many seconds (the first token is sent
# at once; tokens arriving in between are merged into the next frame).
ARENA_LIVE_FRAME_INTERVAL = env_float("ARENA_LIVE_FRAME_INTERVAL", 0.05)
# Generation tasks: hard time limit in seconds (the soft limit, which marks the response failed, is
# 30 s earlier). Above the HTTP backends' default total_timeout of 600 s.
ARENA_GENERATION_TIME_LIMIT = env_int("ARENA_GENERATION_TIME_LIMIT", 660)
ARENA_GENERATION_SOFT_TIME_LIMIT = max(1, ARENA_GENERATION_TIME_LIMIT - 30)
# Retries of a generation after a transient backend error (rate limit, timeout, 5xx, connection).
ARENA_GENERATION_MAX_RETRIES = env_int("ARENA_GENERATION_MAX_RETRIES", 3)
# First retry after about this many seconds, doubling each time (at least the provider's Retry-After).
ARENA_GENERATION_RETRY_BACKOFF = env_float("ARENA_GENERATION_RETRY_BACKOFF", 2.0)
# A generation in progress touches its row every HEARTBEAT_INTERVAL seconds; a "running" row silent for
# HEARTBEAT_TIMEOUT seconds lost its worker and is requeued at once (arena.services.heartbeat).
ARENA_GENERATION_HEARTBEAT_INTERVAL = env_float("ARENA_GENERATION_HEARTBEAT_INTERVAL", 1.0)
ARENA_GENERATION_HEARTBEAT_TIMEOUT = env_float("ARENA_GENERATION_HEARTBEAT_TIMEOUT", 6.0)
if ARENA_GENERATION_HEARTBEAT_TIMEOUT < 3 * ARENA_GENERATION_HEARTBEAT_INTERVAL:
    raise ImproperlyConfigured("ARENA_GENERATION_HEARTBEAT_TIMEOUT must be at least 3 heartbeat intervals.")
# A response "queued" for longer than this (seconds) lost its task message: the reaper sends it again.
ARENA_GENERATION_STALE_AFTER = env_float("ARENA_GENERATION_STALE_AFTER", 900.0)
# Rate limits (per minute; 0 = no limit), counted in the cache and skipped while it is down. Per voter:
# votes and battle requests (page loads of the next battle included); per IP address (hashed): the same,
# higher because many voters may share one address.
ARENA_VOTE_RATE_PER_MINUTE = env_int("ARENA_VOTE_RATE_PER_MINUTE", 60)
ARENA_BATTLE_RATE_PER_MINUTE = env_int("ARENA_BATTLE_RATE_PER_MINUTE", 120)
ARENA_IP_VOTE_RATE_PER_MINUTE = env_int("ARENA_IP_VOTE_RATE_PER_MINUTE", 1200)
ARENA_IP_BATTLE_RATE_PER_MINUTE = env_int("ARENA_IP_BATTLE_RATE_PER_MINUTE", 2400)
# Staff login: this many failed attempts for one username from one IP address lock it for the period.
ARENA_LOGIN_MAX_FAILURES = env_int("ARENA_LOGIN_MAX_FAILURES", 5)
ARENA_LOGIN_LOCKOUT_SECONDS = env_int("ARENA_LOGIN_LOCKOUT_SECONDS", 900)
# Export files (battles, preference pairs, leaderboards); web and workers must share this folder.
ARENA_EXPORT_DIR = Path(env_str("ARENA_EXPORT_DIR", str(VAR_DIR / "exports")))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
