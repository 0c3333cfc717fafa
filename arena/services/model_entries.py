"""Validation of model entries: a known backend kind, sane parameters, and no secret in settings."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError

# Settings keys that look like they hold a credential. The key itself belongs in the environment;
# the entry names the variable (e.g. "api_key_env": "OPENAI_API_KEY").
_SECRET_KEY_PATTERN = re.compile(r"(api[_-]?key|secret|token|password|authorization)", re.I)


def validate_model_entry(backend: str, backend_settings: Any, params: Any) -> None:
    if not isinstance(backend_settings, dict):
        raise ValidationError({"backend_settings": "Settings must be a JSON object."})
    if not isinstance(params, dict):
        raise ValidationError({"params": "Decoding parameters must be a JSON object."})
    for key in backend_settings:
        if _SECRET_KEY_PATTERN.search(key) and not key.endswith("_env"):
            raise ValidationError(
                {
                    "backend_settings": f"{key!r} looks like a secret. Put the key in an environment "
                    f'variable and name it instead, e.g. "api_key_env": "OPENAI_API_KEY".'
                }
            )
    from backends.errors import BackendError
    from backends.params import DecodingParams
    from backends.registry import get_backend

    try:
        get_backend(backend, backend_settings).check_params(DecodingParams.from_dict(params))
    except (BackendError, ValueError, TypeError) as error:
        raise ValidationError(str(error)) from None
