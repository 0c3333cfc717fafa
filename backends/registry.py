"""Backends by kind. Adding a provider is one module with a :class:`~backends.base.Backend` subclass
plus one line in ``BACKENDS``; its module is imported on first use (:class:`backends.plugins.Registry`),
so a worker without torch can still serve the API kinds.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from dataclasses import dataclass
from typing import Any

from backends.base import Backend
from backends.errors import InvalidRequest
from backends.http_client import HttpBackend, HttpSettings
from backends.plugins import Registry

BACKENDS: dict[str, str] = {
    "openai": "backends.openai_compat:OpenAICompatBackend",
    "anthropic": "backends.anthropic:AnthropicBackend",
    "transformers": "backends.transformers_local:TransformersBackend",
    "static": "backends.static:StaticBackend",
}
_registry = Registry(Backend, BACKENDS, noun="backend kind", unknown=lambda message: InvalidRequest("kind", message))
available_kinds = _registry.kinds  # the registered kinds, sorted
backend_class = _registry.cls  # the class for a kind (imports its module); unknown kind: InvalidRequest
get_backend = _registry.create  # a backend of a kind built from its settings (validated now; no network)


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
