"""Trying a model entry from the admin: one short prompt through its backend, the answer or the error.

The call runs in the web process with a short deadline (HTTP kinds: at most ``TRIAL_TIMEOUT_S``
seconds and one retry; at most ``TRIAL_MAX_TOKENS`` new tokens), so a wrong URL or a missing key shows
within seconds. A transformers entry loads its model in the web process (the embedded mode's single
process does so anyway). Whatever comes back is text for the page: the key named by ``api_key_env`` is
removed from it, as backends already do.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from arena.models import ModelEntry
from backends.errors import BackendError, redact
from backends.http_client import HttpBackend
from backends.params import DecodingParams
from backends.registry import backend_class

log = logging.getLogger(__name__)

TRIAL_PROMPT = "In one short sentence: what is two plus two?"
TRIAL_TIMEOUT_S = 20.0
TRIAL_MAX_TOKENS = 64
MAX_PROMPT_CHARS = 2000


@dataclass(frozen=True)
class Trial:
    ok: bool
    text: str  # the answer, or what went wrong
    latency_s: float | None = None
    completion_tokens: int | None = None


def trial_settings(entry: ModelEntry) -> dict[str, Any]:
    """The entry's settings with the trial's deadline and retry cap (HTTP kinds only)."""
    settings = dict(entry.backend_settings or {})
    if issubclass(backend_class(entry.backend), HttpBackend):
        total = settings.get("total_timeout")
        settings["total_timeout"] = min(total, TRIAL_TIMEOUT_S) if isinstance(total, int | float) else TRIAL_TIMEOUT_S
        retries = settings.get("max_retries")
        settings["max_retries"] = min(retries, 1) if isinstance(retries, int) and retries >= 0 else 1
    return settings


def try_model(entry: ModelEntry, prompt: str = TRIAL_PROMPT) -> Trial:
    """Send ``prompt`` to the entry's backend with its decoding parameters (capped to a short answer)."""
    prompt = (prompt or TRIAL_PROMPT)[:MAX_PROMPT_CHARS]
    try:
        params = dict(entry.params or {})
        params["max_new_tokens"] = min(int(params.get("max_new_tokens") or TRIAL_MAX_TOKENS), TRIAL_MAX_TOKENS)
        backend = backend_class(entry.backend)(trial_settings(entry))
        result = backend.generate([{"role": "user", "content": prompt}], DecodingParams.from_dict(params))
    except BackendError as error:
        return Trial(False, _redacted(f"{error.kind}: {error.message}", entry))
    except (ValueError, TypeError) as error:
        return Trial(False, _redacted(f"bad settings or parameters: {error}", entry))
    except Exception as error:  # e.g. torch missing for a transformers entry: say so on the page
        log.warning("trial of model %s failed", entry.pk, exc_info=True)
        return Trial(False, _redacted(f"{type(error).__name__}: {error}", entry))
    text = result.text if result.text.strip() else "(the model answered with empty text)"
    return Trial(True, _redacted(text, entry), result.latency_s, result.completion_tokens)


def _redacted(text: str, entry: ModelEntry) -> str:
    env_name = (entry.backend_settings or {}).get("api_key_env")
    secret = os.environ.get(env_name) if isinstance(env_name, str) and env_name else None
    return redact(text, [secret])
