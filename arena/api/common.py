"""What the JSON API's routers share: the error body, the 202 helper, and the staff-session auth."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from ninja import Schema
from ninja.errors import HttpError
from ninja.security import APIKeyCookie

from arena.core.errors import ArenaError, NotAllowed
from arena.permissions import allowed

try:
    from ninja import Status  # recent django-ninja; returning (status, body) is deprecated there
except ImportError:  # older django-ninja within the pinned range

    def Status(status_code: int, value: Any) -> Any:
        return status_code, value


class ErrorOut(Schema):
    error: str
    message: str


class NotAuthenticated(ArenaError):
    status = 401
    code = "unauthorized"


class StaffSession(APIKeyCookie):
    """The Django session of active staff holding one of ``needs``; CSRF checked on unsafe methods.
    401 without a login, 403 (with ``not_staff`` or ``missing``) otherwise."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self, needs: tuple[str, ...], *, feature: str, missing: str, not_staff: str = "") -> None:
        super().__init__()
        self.needs, self.feature, self.missing, self.not_staff = needs, feature, missing, not_staff

    def __call__(self, request: HttpRequest) -> Any:
        user = request.user
        if not user.is_authenticated:
            raise NotAuthenticated(f"Log in with a staff account to use {self.feature}.")
        if self.not_staff and not (user.is_active and user.is_staff):
            raise NotAllowed(self.not_staff)
        if not allowed(user, self.needs):
            raise NotAllowed(self.missing)
        self._get_key(request)  # raises on a failed CSRF check
        return user

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        return request.user


def check_csrf(request: HttpRequest) -> None:
    """Session-authenticated writes need the CSRF token, as on the pages (token-less API clients have none)."""
    reason = CsrfViewMiddleware(lambda r: HttpResponse()).process_view(request, None, (), {})
    if reason is not None:
        raise HttpError(403, "CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header.")
