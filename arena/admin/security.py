"""Brute-force protection of the staff login (/admin/login/).

After ARENA_LOGIN_MAX_FAILURES failed attempts for one username from one IP address within
ARENA_LOGIN_LOCKOUT_SECONDS, that username is refused from that address (HTTP 429, with a clear
message on the login page) until the period ends; the password is not even checked meanwhile, so
guessing stops paying. A successful login clears the count. Other addresses can still log in as
that user, so an attacker cannot lock staff out of the site from afar.

The failures are counted by the site's one rate-limit counter (arena.services.ratelimit: a fixed
window of ARENA_LOGIN_LOCKOUT_SECONDS in the cache, Redis in the distributed mode); if the cache is
down, logins work without the throttle (fail open).

Wiring: ``arena/urls.py`` routes /admin/login/ to ``login`` below, ahead of the admin's own URLs.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse

from arena.services import ratelimit

log = logging.getLogger(__name__)

LOCKED_CODE = "throttled"


def _rule(request: HttpRequest, username: str) -> ratelimit.Rule:
    """Failed logins of one username (hashed) from one address (HMAC) in the lock-out window."""
    who = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:24]
    window = settings.ARENA_LOGIN_LOCKOUT_SECONDS
    return ratelimit.Rule(
        f"login-failures:{who}:{ratelimit.ip_key(request)[:24]}", settings.ARENA_LOGIN_MAX_FAILURES, window
    )


def locked_message() -> str:
    minutes = max(1, round(settings.ARENA_LOGIN_LOCKOUT_SECONDS / 60))
    return (
        f"Too many failed login attempts for this account from your address. For your security, logins are "
        f"blocked here for up to {minutes} minutes. Please wait and try again, or ask another administrator."
    )


class ThrottledAdminLoginForm(AdminAuthenticationForm):
    """The admin login form, refusing a username+IP pair after too many failures."""

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        rule = _rule(self.request, username) if self.request is not None else None
        if rule is not None and rule.limit > 0 and ratelimit.count(rule) >= rule.limit:
            log.warning("admin login refused: too many failures for one username from one address")
            raise ValidationError(locked_message(), code=LOCKED_CODE)
        try:
            cleaned = super().clean()
        except ValidationError:
            if rule is not None:
                ratelimit.hits([rule])
            raise
        if rule is not None:
            ratelimit.forget(rule)
        return cleaned


def login(request: HttpRequest, extra_context=None) -> HttpResponse:
    """The admin's login view with the throttled form; a refused attempt answers 429."""
    response = admin.site.login(request, extra_context)
    form = (getattr(response, "context_data", None) or {}).get("form")
    if form is not None and form.is_bound and form.has_error("__all__", code=LOCKED_CODE):
        response.status_code = 429
        # The failures are counted in fixed windows: the lock ends with the current one.
        rule = _rule(request, form.data.get("username") or "")
        response.headers["Retry-After"] = str(ratelimit.seconds_left(rule))
    return response


# The admin site builds its login form from this attribute on every request.
admin.site.login_form = ThrottledAdminLoginForm
