"""Backends by kind. Adding a provider is one module with a :class:`~backends.base.Backend` subclass
plus one line in ``BACKENDS``; its module is imported on first use, so a worker without torch can still
serve the API kinds.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from backends.base import Backend
from backends.errors import InvalidRequest

BACKENDS: dict[str, str] = {
    "openai": "backends.openai_compat:OpenAICompatBackend",
    "anthropic": "backends.anthropic:AnthropicBackend",
    "transformers": "backends.transformers_local:TransformersBackend",
    "static": "backends.static:StaticBackend",
}


def available_kinds() -> list[str]:
    """The registered kinds, sorted."""
    return sorted(BACKENDS)


def backend_class(kind: str) -> type[Backend]:
    """The class for ``kind`` (imports its module)."""
    target = BACKENDS.get(kind)
    if target is None:
        raise InvalidRequest("kind", f"unknown backend kind {kind!r}; known: {', '.join(available_kinds())}")
    module_name, _, class_name = target.partition(":")
    cls: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return cls


def get_backend(kind: str, settings: Mapping[str, Any] | None = None) -> Backend:
    """A backend of ``kind`` configured by ``settings`` (validated now; no network, no model load)."""
    return backend_class(kind)(settings)
