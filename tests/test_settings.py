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
