"""Answers that give their model away ("As GPT-4, I...") make a battle non-anonymous.

Such battles are flagged when they are created; their votes are kept (every raw vote stays
exportable) but left out of the ratings, as the public Chatbot Arena drops them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

# Names that reveal a model family even when the campaign's own model names are neutral.
KNOWN_MODEL_NAMES = (
    "ChatGPT", "GPT-3", "GPT-3.5", "GPT-4", "GPT-4o", "GPT-5", "OpenAI", "Claude", "Anthropic", "Gemini",
    "Bard", "Google DeepMind", "LLaMA", "Llama 2", "Llama 3", "Meta AI", "Mistral", "Mixtral", "Qwen",
    "DeepSeek", "Grok", "xAI", "Vicuna", "Falcon", "Command R", "Cohere", "Phi-3", "Gemma",
)  # fmt: skip


@lru_cache(maxsize=256)
def _pattern(campaign_model_names: frozenset[str]) -> re.Pattern[str]:
    names = sorted({*KNOWN_MODEL_NAMES, *campaign_model_names}, key=lambda name: (-len(name), name))
    alternatives = "|".join(re.escape(name) for name in names if name.strip())
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.IGNORECASE)


# Every new battle asks this of its two answers, and a campaign has a few thousand answers: the
# verdict on each is kept (the search was most of a new battle's Python time; a lookup costs a
# hash). Answers up to 8,000 characters, so the cache stays within a few tens of MB.
CACHED_LENGTH = 8000


@lru_cache(maxsize=4096)
def _cached_verdict(pattern: re.Pattern[str], text: str) -> bool:
    return pattern.search(text) is not None


def _names_a_model(pattern: re.Pattern[str], text: str) -> bool:
    return _cached_verdict(pattern, text) if len(text) <= CACHED_LENGTH else pattern.search(text) is not None


def reveals_identity(texts: Iterable[str], campaign_model_names: Iterable[str]) -> bool:
    """True when any text names one of the campaign's models or a well-known model family."""
    pattern = _pattern(frozenset(campaign_model_names))
    return any(_names_a_model(pattern, text or "") for text in texts)
