"""The built-in rules moderator (the default): word lists and regular expressions that staff edit in
the campaign's ``moderator_settings``; microseconds per prompt (bench/moderation.py).

Settings: ``words`` (refused as whole words, any case, after the same normalisation as the identity
check: entities, markup and invisible characters removed, NFKC, case folded, runs of white space made
one space), ``patterns`` (regular expressions, searched case-insensitively in the normalised text)
and ``defaults`` (true by default: also refuse prompts that ask the models who they are, since their
answers would end the battle's anonymity; ``false`` turns the built-in patterns off).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from arena.core.identity import normalise, word_trie
from arena.moderators.base import Moderator, ModeratorConfigError, Verdict

MAX_PATTERN_CHARS = 500
_SPACES = re.compile(r"\s+")
MAX_ENTRIES = 1000

# Prompts that ask the models to name themselves ("what model are you?", "who trained you?").
IDENTITY_PROBES = (
    r"\b(?:what|which)\s+(?:ai\s+|language\s+|llm\s+|large\s+language\s+)?(?:model|llm|ai|chatbot|assistant|"
    r"version)\s+(?:are\s+you|is\s+this|am\s+i\s+(?:talking|speaking|chatting)\s+(?:to|with))\b",
    r"\bwho\s+(?:made|created|trained|built|developed|programmed)\s+you\b",
    r"\bwhat(?:'s|\s+is)\s+your\s+(?:model(?:\s+name)?|name|version|architecture)\b",
    r"\b(?:tell|say)\s+me\s+(?:your|which)\s+(?:model|name)\b",
    r"\bare\s+you\s+(?:chat)?gpt|\bare\s+you\s+(?:claude|gemini|llama|mistral|a\s+(?:gpt|llama|claude))\b",
)
IDENTITY_PUBLIC = "it asks the models who they are, and their answers would end the battle's anonymity"


def _strings(settings: Mapping[str, Any], key: str) -> list[str]:
    values = settings.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
        raise ModeratorConfigError(key, "must be a list of non-empty strings")
    if len(values) > MAX_ENTRIES:
        raise ModeratorConfigError(key, f"at most {MAX_ENTRIES} entries")
    return values


class RulesModerator(Moderator):
    kind = "rules"
    allowed_settings = frozenset({"words", "patterns", "defaults"})

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(settings)
        defaults = self.settings.get("defaults", True)
        if not isinstance(defaults, bool):
            raise ModeratorConfigError("defaults", "must be true or false")
        words = sorted({_SPACES.sub(" ", normalise(w)).strip() for w in _strings(self.settings, "words")} - {""})
        patterns = []
        for source in _strings(self.settings, "patterns"):
            if len(source) > MAX_PATTERN_CHARS:
                raise ModeratorConfigError("patterns", f"a pattern has at most {MAX_PATTERN_CHARS} characters")
            try:
                patterns.append((source, re.compile(source, re.IGNORECASE)))
            except re.error as error:
                raise ModeratorConfigError("patterns", f"{source!r} is not a regular expression ({error})") from None
        # One expression each for the words (a trie: one branch per position, not one per word) and for
        # the patterns (one pass over the text instead of one per pattern; which one matched is looked up
        # only for a refused prompt): 2 ms for a 4,000-character prompt against 200 words and 20 patterns.
        self._words = re.compile(rf"(?<!\w){word_trie(words)}(?!\w)") if words else None
        self._patterns = patterns
        try:
            self._any_pattern = re.compile("|".join(f"(?:{s})" for s, _ in patterns), re.I) if patterns else None
        except re.error as error:  # e.g. a global flag such as (?i) inside one pattern
            raise ModeratorConfigError("patterns", f"the patterns cannot be combined ({error})") from None
        self._probes = re.compile("|".join(IDENTITY_PROBES)) if defaults else None

    def check(self, text: str) -> Verdict:
        plain = _SPACES.sub(" ", normalise(text))
        if self._words is not None and (found := self._words.search(plain)):
            return Verdict.refuse(f"word list: {found.group()!r}", "it contains words this campaign does not accept")
        if self._any_pattern is not None and self._any_pattern.search(plain):
            source = next((source for source, pattern in self._patterns if pattern.search(plain)), "")
            return Verdict.refuse(f"pattern: {source!r}")
        if self._probes is not None and (found := self._probes.search(plain)):
            return Verdict.refuse(f"asks the models who they are: {found.group()!r}", IDENTITY_PUBLIC)
        return Verdict.allow()


class NoModerator(Moderator):
    """Every prompt passes (a campaign whose voters are trusted)."""

    kind = "none"

    def check(self, text: str) -> Verdict:
        return Verdict.allow()
