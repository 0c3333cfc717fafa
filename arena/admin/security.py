"""Brute-force protection of the staff login (/admin/login/).

After ARENA_LOGIN_MAX_FAILURES failed attempts for one username from one IP address within
ARENA_LOGIN_LOCKOUT_SECONDS, that username is refused from that address (HTTP 429, with a clear
message on the login page) until the period ends; the password is not even checked meanwhile, so
guessing stops paying. A successful login clears the count. Other addresses can still log in as
that user, so an attacker cannot lock staff out of the site from afar.

The counters live in the cache (Redis in the distributed mode), through the same helpers as every
rate limit; if the cache is down, logins work without the throttle (fail open).

Wiring: ``arena/urls.py`` routes /admin/login/ to ``login`` below, ahead of the admin's own URLs.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from arena.services.voters import client_ip, hash_ip

log = logging.getLogger(__name__)

LOCKED_CODE = "throttled"


def _key(request: HttpRequest, username: str) -> str:
    who = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:24]
    return f"login-failures:{who}:{hash_ip(client_ip(request))[:24]}"


def _failures(key: str) -> int:
    try:
        return int(cache.get(key) or 0)
    except Exception:  # the cache is down: no throttle rather than no login
        log.warning("login throttle skipped: the cache is unavailable")
        return 0


def _record_failure(key: str) -> None:
    try:
        if not cache.add(key, 1, timeout=settings.ARENA_LOGIN_LOCKOUT_SECONDS):
            cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=settings.ARENA_LOGIN_LOCKOUT_SECONDS)
    except Exception:
        log.warning("login failure not counted: the cache is unavailable")


def _clear(key: str) -> None:
    try:
        cache.delete(key)
    except Exception:  # the cache is down; the count expires by itself
        log.warning("login failures not cleared: the cache is unavailable")


def locked_message() -> str:
    minutes = max(1, round(settings.ARENA_LOGIN_LOCKOUT_SECONDS / 60))
    return (
        f"Too many failed login attempts for this account from your address. For your security, logins are "
        f"blocked here for up to {minutes} minutes. Please wait and try again, or ask another administrator."
    )


class ThrottledAdminLoginForm(AdminAuthenticationForm):
    """The admin login form, refusing a username+IP pair after too many failures."""

    def clean(self):
        limit = settings.ARENA_LOGIN_MAX_FAILURES
        username = self.cleaned_data.get("username") or ""
        key = _key(self.request, username) if self.request is not None else None
        if key is not None and limit > 0 and _failures(key) >= limit:
            log.warning("admin login refused: too many failures for one username from one address")
            raise ValidationError(locked_message(), code=LOCKED_CODE)
        try:
            cleaned = super().clean()
        except ValidationError:
            if key is not None and limit > 0:
                _record_failure(key)
            raise
        if key is not None:
            _clear(key)
        return cleaned


def login(request: HttpRequest, extra_context=None) -> HttpResponse:
    """The admin's login view with the throttled form; a refused attempt answers 429."""
    response = admin.site.login(request, extra_context)
    form = (getattr(response, "context_data", None) or {}).get("form")
    if form is not None and form.is_bound and form.has_error("__all__", code=LOCKED_CODE):
        response.status_code = 429
        response.headers["Retry-After"] = str(settings.ARENA_LOGIN_LOCKOUT_SECONDS)
    return response


# The admin site builds its login form from this attribute on every request.
admin.site.login_form = ThrottledAdminLoginForm
