"""An OpenAI-compatible moderation endpoint over httpx: ``POST {base_url}/moderations`` with
``{"model": ..., "input": text}``, answered ``{"results": [{"flagged": bool, "categories": {...}}]}``
(OpenAI's API, and servers that copy it).

Settings: ``base_url`` (e.g. ``https://api.openai.com/v1``), ``model`` (default
``omni-moderation-latest``), ``api_key_env`` (the NAME of the environment variable holding the key,
read on every call and never stored; none for a local server), ``timeout`` (seconds for the whole
call, default 5) and ``categories`` (refuse only for these; default: whatever the service flags).
A timeout, a connection error, an HTTP error or an unreadable answer raises ModeratorError, and the
campaign's ``moderation_fail_open`` decides.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import httpx

from arena.moderators.base import Moderator, ModeratorConfigError, ModeratorError, Verdict
from backends.errors import redact

DEFAULT_MODEL = "omni-moderation-latest"


class OpenAIModerator(Moderator):
    kind = "openai"
    allowed_settings = frozenset({"base_url", "model", "api_key_env", "timeout", "categories"})

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(settings)
        base_url = self.settings.get("base_url")
        if not isinstance(base_url, str) or not re.match(r"https?://[^\s/]+", base_url):
            raise ModeratorConfigError("base_url", "must be an http(s) URL, e.g. https://api.openai.com/v1")
        self.url = base_url.rstrip("/") + "/moderations"
        self.model = self.settings.get("model", DEFAULT_MODEL)
        if not isinstance(self.model, str) or not self.model:
            raise ModeratorConfigError("model", "must be a model name")
        self.api_key_env = self.settings.get("api_key_env")
        if self.api_key_env is not None and not (
            isinstance(self.api_key_env, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.api_key_env)
        ):
            raise ModeratorConfigError("api_key_env", "must be the NAME of an environment variable")
        timeout = self.settings.get("timeout", 5.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 60:
            raise ModeratorConfigError("timeout", "must be a number of seconds between 0 and 60")
        self.timeout = float(timeout)
        categories = self.settings.get("categories")
        if categories is not None and not (
            isinstance(categories, list) and all(isinstance(c, str) for c in categories)
        ):
            raise ModeratorConfigError("categories", "must be a list of category names")
        self.categories = frozenset(categories) if categories is not None else None
        self._client = httpx.Client(timeout=self.timeout)

    def check(self, text: str) -> Verdict:
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        headers = {"authorization": f"Bearer {key}"} if key else {}
        try:
            reply = self._client.post(self.url, json={"model": self.model, "input": text}, headers=headers)
        except httpx.HTTPError as error:
            raise ModeratorError(f"moderation service unreachable: {type(error).__name__}") from None
        if reply.status_code != 200:
            raise ModeratorError(redact(f"moderation service answered HTTP {reply.status_code}", [key]))
        try:
            result = reply.json()["results"][0]
            flagged = result["flagged"]
            categories = result.get("categories") or {}
            if not isinstance(flagged, bool) or not isinstance(categories, dict):
                raise TypeError
        except (ValueError, KeyError, IndexError, TypeError):
            raise ModeratorError("moderation service sent an answer that could not be read") from None
        hits = sorted(name for name, on in categories.items() if on is True)
        if self.categories is not None:
            hits = [name for name in hits if name in self.categories]
            flagged = bool(hits)
        if not flagged:
            return Verdict.allow()
        named = ", ".join(hits) or "unspecified"
        return Verdict.refuse(f"moderation service flagged: {named}", f"the content filter flagged it ({named})")
