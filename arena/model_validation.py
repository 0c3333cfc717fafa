"""Validation of model entries: a name that shows what it is, a known backend kind, sane parameters,
and no secret in settings.

Pure rules below the models: this module imports no part of arena, so arena.models can call them
(``ModelEntry.clean``, with the other entries' names) and the services too (the imports check the
names they would create).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError

from backends.errors import BackendError
from backends.params import DecodingParams
from backends.registry import get_backend

# Settings keys that look like they hold a credential. The key itself belongs in the environment;
# the entry names the variable (e.g. "api_key_env": "OPENAI_API_KEY").
_SECRET_KEY_PATTERN = re.compile(r"(api[_-]?key|secret|token|password|authorization)", re.I)


def validate_model_entry(backend: str, backend_settings: Any, params: Any) -> None:
    if not isinstance(backend_settings, dict):
        raise ValidationError({"backend_settings": "Settings must be a JSON object."})
    if not isinstance(params, dict):
        raise ValidationError({"params": "Decoding parameters must be a JSON object."})
    for key in _keys(backend_settings):
        if _SECRET_KEY_PATTERN.search(key) and not key.endswith("_env"):
            raise ValidationError(
                {
                    "backend_settings": f"{key!r} looks like a secret. Put the key in an environment "
                    f'variable and name it instead, e.g. "api_key_env": "OPENAI_API_KEY".'
                }
            )
    try:
        get_backend(backend, backend_settings).check_params(DecodingParams.from_dict(params))
    except (BackendError, ValueError, TypeError) as error:
        raise ValidationError(str(error)) from None


def _keys(value: Any) -> Iterable[str]:
    """Every key of a JSON object and of the objects inside it (a header named Authorization is a secret too)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield str(key)
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


# Characters that show as nothing (or as a plain space) yet make a name different: "GPT-4\u200b" would
# pass for "GPT-4" on the leaderboard. Controls, format characters (zero-width, joiners, bidi marks,
# soft hyphen, tags), private use, unassigned, separators and spaces other than U+0020, fillers,
# variation selectors and the combining grapheme joiner.
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp", "Zs"}
_INVISIBLE_OTHERS = {"\u034f", "\u115f", "\u1160", "\u17b4", "\u17b5", "\u2800", "\u3164", "\uffa0"}


def is_invisible(char: str) -> bool:
    if char == " ":
        return False
    return (
        unicodedata.category(char) in _INVISIBLE_CATEGORIES
        or char in _INVISIBLE_OTHERS
        or "\ufe00" <= char <= "\ufe0f"
        or "\U000e0100" <= char <= "\U000e01ef"
    )


def name_key(name: str) -> str:
    """A name as it shows: invisible characters dropped, spaces collapsed, composed (NFC)."""
    visible = "".join(" " if char.isspace() else char for char in name if char.isspace() or not is_invisible(char))
    return unicodedata.normalize("NFC", " ".join(visible.split()))


def model_name_problem(name: str, others: Iterable[str]) -> str | None:
    """Why ``name`` may not name a new model beside ``others`` (the existing names), or None."""
    invisible = dict.fromkeys(char for char in name if is_invisible(char))
    if invisible:
        shown = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, '')}".rstrip() for c in invisible)
        return f"A model name may not contain invisible characters ({shown})."
    key = name_key(name)
    for other in others:
        if other != name and name_key(other) == key:
            return f"This name differs from the model {other!r} only by invisible characters."
    return None


def validate_model_name(name: Any, others: Iterable[str]) -> None:
    """The rule of model_name_problem against ``others``, every other entry's name (read only when
    ``name`` is a non-empty string: the field itself checks type and length)."""
    if not isinstance(name, str) or not name:
        return
    problem = model_name_problem(name, others)
    if problem:
        raise ValidationError({"name": problem})
