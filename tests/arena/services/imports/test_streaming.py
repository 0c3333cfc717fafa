"""Imports at scale: a JSONL file is written batch by batch as it is read (never held as rows), on
both write paths (PostgreSQL COPY, and the SQL every database runs), with the same results, summary,
idempotence and all-or-nothing refusal as one big batch."""

from __future__ import annotations

import io
import json

import pytest

from arena.models import Item, Prompt, Response
from arena.rendering import render_markdown
from arena.services.imports import ImportFailed, files, import_file, writer
from arena.services.imports.plain import text_lines
from tests.factories import make_campaign
from tests.modes import postgres_only

COPY = pytest.param(True, marks=postgres_only("COPY is PostgreSQL's bulk-import path"))
PATHS = pytest.mark.parametrize("use_copy", [COPY, False], ids=["copy", "sql"])


def jsonl(records) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode()


def record(i: int, answer: str = "a", prompt: str = "Q") -> dict:
    return {
        "external_id": f"p{i}",
        "prompt": f"{prompt}{i}?",
        "category": "c",
        "language": "en",
        "responses": {"Alpha": f"*{answer}{i}*", "Beta": f"b{i}"},
    }


def stored(campaign) -> dict:
    result = {}
    for prompt in campaign.prompts.prefetch_related("responses__model"):
        answers = {r.model.name: (r.content, r.html) for r in prompt.responses.all()}
        result[prompt.external_id] = (prompt.messages, prompt.category, prompt.language, answers)
    return result


@pytest.fixture
def target(db):
    return make_campaign(slug="target", models=("Alpha", "Beta"), prompts=0)


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(writer, "BATCH", 3)


def _import(campaign, data: bytes, use_copy: bool, monkeypatch):
    real = writer.import_prompts
    monkeypatch.setattr(
        "arena.services.imports.import_prompts", lambda *args, **kw: real(*args, **kw, use_copy=use_copy)
    )
    return import_file(campaign, "f.jsonl", data)


@PATHS
def test_a_file_written_in_many_batches_is_stored_whole_and_reimports_as_unchanged(
    target, small_batches, monkeypatch, use_copy
):
    summary = _import(target, jsonl(record(i) for i in range(10)), use_copy, monkeypatch)
    assert (summary.prompts_created, summary.responses_written, summary.responses_unchanged) == (10, 20, 0)
    rows = stored(target)
    assert len(rows) == 10
    answers = {"Alpha": ("*a7*", render_markdown("*a7*")), "Beta": ("b7", render_markdown("b7"))}
    assert rows["p7"] == ([{"role": "user", "content": "Q7?"}], "c", "en", answers)
    assert Item.objects.filter(campaign=target).count() == 10

    again = _import(target, jsonl(record(i) for i in range(10)), use_copy, monkeypatch)
    assert (again.prompts_created, again.prompts_updated, again.prompts_unchanged) == (0, 0, 10)
    assert (again.responses_written, again.responses_unchanged) == (0, 20)
    assert stored(target) == rows


@PATHS
def test_changes_spread_over_batches_are_written_and_counted(target, small_batches, monkeypatch, use_copy):
    _import(target, jsonl(record(i) for i in range(10)), use_copy, monkeypatch)
    changed = [record(i, answer="new" if i in (1, 8) else "a", prompt="R" if i == 5 else "Q") for i in range(12)]
    summary = _import(target, jsonl(changed), use_copy, monkeypatch)
    assert (summary.prompts_created, summary.prompts_updated, summary.prompts_unchanged) == (2, 1, 9)
    assert (summary.responses_written, summary.responses_unchanged) == (2 + 4, 18)
    rows = stored(target)
    assert rows["p8"][3]["Alpha"] == ("*new8*", render_markdown("*new8*"))
    assert rows["p5"][0] == [{"role": "user", "content": "R5?"}]
    assert rows["p11"][3]["Beta"][0] == "b11"
    assert Item.objects.filter(campaign=target).count() == 12


@PATHS
def test_an_error_on_the_last_line_writes_nothing_from_earlier_batches(target, small_batches, monkeypatch, use_copy):
    records = [
        *(record(i) for i in range(8)),
        {"external_id": "p8", "prompt": ""},
        {"external_id": "p9", "prompt": "Q9?", "responses": {"Zeta": "z"}},
    ]
    with pytest.raises(ImportFailed) as failed:
        _import(target, jsonl(records), use_copy, monkeypatch)
    assert failed.value.errors[0] == "line 9: the prompt is empty"
    assert failed.value.errors[1].startswith("line 10: model 'Zeta' is not in this campaign")
    assert (Prompt.objects.filter(campaign=target).count(), Response.objects.count(), Item.objects.count()) == (0, 0, 0)


def test_a_jsonl_file_is_written_while_it_is_read_not_held_as_rows(target, small_batches, monkeypatch):
    """Memory stays bounded and the file is read once: each batch is written as soon as it is read
    (before, the whole file became rows first: 100,000 prompts took about 130 MB)."""
    read = {"rows": 0}
    ahead = []
    real_rows, real_write = files.jsonl_rows, writer._write_prompts

    def counting_rows(text):
        for item in real_rows(text):
            read["rows"] += 1
            yield item

    def write_prompts(campaign, batch, *args):
        written = sum(len(b) for b in ahead_batches) + len(batch)
        ahead_batches.append(batch)
        ahead.append(read["rows"] - written)
        return real_write(campaign, batch, *args)

    ahead_batches: list = []
    monkeypatch.setattr(files, "jsonl_rows", counting_rows)
    monkeypatch.setattr(writer, "_write_prompts", write_prompts)
    import_file(target, "f.jsonl", jsonl(record(i) for i in range(30)))
    assert len(ahead) == 10  # ten batches of three
    assert max(ahead) == 0 and read["rows"] == 30  # never a row read ahead of its batch; the file read once


@PATHS
def test_batches_written_before_a_bad_line_are_rolled_back(target, small_batches, monkeypatch, use_copy):
    """The file is written as it is read: six batches are in the database when line 20 turns out
    wrong; the import fails with every error and keeps nothing."""
    records = [record(i) for i in range(25)]
    records[19] = {"external_id": "p19", "prompt": "Q19?", "responses": {"Alpha": 7}}
    records[22] = {"external_id": "p3", "prompt": "Q3?"}
    with pytest.raises(ImportFailed) as failed:
        _import(target, jsonl(records), use_copy, monkeypatch)
    assert failed.value.errors == [
        'line 20: "responses" must map model names to answer texts',
        "line 23: external_id 'p3' also on line 4",
    ]
    assert (Prompt.objects.filter(campaign=target).count(), Response.objects.count(), Item.objects.count()) == (0, 0, 0)


def test_csv_lines_are_split_as_io_stringio_splits_them():
    """parse_csv reads lines from text_lines instead of a StringIO copy of the text (4 bytes a character)."""
    for text in ["", "a", "a\n", "a\r\nb\r\n", "a\rb\n\u2028c\x85\n\n", 'x,"q\nq"\n\ny', "\n\n"]:
        assert list(text_lines(text)) == list(io.StringIO(text))
