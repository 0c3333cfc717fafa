"""Configuration from the environment: production needs its secrets and passes Django's deploy checks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from arena.env import env_bool, env_int
from tests.stack import ROOT

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 20 + "-production-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
    "ARENA_IP_SALT": "production-salt",
    "ALLOWED_HOSTS": "arena.example.org",
    "SECURE_HSTS_PRELOAD": "true",
}


def run_manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    dropped = {"DJANGO_SETTINGS_MODULE", "SECRET_KEY", "DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"}
    clean = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith(("SECURE_", "DJANGO_"))}
    clean.update(env, DJANGO_SETTINGS_MODULE="arena.settings", ARENA_VAR_DIR=str(ROOT / "var" / "deploy-check"))
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True)


def test_check_deploy_passes_with_a_production_environment():
    result = run_manage(PRODUCTION, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = run_manage(env, "check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_booleans_are_parsed_strictly(monkeypatch):
    monkeypatch.setenv("X_FLAG", "yes")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env_bool("X_FLAG", False)
    monkeypatch.setenv("X_FLAG", "On")
    assert env_bool("X_FLAG", False) is True


def test_integers_are_typed(monkeypatch):
    monkeypatch.setenv("X_NUM", "20")
    assert env_int("X_NUM", 5) == 20
    monkeypatch.setenv("X_NUM", "twenty")
    with pytest.raises(ImproperlyConfigured):
        env_int("X_NUM", 5)


SECRETS_PROBE = "from django.conf import settings; print(settings.SECRET_KEY); print(settings.ARENA_IP_SALT)"


def test_the_embedded_mode_makes_its_own_secrets_on_first_run_and_keeps_them(tmp_path):
    """No usable default is shipped: each installation signs its voter cookies with a key of its own."""

    def secrets_of(var_dir):
        dropped = {"SECRET_KEY", "ARENA_IP_SALT", "DJANGO_SETTINGS_MODULE"}
        env = {k: v for k, v in os.environ.items() if k not in dropped}
        env.update(DEBUG="true", DJANGO_SETTINGS_MODULE="arena.settings", ARENA_VAR_DIR=str(var_dir))
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-v", "0", "-c", SECRETS_PROBE],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.split()

    first, again, other = secrets_of(tmp_path / "a"), secrets_of(tmp_path / "a"), secrets_of(tmp_path / "b")
    assert first == again  # kept: cookies survive a restart
    assert first != other and first[0] != first[1]  # each installation and each secret its own
    assert all(len(value) >= 50 for value in first)
    for name in (".secret_key", ".arena_ip_salt"):
        assert (tmp_path / "a" / name).stat().st_mode & 0o777 == 0o600
