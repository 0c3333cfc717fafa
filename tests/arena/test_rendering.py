"""The Markdown fast path writes exactly markdown-it's HTML for the text it takes, and takes plain text.

`arena.rendering.simple_markdown_html` renders text whose only syntax is paragraphs, line breaks and
simple ``**strong**``/``*em*`` words without markdown-it. Property-based (hypothesis): for any text,
from a generator of plain prose and from one of Markdown's special characters, whitespace and line
starts mixed at random, either the fast path declines (None) or its HTML is byte for byte markdown-it's;
and ``render_markdown`` is always the sanitised full rendering. No database.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from arena.rendering import _CLEANER, _MD, render_markdown, simple_markdown_html

# Plain prose: lines of words (ASCII, accents, CJK, emoji), punctuation, spaces and emphasised words,
# each line starting with a word, between single newlines, blank lines and leading or trailing spaces.
_STARTERS = st.sampled_from(["The", "answer", "é", "中文", "🙂", "So", "x"])
_WORDS = st.sampled_from(["word", "The", "42", "1,234", "é", "中文", "🙂", "C#", "x-y", "a+b", "e=mc2", "2."])
_PUNCTUATION = st.sampled_from([".", ",", ";", ":", "!", "?", "(", ")", '"', "'", " & ", " < ", " > ", " ~5", "%"])
_SPACES = st.sampled_from([" ", " ", "  ", "   "])
_NEWLINES = st.sampled_from(["\n", "\n\n", "  \n", "\n   ", " \n \n", "\n\n\n", "\n  \n  "])
_EMPHASISED = st.builds(
    lambda marks, words, before, after: f"{before}{marks}{' '.join(words)}{marks}{after}",
    st.sampled_from(["*", "**"]),
    st.lists(st.sampled_from(["bold", "It", "42", "a b", "x.y", 'say "hi"', "7"]), min_size=1, max_size=3),
    st.sampled_from([" ", " (", ""]),
    st.sampled_from([" ", ".", ",", ")", "!", ""]),
)
_LINE = st.builds(
    lambda start, rest: start + "".join(rest),
    _STARTERS,
    st.lists(st.one_of(_WORDS, _PUNCTUATION, _SPACES, _SPACES, _EMPHASISED), max_size=12),
)
plain_prose = st.builds(
    lambda lead, lines, gaps, tail: lead + "".join(line + gap for line, gap in zip(lines, gaps, strict=False)) + tail,
    st.sampled_from(["", " ", "\n", "  \n"]),
    st.lists(_LINE, max_size=6),
    st.lists(_NEWLINES, min_size=6, max_size=6),
    st.sampled_from(["", " ", "\n", "  "]),
)

# Anything: prose mixed with every character or line start that means something to Markdown.
_SPECIAL = st.sampled_from(
    [
        *"*_`~[]()<>&#!|\\-+=.:)0123456789\t\r\x00\x0b\x0c\x1f\x7f\x85\xa0\u2028\u3000",
        "**",
        "***",
        "~~",
        "```",
        "\n# ",
        "\n> ",
        "\n- ",
        "\n* ",
        "\n+ ",
        "\n1. ",
        "\n2) ",
        "\n---\n",
        "\n===\n",
        "\n    ",
        "\n   ",
        "&amp;",
        "&#35;",
        "&copy",
        "<b>",
        "<http://x.y>",
        "<a@b.co>",
        "[a](b)",
        "[a]: /u\n",
        "| a | b |\n| - | - |\n",
        "a_b_",
        "_a_",
        "\\*",
    ]
)
any_text = st.lists(st.one_of(plain_prose, _SPECIAL, _SPECIAL, st.text(max_size=5)), max_size=12).map("".join)


def _check(text: str) -> str | None:
    html = simple_markdown_html(text)
    if html is not None:
        assert html == _MD.render(text)
    assert render_markdown(text) == _CLEANER.clean(_MD.render(text))
    return html


@settings(max_examples=600)
@given(plain_prose)
@example("")
@example("   \n \n")
@example("The answer is **42** (import-model-1).")
@example("  two spaces  \n  then a line\n\n\nand a paragraph  ")
@example('He said "yes" & left; 3 < 4 > 2.')
def test_plain_prose_takes_the_fast_path_and_renders_as_markdown_it(text: str) -> None:
    html = _check(text)
    if "*" not in text:  # emphasis next to other punctuation may be declined: it goes to markdown-it
        assert html is not None, "plain text should not need markdown-it"


@settings(max_examples=1500)
@given(any_text)
@example("a\n2. b")
@example("*a**b*")
@example("**a** **b*")
@example("a**b**c")
@example("***a***")
@example("a\n    b")
@example("    a")
@example("a\n===")
@example("a\xa0")
@example("x\r\ny")
@example("Tom &amp Jerry")
def test_any_text_renders_as_markdown_it_whichever_path(text: str) -> None:
    _check(text)


def test_the_fast_path_declines_markdown_syntax() -> None:
    for text in ["# Title", "- item", "1. first", "`code`", "[link](https://x.y)", "a_b_c", "> quote", "a\n---"]:
        assert simple_markdown_html(text) is None, text
