"""Settings for the test suite: the production settings with test-only secrets and plain HTTP.

The database comes from DATABASE_URL like everywhere else (`make test` points it at the real
PostgreSQL); tasks run in-process unless a test starts a real worker.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("ARENA_IP_SALT", "test-only-ip-salt")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SESSION_COOKIE_SECURE", "false")
os.environ.setdefault("CSRF_COOKIE_SECURE", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
os.environ["ARENA_IN_PROCESS_WORKERS"] = "false"  # no worker threads: tasks run inline, deterministically
os.environ.pop("REDIS_URL", None)

from arena.settings import *  # noqa: F403

STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
WHITENOISE_USE_FINDERS = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
ARENA_RECOMPUTE_DEBOUNCE = 0.0
ARENA_BOOTSTRAP_ROUNDS = 50

STATIC_ROOT = VAR_DIR / "test-static"  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # The embedded pass runs on a SQLite file, as `make run` does (an in-memory database behaves
    # differently under threads: "table is locked" instead of waiting for the writer).
    # ARENA_TEST_SQLITE names another file, so that two checkouts' runs never share one.
    _test_sqlite = os.environ.get("ARENA_TEST_SQLITE") or str(VAR_DIR / "test.sqlite3")  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": _test_sqlite}  # noqa: F405
