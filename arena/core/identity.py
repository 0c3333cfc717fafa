"""Answers that give their model away ("As GPT-4, I...") make a battle non-anonymous.

Such battles are flagged when they are created (or, in a live battle, when an answer arrives); their
votes are kept (every raw vote stays exportable) but left out of the ratings, as the public Chatbot
Arena drops them. One rule serves every path: pre-generated battles, gold battles and rankings ask
about the rendered HTML of the answers, live battles about the Markdown the model wrote.

The rule reads the text as a voter does. It is first normalised (``normalise``): tags removed, HTML
entities decoded, soft hyphens and zero-width characters dropped, Markdown emphasis markers at the
edges of words or between letters dropped ("Zephy*rine*"), Unicode NFKC, case folded. Then it looks
for

- any of the campaign's model names, normalised the same way, a space, hyphen, underscore or dot
  between their parts matching any of these or none ("Zephyr-7" finds "zephyr 7", "ZEPHYR_7",
  "zephyr7"), as whole words;
- a well-known family with a version or variant ("GPT-4-turbo", "Claude-3 Opus", "Llama-3-70B",
  "Gemini 1.5", "Phi-3"); the names that are no English word ("ChatGPT", "Mixtral", "Qwen",
  "DeepSeek") on their own;
- a family name that is also an ordinary word ("Claude", "Llama", "Gemini", "Falcon", "Mistral",
  "Bard") only in a self-identification ("I am Claude", "my name is Gemini", "an assistant called
  Bard", "As Llama, I") or after its maker ("Google's Gemini", "Meta Llama");
- a maker ("OpenAI", "Anthropic", "Google DeepMind", "Meta AI", "Mistral AI", "Google", ...) only in a
  self-description ("I was trained by Google", "As an AI language model developed by OpenAI").

So ordinary prose does not flag ("the falcon flew", "a Gemini horoscope", "llama wool", "Gemini 4
astronauts", "the mistral wind", "Claude Monet", "from openai import OpenAI").

Cost (bench/identity.py): about 80-90 us for a new 2,000-character answer against 20 names (was about
200 us), a dictionary lookup for an answer seen before. Only the neighbourhood of a family's, a maker's or a
name's word is searched with the full expressions; most answers hold none of these words.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Iterator
from functools import lru_cache

# -- normalising ---------------------------------------------------------------------------------

# Characters that are not seen (dropped), and look-alikes of the hyphen and the apostrophe (mapped).
_INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"
)
_TRANSLATE = {ord(c): None for c in _INVISIBLE} | {
    **{ord(c): "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"},
    **{ord(c): "'" for c in "\u2018\u2019\u02bc\u2032\uff07"},
}

# Markdown emphasis markers (* _ ~ `) at the start or the end of a word or between two letters are
# dropped ("**GPT-4**", "Zephy*rine*", "~~Claude~~"); "2*3" keeps its star. So are Markdown's
# backslash escapes ("GPT\-4").
_MARKERS = re.compile(r"[*_~`]+")
_ESCAPE = re.compile(r"\\(?=[^\w\s])")


def _unmark(match: re.Match[str]) -> str:
    text, start, end = match.string, match.start(), match.end()
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    if before.isalnum() != after.isalnum() or (before.isalpha() and after.isalpha()):
        return ""
    return match.group()


# The end of a block, a line break or a rule separates words; any other tag is removed without a
# trace ("Zephy<em>rine</em>", the spans of highlighted code). The site's HTML (arena.rendering) is
# lower case and puts a line break after every block as well.
_BLOCK_END = re.compile(r"<(?:/(?:p|li|td|th|h[1-6]|div|tr|dd|dt|pre|blockquote|table|ul|ol)|br|hr)\b[^>]*>")
_TAG = re.compile(r"<[a-zA-Z/!?][^>]*>")


def normalise(text: str) -> str:
    """The plain text a reader sees, in the form the check compares: see the module's docstring."""
    if "<" in text:
        text = _TAG.sub("", _BLOCK_END.sub(" ", text))
    text = html.unescape(text)  # returns at once when there is no "&"
    # Plain ASCII (most answers) needs no Unicode normalisation, and lower() is its case folding.
    text = text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).casefold().translate(_TRANSLATE)
    if "\\" in text:
        text = _ESCAPE.sub("", text)
    if "*" in text or "_" in text or "~" in text or "`" in text:
        text = _MARKERS.sub(_unmark, text)
    return text


# -- what names a model --------------------------------------------------------------------------

_S = r"[\s._-]?"  # one optional separator between a family and its version
_SIZE = r"\d+(?:\.\d+)?(?:x\d+)?[bm]"  # 7b, 70b, 8x7b, 1.5b, 350m
# A number followed by a unit is a measure, not a version ("a llama 1.8 metres tall", "gpt 4 tb").
_NOT_A_MEASURE = (
    r"(?!\s*(?:%|percent|[kmgt]i?b|bytes?|m|cm|mm|km|kg|g|lbs?|ft|feet|foot|inch(?:es)?|metres?|meters?|miles?|"
    r"years?|months?|weeks?|days?|hours?|minutes?|seconds?|times|people|of)(?!\w))"
)

# Families whose names with a version or variant are model names, never ordinary prose.
_VERSIONED = (
    rf"gpt(?:[-.]?[1-5](?:\.\d)?[a-z0-9]*|\s(?:3\.5|[345]o?)(?:[\s-]?turbo)?{_NOT_A_MEASURE})",
    rf"claude{_S}(?:[1-4](?:\.\d)?{_NOT_A_MEASURE}|instant|opus|sonnet|haiku)",
    rf"(?:code{_S})?llama{_S}(?:[1-4](?:\.\d)?{_NOT_A_MEASURE}|{_SIZE})",
    rf"mistral{_S}(?:{_SIZE}|v\d(?:\.\d)?|instruct|nemo)|mistral-?(?:large|medium|small|tiny)",
    rf"gemini{_S}(?:\d\.\d|pro|ultra|nano|flash)|gemini-?(?:advanced|exp)",
    rf"gemma{_S}(?:\d(?:\.\d)?{_NOT_A_MEASURE}|{_SIZE})",
    r"palm-?2",
    # "phi-3", not the variables phi1, phi2 of a formula
    rf"phi-(?:2|3|3\.5|4){_NOT_A_MEASURE}|phi{_S}[1-4](?:\.5)?{_S}(?:mini|small|medium|vision|instruct)",
    rf"falcon{_S}(?:{_SIZE}|llm|instruct|mamba)",
    rf"vicuna{_S}(?:{_SIZE}|v\d+(?:\.\d+)?)",
    r"grok-?\d(?:\.\d)?",
    r"command-r(?:\+|-?plus|7b)?|command\sr(?:\+|\splus)",
    r"(?:chatgpt|mixtral|qwen|deepseek|codellama)\w*",
)
# Family names that are also ordinary words (or could be): only in a self-identification.
_FAMILY = (
    r"(?:chatgpt|gpt|claude|llama|mistral|mixtral|gemini|gemma|palm|bard|falcon|vicuna|phi|grok|qwen|deepseek"
    r"|copilot|command\sr|ernie|openassistant)"
)
_MAKER = (
    r"(?:openai|anthropic|google(?:\sdeepmind|\sai|\sbrain)?|deepmind|meta(?:\sai)?|facebook|mistral(?:\sai)?"
    r"|microsoft|alibaba(?:\scloud)?|cohere|xai|x\.ai|deepseek|baidu|lmsys|hugging(?:\s)?face)"
)
# A maker before one of its own families ("Google's Gemini", "Meta Llama"; "Meta's palm" is no model).
_MAKER_FAMILY = (
    r"(?:(?:google(?:\sdeepmind)?|deepmind)(?:'s)?\s(?:gemini|gemma|palm|bard)|(?:meta(?:\sai)?|facebook)(?:'s)?\sllama"
    r"|anthropic(?:'s)?\sclaude|openai(?:'s)?\s(?:chat)?gpt|microsoft(?:'s)?\s(?:phi|copilot)"
    r"|mistral\sai(?:'s)?\s(?:mistral|mixtral)|xai(?:'s)?\sgrok|alibaba(?:'s)?\sqwen|baidu(?:'s)?\sernie"
    r"|cohere(?:'s)?\scommand)"
)
_MADE = r"(?:developed|created|trained|built|made|designed|programmed|engineered|produced|released|fine-?tuned|owned)"
_AI = r"(?:model|assistant|ai|chatbot|bot|llm)"
_AT = r"(?:(?:the\s)?(?:[\w-]+\s){0,2}?(?:at|from)\s)?(?:the\s)?"  # "the team at", "researchers from", "the"
_SELF = (
    # "I am Claude", "I'm Llama", "my name is Gemini", "call me Bard", "an assistant called Claude"
    rf"(?:i\sam|i'm|my\sname\sis|call\sme|(?:i\sam|i'm)\s(?:called|named|known\sas)"
    rf"|{_AI},?\s(?:called|named|known\sas))\s(?:(?:the|your)\s)?{_FAMILY}(?!')",
    rf"as\s{_FAMILY},\s(?:i|an?)",  # "As Claude, I cannot ..."
    _MAKER_FAMILY,
    # "I was trained by Google", "I'm an AI assistant from Anthropic", "as an AI model developed by OpenAI"
    rf"(?:i\s(?:am|was|have\sbeen)|i'm|i've\sbeen)\s(?:(?:also|just|originally|actually)\s)?{_MADE}\s(?:by|at)\s"
    rf"{_AT}{_MAKER}",
    rf"(?:i\sam|i'm|i\swas|as)\s(?:an?|the|one)\s(?:[\w-]+\s){{0,3}}?{_AI},?\s(?:{_MADE}\s(?:by|at)|from|by|of|at)\s"
    rf"{_AT}{_MAKER}",
    rf"my\s(?:creators?|developers?|makers?|designers?|trainers?)\s(?:at\s|(?:is|are|was|were)\s){_AT}{_MAKER}",
)
# A space in these stands for any run of spaces (a tag removed leaves one more).
_ALTERNATIVES = "|".join((*_VERSIONED, *(p.replace(r"\s", r"\s+") for p in _SELF)))
_FAMILIES = re.compile(rf"(?<!\w)(?:{_ALTERNATIVES})(?!\w)")

# Every match of _FAMILIES holds one of these words, at the start of a word, at most _BEFORE characters
# after the match's start and _AFTER before its end. The text is searched only around them: most
# answers hold none, and a regular expression that starts with a look-behind costs about 40 ns a
# character even where nothing matches.
_FAMILY_WORDS = (
    "chatgpt",
    "codellama",
    "gpt",
    "claude",
    "llama",
    "mistral",
    "mixtral",
    "gemini",
    "gemma",
    "palm",
    "phi",
    "falcon",
    "vicuna",
    "grok",
    "command",
    "qwen",
    "deepseek",
    "bard",
    "copilot",
    "ernie",
    "openassistant",
    "openai",
    "anthropic",
    "google",
    "deepmind",
    "meta",
    "facebook",
    "microsoft",
    "alibaba",
    "cohere",
    "xai",
    "x.ai",
    "baidu",
    "lmsys",
    "hugging",
)


def word_trie(words: Iterable[str]) -> str:
    """A regular expression for any of the words, sharing their prefixes: "g(?:emini|pt)" rather than
    "gemini|gpt", so that each position of the text tries one branch instead of one per word."""
    branches: dict[str, list[str]] = {}
    for word in words:
        branches.setdefault(word[:1], []).append(word[1:])
    ends_here = "" in branches
    alternatives = [re.escape(first) + word_trie(rests) for first, rests in sorted(branches.items()) if first]
    if not alternatives:
        return ""
    body = "|".join(alternatives)
    return f"(?:{body})?" if ends_here else f"(?:{body})" if len(alternatives) > 1 else body


_FAMILY_WORD = re.compile(word_trie(_FAMILY_WORDS))
_BEFORE, _AFTER = 200, 80
_SPACE = re.compile(r"\s")


def _search_near(pattern: re.Pattern[str], text: str, positions: Iterable[int], before: int, after: int) -> bool:
    """pattern.search(text), looking only within [p - before, p + after] of each position (in order)."""
    windows: list[list[int]] = []
    for p in positions:
        start, end = max(0, p - before), p + after
        if windows and start <= windows[-1][1]:
            windows[-1][1] = end
        else:
            windows.append([start, end])
    for start, end in windows:
        space = _SPACE.search(text, end) if end < len(text) else None  # never cut a word in two
        if pattern.search(text, start, space.start() if space else len(text)):
            return True
    return False


def _is_word_start(text: str, p: int) -> bool:
    return p == 0 or not (text[p - 1].isalnum() or text[p - 1] == "_")


def _names_a_family(text: str) -> bool:
    positions = (m.start() for m in _FAMILY_WORD.finditer(text) if _is_word_start(text, m.start()))
    return _search_near(_FAMILIES, text, positions, _BEFORE, _AFTER)


def _occurrences(text: str, word: str) -> Iterator[int]:
    p = text.find(word)
    while p >= 0:
        yield p
        p = text.find(word, p + 1)


_NAME_PART = re.compile(r"[^\W_]+|[^\w\s.-]+")  # runs of letters or digits, and of other signs ("&")
_BETWEEN_PARTS = r"[\s._-]{0,3}"


def _name_parts(name: str) -> list[str]:
    """A model name's parts, normalised: "Llama-3-70B" -> llama, 3, 70, b; "Q&A-Bot" -> q, &, a, bot."""
    return [p for chunk in _NAME_PART.findall(normalise(name)) for p in re.findall(r"\d+|\D+", chunk)]


def _names_pattern(names: list[tuple[str, ...]]) -> str:
    """Campaign model names (their parts) as the check looks for them: the parts in order, any or no
    separator between, ending a word. Names that share their first parts share a branch
    ("contender(?:01|02)", separators left out), so a position of the text costs one look, not one a name."""
    branches: dict[str, list[tuple[str, ...]]] = {}
    for parts in names:
        branches.setdefault(parts[0], []).append(parts[1:])
    alternatives = []
    for first, rests in sorted(branches.items(), key=lambda branch: (-len(branch[0]), branch[0])):
        longer = [rest for rest in rests if rest]
        options = [_BETWEEN_PARTS + _names_pattern(longer)] if longer else []
        if len(longer) < len(rests):  # a name ends with this part
            options.append(r"(?!\w)" if re.match(r"\w", first[-1]) else "")
        alternatives.append(re.escape(first) + (f"(?:{'|'.join(options)})" if len(options) > 1 else options[0]))
    return f"(?:{'|'.join(alternatives)})"


class _Check:
    """The campaign's model names, compiled, each under its longest part: a text without it is not searched."""

    def __init__(self, campaign_model_names: frozenset[str]) -> None:
        by_key: dict[str, list[tuple[str, ...]]] = {}
        for parts in filter(None, map(_name_parts, campaign_model_names)):
            by_key.setdefault(max(parts, key=len), []).append(tuple(parts))
        self.names = []
        for key, names in by_key.items():
            words = [parts for parts in names if re.match(r"\w", parts[0])]  # whole words: not inside one
            signs = [parts for parts in names if not re.match(r"\w", parts[0])]
            alternatives = [rf"(?<!\w){_names_pattern(words)}"] if words else []
            alternatives += [_names_pattern(signs)] if signs else []
            reach = max(4 * sum(map(len, parts)) + 8 for parts in names)  # the parts and their separators
            self.names.append((key, re.compile("|".join(alternatives)), reach))

    def __call__(self, text: str) -> bool:
        text = normalise(text)
        if _names_a_family(text):
            return True
        return any(
            key in text and _search_near(pattern, text, _occurrences(text, key), reach, reach)
            for key, pattern, reach in self.names
        )


@lru_cache(maxsize=256)
def _check(campaign_model_names: frozenset[str]) -> _Check:
    return _Check(campaign_model_names)


# Every new battle asks this of its two answers, and a campaign has a few thousand answers: the
# verdict on each is kept (the search was most of a new battle's Python time; a lookup costs a
# hash). Answers up to 8,000 characters, so the cache stays within a few tens of MB.
CACHED_LENGTH = 8000


@lru_cache(maxsize=4096)
def _cached_verdict(check: _Check, text: str) -> bool:
    return check(text)


def _names_a_model(check: _Check, text: str) -> bool:
    return _cached_verdict(check, text) if len(text) <= CACHED_LENGTH else check(text)


def reveals_identity(texts: Iterable[str | None], campaign_model_names: Iterable[str]) -> bool:
    """True when any text (HTML or Markdown) names one of the campaign's models or a well-known family."""
    check = _check(frozenset(campaign_model_names))
    return any(_names_a_model(check, text or "") for text in texts)
