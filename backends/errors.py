"""The one exception type raised by every backend.

A caller (the Celery generation task) needs three facts about a failure: what kind it is (to show the
voter and to count in monitoring), whether trying again can help (``retryable``), and, for rate limits,
how long the provider asked us to wait (``retry_after``). Backends retry internally before raising, so a
``retryable`` error that reaches the caller means "retries were exhausted or not allowed here (e.g. text
was already streamed); a later, fresh attempt may succeed".

Messages never contain API keys: backends read keys from the environment at call time, never store
them, and pass any text that came back from a provider through :func:`redact` before raising.
"""

from __future__ import annotations

from typing import Literal, get_args

ErrorKind = Literal[
    "authentication",
    "rate_limit",
    "timeout",
    "bad_request",
    "server_error",
    "content_filtered",
    "connection",
    "invalid_response",
]
ERROR_KINDS: frozenset[str] = frozenset(get_args(ErrorKind))

# Kinds where a later attempt of the same request can succeed.
_RETRYABLE_BY_DEFAULT = frozenset({"rate_limit", "timeout", "server_error", "connection"})


class BackendError(Exception):
    """A generation failed.

    ``kind`` is one of :data:`ERROR_KINDS`; ``retryable`` defaults from the kind; ``retry_after`` is the
    provider's requested wait in seconds, when it sent one; ``status_code`` the HTTP status, if any.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        retryable: bool | None = None,
        retry_after: float | None = None,
        status_code: int | None = None,
    ) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown BackendError kind {kind!r}; expected one of {sorted(ERROR_KINDS)}")
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.retryable = kind in _RETRYABLE_BY_DEFAULT if retryable is None else retryable
        self.retry_after = retry_after
        self.status_code = status_code

    @property
    def permanent(self) -> bool:
        """True when retrying the same request cannot help (the opposite of ``retryable``)."""
        return not self.retryable

    def __str__(self) -> str:
        return f"[{self.kind}] {self.message}"

    def __repr__(self) -> str:
        extra = f", retry_after={self.retry_after!r}" if self.retry_after is not None else ""
        status = f", status_code={self.status_code}" if self.status_code is not None else ""
        return (
            f"{type(self).__name__}(kind={self.kind!r}, message={self.message!r}, "
            f"retryable={self.retryable!r}{extra}{status})"
        )

    def to_dict(self) -> dict[str, object]:
        """Plain data for storing on a response row or sending to a browser."""
        return {
            "kind": self.kind,
            "message": self.message,
            "retryable": self.retryable,
            "retry_after": self.retry_after,
            "status_code": self.status_code,
        }


class InvalidRequest(BackendError, ValueError):
    """Bad settings, decoding parameters or messages, found before anything is sent.

    Always kind ``bad_request`` and never retryable. ``field`` names the offending setting or parameter
    (e.g. ``"temperature"``, ``"settings.base_url"``, ``"messages[2].role"``). It is also a
    ``ValueError`` so form validation code can catch it without knowing about backends.
    """

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__("bad_request", f"{field}: {message}" if field else message, retryable=False)
        self.field = field


def redact(text: str, secrets: list[str | None] | tuple[str | None, ...]) -> str:
    """Replace every occurrence of each non-empty secret in ``text`` with ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
