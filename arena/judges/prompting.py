"""Judge prompts: the default template, its validation, rendering, and reading the verdict back.

A template is plain text with placeholders in braces; the rendered text is the judge's one user
message. Placeholders:

- ``{conversation}`` (required): the prompt's messages, one "Role: text" block each;
- ``{answer_a}``, ``{answer_b}`` (required): the two answers, in the order of this call;
- ``{verdict_options}``: the allowed endings ([[A]], [[B]], [[C]] and, when the campaign allows it, [[D]]);
- ``{rubric}``: the per-dimension scoring instructions (empty when the campaign has no dimensions).

Rendering is one regex pass, so an answer that contains ``{answer_b}`` is text, not a placeholder.

The verdict is the last ``[[X]]`` marker of the reply, and only when nothing but whitespace or
punctuation follows it ("end with exactly"): a reply without one, with a letter the campaign does not
allow, or with text after the marker is a failure (kept with its raw text), never a guess.
Dimension scores are lines ``key: A=4, B=2``; a dimension missing or off the scale is left unscored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PLACEHOLDERS = ("conversation", "answer_a", "answer_b", "verdict_options", "rubric")
REQUIRED = ("conversation", "answer_a", "answer_b")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_ANY_BRACED = re.compile(r"\{([a-z_]+)\}")
MAX_TEMPLATE_CHARS = 20_000

# The MT-Bench pairwise idea (answers side by side, brief reasoning, a bracketed verdict), our wording.
DEFAULT_TEMPLATE = """You are a careful, impartial reviewer. Below is a conversation between a user and an \
assistant, followed by two candidate answers to the user's last message. Decide which answer serves the \
user better: consider whether it is correct, helpful, relevant, complete and clear, at a suitable level \
of detail.

Do not let the order of the answers, their length or the names they use sway you; judge only what they \
say. Explain your reasoning in a few sentences first.
{rubric}
<conversation>
{conversation}
</conversation>

<answer_a>
{answer_a}
</answer_a>

<answer_b>
{answer_b}
</answer_b>

Finish your reply with exactly one of these verdicts, and nothing after it:
{verdict_options}"""

VERDICT_LINES = {
    "A": "[[A]] if answer A is better",
    "B": "[[B]] if answer B is better",
    "C": "[[C]] if they are about equally good (a tie)",
    "D": "[[D]] if both are bad",
}
_MARKER = re.compile(r"\[\[([A-Z])\]\]")
_TRAILING_OK = re.compile(r"[\s.!*`_\"')\]]*")


class TemplateError(ValueError):
    """A template that cannot be used; the message says why."""


def validate_template(template: str) -> None:
    """Refuse a template without the required placeholders, with unknown ones, or too long."""
    if not isinstance(template, str) or not template.strip():
        raise TemplateError("The template is empty.")
    if len(template) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"The template is longer than {MAX_TEMPLATE_CHARS} characters.")
    present = set(_ANY_BRACED.findall(template))
    missing = [name for name in REQUIRED if name not in present]
    if missing:
        raise TemplateError(
            "The template must contain "
            + ", ".join("{" + name + "}" for name in missing)
            + ": the judge has to see the conversation and both answers."
        )
    unknown = sorted(present - set(PLACEHOLDERS))
    if unknown:
        raise TemplateError(
            "Unknown placeholder(s) "
            + ", ".join("{" + name + "}" for name in unknown)
            + "; known: "
            + ", ".join("{" + name + "}" for name in PLACEHOLDERS)
            + "."
        )


@dataclass(frozen=True)
class DimensionSpec:
    key: str
    label: str
    low: int
    high: int


def allowed_letters(allow_tie: bool, allow_both_bad: bool) -> tuple[str, ...]:
    """The verdict letters a judge may answer. A tie is always allowed: swapped disagreements are ties."""
    return ("A", "B", "C", "D") if allow_both_bad else ("A", "B", "C")


def conversation_text(messages: Iterable[Mapping[str, Any]]) -> str:
    parts = []
    for message in messages:
        role = str(message.get("role", "user")).capitalize()
        parts.append(f"{role}: {message.get('content', '')}")
    return "\n\n".join(parts)


def rubric_text(dimensions: Iterable[DimensionSpec]) -> str:
    dims = list(dimensions)
    if not dims:
        return ""
    lines = [
        "",
        "Also score each answer on these dimensions, one line per dimension, exactly as `key: A=<score>, B=<score>`:",
    ]
    for d in dims:
        lines.append(f"- {d.key} ({d.label}): a whole number from {d.low} to {d.high}")
    return "\n".join(lines) + "\n"


def render(
    template: str,
    messages: list[Mapping[str, Any]],
    answer_a: str,
    answer_b: str,
    *,
    letters: tuple[str, ...],
    dimensions: Iterable[DimensionSpec] = (),
) -> list[dict[str, str]]:
    """The judge's messages for one order of the two answers."""
    values = {
        "conversation": conversation_text(messages),
        "answer_a": answer_a,
        "answer_b": answer_b,
        "verdict_options": "\n".join(VERDICT_LINES[letter] for letter in letters),
        "rubric": rubric_text(dimensions),
    }
    return [{"role": "user", "content": _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)}]


def parse_verdict(text: str, letters: tuple[str, ...]) -> str | None:
    """The letter the reply ends with, or None when it does not end with an allowed marker."""
    markers = list(_MARKER.finditer(text or ""))
    if not markers:
        return None
    last = markers[-1]
    if _TRAILING_OK.fullmatch(text[last.end() :]) is None:
        return None
    letter = last.group(1)
    return letter if letter in letters else None


def parse_scores(text: str, dimensions: Iterable[DimensionSpec]) -> dict[str, dict[str, int]]:
    """``{key: {"A": n, "B": m}}`` for each dimension scored on its scale; others are left out."""
    out: dict[str, dict[str, int]] = {}
    for d in dimensions:
        pattern = re.compile(
            rf"^[\s\-*]*`?{re.escape(d.key)}`?\s*:\s*A\s*=\s*(-?\d+)\s*[,;]?\s*B\s*=\s*(-?\d+)",
            re.IGNORECASE | re.MULTILINE,
        )
        found = pattern.findall(text or "")
        if not found:
            continue
        a, b = (int(v) for v in found[-1])
        if d.low <= a <= d.high and d.low <= b <= d.high:
            out[d.key] = {"A": a, "B": b}
    return out
