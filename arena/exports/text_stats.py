"""What FastChat's arena analysis reads about a battle's text: token counts and Markdown style counts,
and languages by their English names.

FastChat's ``elo_analysis.py`` (``--style-control``) reads, per battle, ``conv_metadata`` with each
side's assistant token total and its counts of Markdown headers (h1-h6), list items (ordered,
unordered) and bold spans (``**``, ``__``); ``--category long`` sums ``num_tokens`` over each side's
messages (768 or more is "long"); ``--category english`` / ``--langs`` compare ``language`` with a name
such as "English". The counting rules here are ours:

- Tokens are estimated without a tokenizer download (offline deployments have none): every run of
  letters or digits counts one token per started 6 characters, every other visible character
  (punctuation, symbols) one, and every CJK, kana or hangul character one. It tracks BPE tokenizers'
  counts closely enough for length control and a length threshold; it is not any model's exact count.
- Style elements are counted outside fenced code blocks (a ``#`` comment in code is no header):
  a header is a line starting with 1-6 ``#`` and a space, a list item a line starting (after spaces)
  with ``-``, ``*`` or ``+`` or with a number and a dot, then a space; bold is ``**text**`` or
  ``__text__`` on one line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]", re.UNICODE)
_WORD_PIECE = 6
_FENCE = re.compile(r"^[ \t]*(```|~~~).*?(^[ \t]*\1[ \t]*$|\Z)", re.MULTILINE | re.DOTALL)
_HEADER = re.compile(r"^(#{1,6})[ \t]", re.MULTILINE)
_ORDERED = re.compile(r"^[ \t]*\d+\.[ \t]", re.MULTILINE)
_UNORDERED = re.compile(r"^[ \t]*[-*+][ \t]", re.MULTILINE)
_BOLD_STARS = re.compile(r"\*\*[^*\n]+\*\*")
_BOLD_UNDERSCORES = re.compile(r"__[^_\n]+__")


def count_tokens(text: str) -> int:
    """An estimate of the text's length in tokens (see the module docstring)."""
    pieces = _TOKEN.findall(text)
    return len(pieces) + sum((len(piece) - 1) // _WORD_PIECE for piece in pieces if len(piece) > _WORD_PIECE)


@dataclass(frozen=True)
class StyleCounts:
    """One answer's length and Markdown elements, in FastChat's ``conv_metadata`` shapes."""

    tokens: int
    headers: dict[str, int]
    lists: dict[str, int]
    bold: dict[str, int]

    @classmethod
    def of(cls, text: str) -> StyleCounts:
        prose = _FENCE.sub("", text)
        levels = [len(hashes) for hashes in _HEADER.findall(prose)]
        return cls(
            tokens=count_tokens(text),
            headers={f"h{level}": levels.count(level) for level in range(1, 7)},
            lists={"ordered": len(_ORDERED.findall(prose)), "unordered": len(_UNORDERED.findall(prose))},
            bold={"**": len(_BOLD_STARS.findall(prose)), "__": len(_BOLD_UNDERSCORES.findall(prose))},
        )

    def __add__(self, other: StyleCounts) -> StyleCounts:
        def add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
            return {key: a[key] + b[key] for key in a}

        return StyleCounts(
            self.tokens + other.tokens,
            add(self.headers, other.headers),
            add(self.lists, other.lists),
            add(self.bold, other.bold),
        )


NO_STYLE = StyleCounts(0, {f"h{level}": 0 for level in range(1, 7)}, {"ordered": 0, "unordered": 0}, {"**": 0, "__": 0})


def side_metadata(side: StyleCounts, suffix: str) -> dict[str, object]:
    """One side's half of FastChat's ``conv_metadata`` (``suffix`` "a" or "b")."""
    return {
        f"sum_assistant_{suffix}_tokens": side.tokens,
        f"header_count_{suffix}": side.headers,
        f"list_count_{suffix}": side.lists,
        f"bold_count_{suffix}": side.bold,
    }


def conv_metadata(side_a: StyleCounts, side_b: StyleCounts) -> dict[str, object]:
    """FastChat's per-battle style record: each side's assistant tokens and Markdown counts."""
    return {**side_metadata(side_a, "a"), **side_metadata(side_b, "b")}


# ISO 639-1 codes by the English names FastChat's language detection stores.
LANGUAGE_NAMES: dict[str, str] = {
    "af": "Afrikaans",
    "ar": "Arabic",
    "bg": "Bulgarian",
    "bn": "Bengali",
    "ca": "Catalan",
    "cs": "Czech",
    "cy": "Welsh",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "et": "Estonian",
    "eu": "Basque",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "ga": "Irish",
    "gl": "Galician",
    "gu": "Gujarati",
    "he": "Hebrew",
    "hi": "Hindi",
    "hr": "Croatian",
    "hu": "Hungarian",
    "hy": "Armenian",
    "id": "Indonesian",
    "is": "Icelandic",
    "it": "Italian",
    "ja": "Japanese",
    "ka": "Georgian",
    "kk": "Kazakh",
    "km": "Khmer",
    "kn": "Kannada",
    "ko": "Korean",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "mk": "Macedonian",
    "ml": "Malayalam",
    "mn": "Mongolian",
    "mr": "Marathi",
    "ms": "Malay",
    "my": "Burmese",
    "nb": "Norwegian",
    "ne": "Nepali",
    "nl": "Dutch",
    "no": "Norwegian",
    "pa": "Punjabi",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sk": "Slovak",
    "sl": "Slovenian",
    "sq": "Albanian",
    "sr": "Serbian",
    "sv": "Swedish",
    "sw": "Swahili",
    "ta": "Tamil",
    "te": "Telugu",
    "th": "Thai",
    "tl": "Tagalog",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "ur": "Urdu",
    "uz": "Uzbek",
    "vi": "Vietnamese",
    "zh": "Chinese",
}
_NAMES_LOWER = {name.lower(): name for name in LANGUAGE_NAMES.values()}


def language_name(language: str) -> str:
    """The English name of a stored language ("en", "en-US", "EN" give "English"; "English" stays);
    "unknown" when none is stored; a code without a known name is returned as it is."""
    value = (language or "").strip()
    if not value or value.lower() == "unknown":
        return "unknown"
    if value.lower() in _NAMES_LOWER:
        return _NAMES_LOWER[value.lower()]
    base = re.split(r"[-_]", value, maxsplit=1)[0].lower()
    return LANGUAGE_NAMES.get(base, value)
