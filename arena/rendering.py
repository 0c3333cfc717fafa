"""Markdown for untrusted text (model output, prompts, instructions) rendered to inert HTML.

markdown-it renders CommonMark with raw HTML disabled (so ``<script>`` becomes text) and single
newlines as line breaks, Pygments highlights fenced code, and nh3 (the Ammonia sanitiser) removes
anything that survived: event handler attributes, ``javascript:`` and ``data:`` links, styles. Links
open with rel="noopener noreferrer nofollow".
"""

from __future__ import annotations

import re

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_FORMATTER = HtmlFormatter(nowrap=True)

_ALLOWED_TAGS = {
    "a",
    "b",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "code": {"class"},
    "span": {"class"},
    "td": {"align"},
    "th": {"align"},
    "ol": {"start"},
}


def _highlight(code: str, lang: str, _attrs: str) -> str:
    if not lang:
        return ""  # markdown-it escapes the code itself
    try:
        lexer = get_lexer_by_name(lang.split()[0])
    except ClassNotFound:
        return ""
    return highlight(code, lexer, _FORMATTER)


# "breaks": a single newline is a line break (<br>), as chat answers and prompts are written (a haiku keeps
# its lines); a blank line still starts a paragraph, and code blocks keep their newlines as they are.
_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True, "highlight": _highlight})
_MD.enable("table")
_MD.enable("strikethrough")


# Built once: nh3.clean() converts its options on every call, a fifth of the cost of a short answer.
_CLEANER = nh3.Cleaner(
    tags=_ALLOWED_TAGS,
    attributes=_ALLOWED_ATTRIBUTES,
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


def render_markdown(text: str) -> str:
    """Sanitised HTML for untrusted Markdown. Safe to mark safe in a template.

    Text with no Markdown syntax but paragraphs, line breaks and simple ``**strong**`` or ``*em*``
    words takes a fast path that writes markdown-it's HTML for it directly (byte for byte the same:
    tests/arena/test_rendering.py); either way the same Cleaner sanitises the HTML.
    """
    text = text or ""
    html = simple_markdown_html(text)
    return _CLEANER.clean(_MD.render(text) if html is None else html)


# --- The fast path: what markdown-it renders for text that is only paragraphs, lines and simple emphasis.

# Anything that could start Markdown syntax other than paragraphs, line breaks and simple emphasis (or
# that markdown-it normalises): escapes, code, links, tables, underscores, strikethrough, autolinks and
# entities, control characters, whitespace other than spaces and newlines, and at a line's start a
# heading, quote, list, rule, setext underline or 4 spaces of indentation (a code block).
_NOT_SIMPLE = re.compile(
    r"[\\`\[\]|_\x00-\x09\x0b-\x1f\x7f]|[^\S \n]|~~|<(?! )|&(?=[#A-Za-z0-9])"
    r"|^ *(?:[#>+=\-]|\d+[.)]|\*(?!\*?[A-Za-z0-9]))|^ {4,}[^ \n]",
    re.MULTILINE,
)
# **strong** or *em* around words: the opener after a line's start, a space or "(", the closer before
# a line's end, a space or punctuation, letters or digits on the inner side of both (so that each run
# can only open or only close), no "*" inside.
_EMPHASIS = re.compile(r"(?:(?<=[ (\n])|^)(\*\*?)([A-Za-z0-9](?:[^*\n]*[A-Za-z0-9])?)\1(?=[ \n.,;:!?)]|$)")
_EMPHASIS_TAGS = {"*": ("<em>", "</em>"), "**": ("<strong>", "</strong>")}


def _escape(text: str) -> str:
    """markdown-it's escapeHtml."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _inline(line: str) -> str:
    if "*" not in line:
        return _escape(line)
    parts = _EMPHASIS.split(line)  # text, (delimiter, inner text, text)...
    html = [_escape(parts[0])]
    for index in range(1, len(parts), 3):
        opening, closing = _EMPHASIS_TAGS[parts[index]]
        html += [opening, _escape(parts[index + 1]), closing, _escape(parts[index + 2])]
    return "".join(html)


def simple_markdown_html(text: str) -> str | None:
    """markdown-it's HTML (options of ``_MD``) for text whose only syntax is paragraphs (blank lines),
    line breaks and simple emphasis; None for any other text, which needs the full renderer."""
    if _NOT_SIMPLE.search(text) or ("*" in text and "*" in _EMPHASIS.sub("", text)):
        return None
    html: list[str] = []
    lines: list[str] = []  # the paragraph being read
    for raw in text.split("\n"):
        line = raw.strip(" ")
        if line:
            lines.append(line)
        elif lines:
            html.append("<p>" + "<br />\n".join(map(_inline, lines)) + "</p>\n")
            lines = []
    if lines:
        html.append("<p>" + "<br />\n".join(map(_inline, lines)) + "</p>\n")
    return "".join(html)


def pygments_css() -> str:
    """The stylesheet for highlighted code (served as a static file, no inline styles)."""
    return _FORMATTER.get_style_defs(".md pre")
