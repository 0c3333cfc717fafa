"""Backends by kind. Adding a provider is one module with a :class:`~backends.base.Backend` subclass
plus one line in ``BACKENDS``; its module is imported on first use, so a worker without torch can still
serve the API kinds.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backends.base import Backend
from backends.errors import InvalidRequest
from backends.http_client import HttpBackend, HttpSettings

BACKENDS: dict[str, str] = {
    "openai": "backends.openai_compat:OpenAICompatBackend",
    "anthropic": "backends.anthropic:AnthropicBackend",
    "transformers": "backends.transformers_local:TransformersBackend",
    "static": "backends.static:StaticBackend",
}


@dataclass(frozen=True)
class KindInfo:
    """What an admin form shows about a kind: a label and example settings (secrets named, never given)."""

    label: str
    example: dict[str, Any]


KIND_INFO: dict[str, KindInfo] = {
    "openai": KindInfo(
        "OpenAI-compatible HTTP API (OpenAI, vLLM, SGLang, TGI, llama.cpp, ...)",
        {"base_url": "http://gpu-box:8000/v1", "model": "qwen2.5-7b-instruct", "api_key_env": "OPENAI_API_KEY"},
    ),
    "anthropic": KindInfo("Anthropic Messages API", {"model": "claude-sonnet-4-5", "api_key_env": "ANTHROPIC_API_KEY"}),
    "transformers": KindInfo(
        "Local Hugging Face transformers model (GPU or CPU)",
        {"model_path": "Qwen/Qwen2.5-0.5B-Instruct", "dtype": "bf16", "device": "cuda"},
    ),
    "static": KindInfo("Static text (demos, pre-written answers, failure drills)", {"text": "You said: {prompt}"}),
}


def kind_choices() -> list[tuple[str, str]]:
    """(kind, label) for every registered kind, for a form's choices."""
    return [(kind, KIND_INFO[kind].label if kind in KIND_INFO else kind) for kind in available_kinds()]


def settings_help(kind: str) -> str:
    """The settings a kind reads, as its module documents them (the "Settings" paragraph and its list),
    followed for HTTP kinds by the connection settings they share."""
    cls = backend_class(kind)
    doc = inspect.getdoc(sys.modules[cls.__module__]) or ""
    lines = doc.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Settings")), None)
    if start is None:
        return ""
    section = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.strip() and section[-1].strip():
            if len(section) > 1:
                break
            continue
        section.append(line)
    text = "\n".join(section).strip()
    if issubclass(cls, HttpBackend):
        shared = ", ".join(f"``{f.name}``" for f in dataclasses.fields(HttpSettings))
        text += f"\n\nHTTP settings (every API kind): {shared}."
    return text


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
