"""Markdown for untrusted text (model output, prompts, instructions) rendered to inert HTML.

markdown-it renders CommonMark with raw HTML disabled (so ``<script>`` becomes text) and single
newlines as line breaks, Pygments highlights fenced code, and nh3 (the Ammonia sanitiser) removes
anything that survived: event handler attributes, ``javascript:`` and ``data:`` links, styles. Links
open with rel="noopener noreferrer nofollow".
"""

from __future__ import annotations

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
    """Sanitised HTML for untrusted Markdown. Safe to mark safe in a template."""
    return _CLEANER.clean(_MD.render(text or ""))


def pygments_css() -> str:
    """The stylesheet for highlighted code (served as a static file, no inline styles)."""
    return _FORMATTER.get_style_defs(".md pre")
