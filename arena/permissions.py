"""What each staff page needs beyond ``is_staff``: the rule in one place.

Being staff only opens the door to /staff/, /admin/ and the exports API; every page behind it also
checks a Django permission, so a staff account without permissions sees and changes nothing (403).
Superusers hold every permission. The admin's per-model pages follow Django's own view / add /
change / delete permissions; the pages below are the ones Django does not guard by itself.

- ``VIEW_CAMPAIGN`` (view or change campaign): the campaign dashboard, its quality JSON, the
  admin's generation progress page;
- ``CHANGE_CAMPAIGN``: pause / resume / close (dashboard and admin actions), generating responses,
  importing prompts;
- ``CHANGE_VOTER``: excluding a voter from ratings and exports (or counting them again);
- ``EXPORT_DATA`` (``exports.export_data``, "Can create and download exports"): starting an export,
  listing them, reading one, downloading a file, in the admin, under /staff/ and in the API.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied

VIEW_CAMPAIGN = ("arena.view_campaign", "arena.change_campaign")  # as in the admin: who may change may look
CHANGE_CAMPAIGN = ("arena.change_campaign",)
CHANGE_VOTER = ("arena.change_voter",)
EXPORT_DATA = ("exports.export_data",)


def allowed(user, needs: tuple[str, ...]) -> bool:
    """Whether this user is active staff holding one of these permissions."""
    return bool(user.is_active and user.is_staff and any(user.has_perm(perm) for perm in needs))


def check(user, needs: tuple[str, ...]) -> None:
    """Raise PermissionDenied (403) unless :func:`allowed`."""
    if not allowed(user, needs):
        raise PermissionDenied


def staff_permission_required(needs: tuple[str, ...]) -> Callable:
    """For staff views: anonymous and non-staff users go to the admin login page (as with
    ``staff_member_required``); staff without one of the permissions get 403."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def guarded(request, *args, **kwargs):
            check(request.user, needs)
            return view(request, *args, **kwargs)

        return staff_member_required(guarded)

    return decorator
