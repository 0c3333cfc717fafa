"""What every import format becomes: prompt rows with their answers, validated, with line numbers."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from arena.core.errors import ArenaError

ROLES = {"system", "user", "assistant"}
MAX_TEXT = 200_000  # characters of one text: a prompt, a message, an answer
MAX_PROMPT_TEXT = 1_000_000  # characters of a prompt's messages together (pages show them all)
MAX_MODEL_NAME = 100  # ModelEntry.name


class ImportFailed(ArenaError):
    """The file had problems; ``errors`` lists them as "line N: message"."""

    def __init__(self, errors: list[str]) -> None:
        shown = errors[:50]
        more = f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__("Nothing was imported:\n" + "\n".join(shown) + more)
        self.errors = errors


@dataclass(slots=True)  # a file's rows may all be held at once: no __dict__ per row
class PromptRow:
    """One prompt to write: its messages (ending with the user's turn) and each model's answer."""

    line: int
    external_id: str
    messages: list[dict[str, str]]
    category: str = ""
    language: str = ""
    responses: dict[str, str] = field(default_factory=dict)


@dataclass
class ImportSummary:
    prompts_created: int = 0
    prompts_updated: int = 0
    prompts_unchanged: int = 0
    responses_written: int = 0
    responses_unchanged: int = 0
    models_added: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = (
            f"{self.prompts_created} prompts created, {self.prompts_updated} updated, "
            f"{self.prompts_unchanged} unchanged; {self.responses_written} responses written, "
            f"{self.responses_unchanged} unchanged"
        )
        if self.models_added:
            text += f"; models added to the campaign: {', '.join(self.models_added)}"
        return text


def clean_messages(value: Any) -> list[dict[str, str]]:
    """An OpenAI-style message list ending with a user turn, or a clear ValueError.

    A string stands for one user message. Each text is at most MAX_TEXT characters, all of them
    together at most MAX_PROMPT_TEXT.
    """
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ValueError(f"the prompt is longer than {MAX_TEXT} characters")
        if not value.strip():
            raise ValueError("the prompt is empty")
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise ValueError("messages must be a non-empty list of {role, content} objects")
    messages = []
    for index, message in enumerate(value):
        if not isinstance(message, dict):
            raise ValueError(f"message {index + 1} is not an object")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ValueError(f"message {index + 1}: role must be one of system, user, assistant")
        if not isinstance(content, str):
            raise ValueError(f"message {index + 1}: content must be text")
        if len(content) > MAX_TEXT:
            raise ValueError(f"message {index + 1}: content is longer than {MAX_TEXT} characters")
        messages.append({"role": sys.intern(role), "content": content})
    if messages[-1]["role"] != "user":
        raise ValueError("the last message must be the user's")
    if sum(len(m["content"]) for m in messages) > MAX_PROMPT_TEXT:
        raise ValueError(f"the messages are longer than {MAX_PROMPT_TEXT} characters together")
    return messages


def text_field(value: Any, name: str, limit: int) -> str:
    """An optional text field, stripped; None is empty."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text")
    if len(value) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    return value.strip()


def label_field(value: Any, name: str, limit: int) -> str:
    """A category or language: text_field, interned (a file repeats a few of them on every line, and
    a file parsed whole holds every row)."""
    return sys.intern(text_field(value, name, limit))


def answer_text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"the answer of {name} must be text")
    if len(value) > MAX_TEXT:
        raise ValueError(f"the answer of {name} is longer than {MAX_TEXT} characters")
    return value


def model_name(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a model name (non-empty text)")
    if len(value.strip()) > MAX_MODEL_NAME:
        raise ValueError(f"{name} is longer than {MAX_MODEL_NAME} characters")
    return sys.intern(value.strip())  # repeated on every line


def question_id(value: Any, name: str = "question_id") -> str:
    """An id given as text or an integer (the public arena data uses hex strings)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{name} must be text or an integer")
    return text_field(str(value), name, 200)


def content_id(messages: list[dict[str, str]], prefix: str) -> str:
    """A stable id for a prompt that came without one: a hash of its messages."""
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    return f"{prefix}-{digest.hexdigest()[:16]}"


def check_storable(row: PromptRow) -> None:
    """Text the database can store: PostgreSQL refuses NUL characters, UTF-8 refuses lone surrogates.

    The row's texts are checked together, in one string (one check instead of one per text)."""
    texts = [row.external_id, row.category, row.language, *(m["content"] for m in row.messages)]
    check_storable_text("".join([*texts, *row.responses, *row.responses.values()]))


def check_storable_text(value: str) -> None:
    if "\x00" in value:
        raise ValueError("the text contains a NUL character (\\u0000), which cannot be stored")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the text contains an invalid Unicode escape (a lone surrogate)") from None
