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
def _pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(name) for name in sorted(set(names), key=len, reverse=True) if name.strip())
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])", re.IGNORECASE)


def reveals_identity(texts: Iterable[str], campaign_model_names: Iterable[str]) -> bool:
    """True when any text names one of the campaign's models or a well-known model family."""
    pattern = _pattern(tuple(sorted({*KNOWN_MODEL_NAMES, *campaign_model_names})))
    return any(pattern.search(text or "") for text in texts)
