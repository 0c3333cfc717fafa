"""Import files are untrusted: malformed JSONL and CSV fail cleanly, line by line, and all or nothing.

Property-based (hypothesis): random bytes, random text, JSON values of every shape, near-valid
records with one field broken, CSV with random headers, quoting and columns. Whatever the input,
``parse_prompt_file`` returns rows or raises ImportFailed whose every message names a line (or is
one of the few file-level messages); ``import_prompts`` then writes everything or raises ImportFailed
and writes nothing (the tables are counted before and after). Any other exception fails the test.

Examples per test: IMPORT_EXAMPLES (default 200; parse-only tests run 4x as many).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arena.models import Item, Prompt, Response
from arena.services.imports import ImportFailed, import_prompts, parse_prompt_file
from tests.factories import make_campaign

EXAMPLES = int(os.environ.get("IMPORT_EXAMPLES", "200"))
LINE_MESSAGE = re.compile(r"^line \d+: .+", re.S)
FILE_MESSAGES = ("the file is not UTF-8 text", "the file holds no prompt")
MODELS = ("Alpha", "Beta", "Gamma")

fast = settings(max_examples=EXAMPLES * 4, deadline=None, suppress_health_check=list(HealthCheck))
with_db = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- strategies -----------------------------------------------------------------------------------

text = st.text(st.characters(codec="utf-8"), max_size=40)  # includes NUL, controls, surrogate-free unicode
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4), max_leaves=12
)
role = st.sampled_from(["user", "assistant", "system", "User", "", "tool"])
message = st.fixed_dictionaries({"role": role, "content": text | json_scalars}) | json_values
responses = st.dictionaries(st.sampled_from([*MODELS, "Unknown", ""]) | text, text | json_scalars, max_size=3)
record = st.fixed_dictionaries(
    {},
    optional={
        "external_id": text | json_scalars,
        "id": text,
        "prompt": text | json_values,
        "messages": st.lists(message, max_size=4) | json_values,
        "category": text | json_scalars,
        "language": text | json_scalars,
        "responses": responses | json_values,
    },
)
valid_record = st.builds(
    lambda i, q, answers: {"external_id": f"p{i}", "prompt": q or "?", "responses": answers},
    st.integers(0, 30),
    st.text(min_size=1, max_size=20).filter(str.strip),
    st.dictionaries(st.sampled_from(MODELS), st.text(min_size=1, max_size=20).filter(str.strip), max_size=3),
)


def _jsonl(lines: list) -> bytes:
    out = []
    for line in lines:
        out.append(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False))
    return "\n".join(out).encode("utf-8", "surrogatepass")


jsonl_files = st.lists(
    valid_record
    | record
    | json_values
    | text
    | st.sampled_from(["{broken json", "", '{"prompt": "\\ud800"}', '{"prompt": "a\\u0000b"}']),
    min_size=0,
    max_size=8,
).map(_jsonl)

CSV_COLUMNS = ["external_id", "prompt", "messages", "category", "language", "model", "response", "extra", ""]


@st.composite
def csv_files(draw) -> bytes:
    header = draw(st.lists(st.sampled_from(CSV_COLUMNS) | text, max_size=6))
    rows = draw(
        st.lists(
            st.lists(text | st.sampled_from([*MODELS, '[{"role":"user","content":"hi"}]', "[]"]), max_size=8),
            max_size=6,
        )
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC])))
    writer.writerow(header)
    writer.writerows(rows)
    body = buffer.getvalue()
    if draw(st.booleans()):  # damage it: cut it anywhere, or add a stray quote
        cut = draw(st.integers(0, len(body)))
        body = body[:cut] + draw(st.sampled_from(["", '"', "\r", "\n\n", "\x00"]))
    return body.encode("utf-8", "surrogatepass")


any_bytes = st.binary(max_size=300)


def _check_failure(error: ImportFailed) -> None:
    assert error.errors, "an ImportFailed without messages"
    for line in error.errors:
        assert LINE_MESSAGE.match(line) or line.startswith(FILE_MESSAGES), line
    assert error.message.startswith("Nothing was imported")


def _parse(name: str, data: bytes):
    try:
        return parse_prompt_file(name, data)
    except ImportFailed as error:
        _check_failure(error)
        return None


# --- parsing only (no database) -------------------------------------------------------------------


@fast
@given(any_bytes, st.sampled_from(["f.jsonl", "f.csv", "f.json", "f.ndjson"]))
def test_random_bytes_are_refused_cleanly(data, name):
    _parse(name, data)


@fast
@given(jsonl_files)
def test_malformed_jsonl_is_refused_with_line_numbers(data):
    _parse("prompts.jsonl", data)


@fast
@given(csv_files())
def test_malformed_csv_is_refused_with_line_numbers(data):
    _parse("prompts.csv", data)


def test_each_bad_line_is_reported_by_its_number():
    data = b'{"prompt": "ok"}\n{broken\n\n[1, 2]\n{"messages": [{"role": "robot", "content": "x"}]}\n'
    with pytest.raises(ImportFailed) as failed:
        parse_prompt_file("p.jsonl", data)
    assert [e.split(":")[0] for e in failed.value.errors] == ["line 2", "line 4", "line 5"]


def test_a_file_of_another_type_is_refused_with_a_file_level_message():
    with pytest.raises(ImportFailed) as failed:
        parse_prompt_file("prompts.xlsx", b"PK\x03\x04")
    assert "unknown file type" in failed.value.message


# --- parsing and writing: all or nothing ----------------------------------------------------------


def _counts() -> tuple[int, int, int]:
    return Prompt.objects.count(), Response.objects.count(), Item.objects.count()


@pytest.fixture
def target(db):
    return make_campaign(slug="imp", models=MODELS, prompts=1)


def _import_all_or_nothing(campaign, name: str, data: bytes) -> None:
    before = _counts()
    rows = _parse(name, data)
    if rows is None:
        assert _counts() == before
        return
    try:
        summary = import_prompts(campaign, rows)
    except ImportFailed as error:
        _check_failure(error)
        assert _counts() == before, "a refused import wrote something"
        return
    after = _counts()
    assert after[0] - before[0] == summary.prompts_created


@with_db
@given(data=jsonl_files)
def test_jsonl_imports_are_all_or_nothing(target, data):
    _import_all_or_nothing(target, "prompts.jsonl", data)


@with_db
@given(data=csv_files())
def test_csv_imports_are_all_or_nothing(target, data):
    _import_all_or_nothing(target, "prompts.csv", data)


@with_db
@given(good=st.lists(valid_record, min_size=1, max_size=5), bad=record | json_values, at=st.integers(0, 5))
def test_one_bad_record_among_good_ones_imports_nothing(target, good, bad, at):
    lines = [*good]
    lines.insert(min(at, len(lines)), bad)
    _import_all_or_nothing(target, "prompts.jsonl", _jsonl(lines))


@pytest.mark.parametrize("bad", ["bad\x00byte", "\ud800"])
def test_text_the_database_cannot_store_is_refused_by_line(bad):
    """PostgreSQL cannot store NUL in text, nor UTF-8 a lone surrogate: refused before writing."""
    data = b'{"external_id": "a", "prompt": "fine"}\n' + json.dumps({"external_id": "b", "prompt": bad}).encode()
    with pytest.raises(ImportFailed) as failed:
        parse_prompt_file("p.jsonl", data)
    assert failed.value.errors[0].startswith("line 2: the text contains")


def test_broken_csv_quoting_is_refused_with_its_line():
    with pytest.raises(ImportFailed) as failed:
        parse_prompt_file("p.csv", b'prompt,category\n"fine",x\nunquoted\rbreak,y\n')
    assert failed.value.errors[0].startswith("line ")
