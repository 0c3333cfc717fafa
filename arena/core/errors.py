"""Errors the domain raises for the interfaces to show as clear messages."""

from __future__ import annotations


class ArenaError(Exception):
    """A rule was broken; ``message`` is safe to show to the user, ``status`` is the HTTP status."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def as_json(self) -> dict[str, str]:
        """The error as every JSON answer of the site and the API shows it."""
        return {"error": self.code, "message": self.message}


class NotAllowed(ArenaError):
    status = 403
    code = "forbidden"


class NotFound(ArenaError):
    status = 404
    code = "not_found"


class Conflict(ArenaError):
    status = 409
    code = "conflict"


class LimitReached(ArenaError):
    status = 429
    code = "limit_reached"


class NothingToVoteOn(ArenaError):
    status = 404
    code = "nothing_left"


class TooLarge(ArenaError):
    status = 413
    code = "too_large"
