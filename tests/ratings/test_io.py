"""Reading battle files: the fast columnar path and the row-by-row path agree on every file, lines end at
newlines only, and a bad record is reported with its line however far down it is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ratings.columnar as columnar
import ratings.io as rio
from ratings import PairCounts
from ratings.io import Battles, InputError, read_battles

REPO = Path(__file__).resolve().parents[2]
# Every character str.splitlines() ends a line at, besides "\n" and "\r".
LINE_SEPARATORS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
WINNERS = ["model_a", "model_b", "tie", "tie (bothbad)", "Model_A", " tie ", "TIE (BOTHBAD)"]


def battles(n: int = 600, seed: int = 3) -> list[dict]:
    """Records with extra fields of every JSON kind, names with spaces around them, mixed spellings."""
    rng = np.random.default_rng(seed)
    names = ["gpt-4", "llama 3", "claude", " mistral ", "qwen\u00e9", "model, with comma"]
    out = []
    for i in range(n):
        a, b = rng.choice(len(names), 2, replace=False)
        out.append(
            {
                "question_id": f"q{i}",
                "model_a": names[a],
                "model_b": names[b],
                "winner": WINNERS[int(rng.integers(len(WINNERS)))],
                "anony": bool(rng.random() < 0.8),
                "turn": int(rng.integers(1, 4)),
                "conv_metadata": {"sum_assistant_a_tokens": i, "header_count_a": {"h1": 0}, "list": [1, None]},
                "conversation_a": [{"role": "user", "content": 'a "quoted" {brace} answer'}],
            }
        )
    return out


def write(path: Path, records: list[dict], fmt: str, *, bom: bool = False, crlf: bool = False) -> Path:
    end = "\r\n" if crlf else "\n"
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO(newline="")
        writer = csv.DictWriter(
            buf, ["question_id", "model_a", "model_b", "winner", "anony", "note"], lineterminator=end
        )
        writer.writeheader()
        for r in records:
            writer.writerow({k: r.get(k, "") for k in writer.fieldnames})
        text = buf.getvalue()
    elif fmt == "battles-jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + end for r in records)
    else:
        text = json.dumps(records, indent=2, ensure_ascii=False).replace("\n", end)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def by_rows(path: Path, fmt: str, anony_only: bool = False) -> PairCounts:
    """The row-by-row reader alone."""
    text = path.read_bytes().decode("utf-8-sig")
    return rio._read_rows(path, text, fmt, anony_only).counts()


@pytest.fixture
def no_row_reader(monkeypatch):
    """Regular files must be read by the fast path: the row reader fails the test if it runs."""

    def refuse(*args, **kwargs):
        raise AssertionError("the row reader ran on a regular file")

    monkeypatch.setattr(rio, "_read_rows", refuse)


FORMATS = [("csv", "b.csv"), ("battles-jsonl", "b.jsonl"), ("fastchat-json", "b.json")]


@pytest.mark.parametrize(("fmt", "name"), FORMATS)
@pytest.mark.parametrize("anony_only", [False, True])
@pytest.mark.parametrize(("bom", "crlf"), [(False, False), (True, True)])
def test_the_fast_path_reads_regular_files_to_the_row_readers_counts(tmp_path, fmt, name, anony_only, bom, crlf):
    records = battles()
    path = write(tmp_path / name, records, fmt, bom=bom, crlf=crlf)
    expected = by_rows(path, fmt, anony_only)
    kept = [r for r in records if r["anony"] or not anony_only]
    assert expected.n_votes == len(kept)
    assert "mistral" in expected.models and "llama 3" in expected.models  # names stripped, inner spaces kept
    fast = rio.read_columns(rio._mapped(path), fmt, anony_only)
    assert fast is not None, "a regular file fell back to the row reader"
    battles_read = read_battles(path, fmt, anony_only=anony_only)
    assert battles_read.counts() == expected
    assert len(battles_read) == len(kept)
    assert battles_read.model_a == [r["model_a"].strip() for r in kept]  # in file order
    assert battles_read.model_b == [r["model_b"].strip() for r in kept]


@pytest.mark.parametrize("sep", [*LINE_SEPARATORS, "\r"])
def test_jsonl_lines_end_at_newlines_only(tmp_path, sep):
    """Issue 16: our own export holds answers with U+2028 and friends; str.splitlines split inside them."""
    records = [
        {"model_a": f"gpt{sep}4", "model_b": "claude", "winner": "model_a", "answer": f"one{sep}two"},
        {"model_a": "claude", "model_b": f"gpt{sep}4", "winner": "tie", "answer": f"{sep}"},
        {"model_a": "llama", "model_b": "claude", "winner": "model_b", "answer": "plain"},
    ]
    escaped = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)  # control characters as \\u000b
    raw = escaped.replace(json.dumps(sep)[1:-1], sep) if json.dumps(sep, ensure_ascii=False)[1:-1] != sep else escaped
    for text in {escaped, raw}:  # and every separator raw inside the strings
        path = tmp_path / "export.jsonl"
        path.write_text(text, encoding="utf-8", newline="")
        counts = read_battles(path).counts()
        assert counts == by_rows(path, "battles-jsonl")
        assert counts.n_votes == 3
        assert counts.models == tuple(sorted(["claude", f"gpt{sep}4", "llama"]))
        as_list = tmp_path / "export.json"
        as_list.write_text("[\n" + ",\n".join(text.split("\n")[:-1]) + "\n]", encoding="utf-8", newline="")
        assert read_battles(as_list).counts() == counts


@pytest.mark.parametrize("sep", LINE_SEPARATORS)
def test_csv_fields_keep_line_separators(tmp_path, sep):
    path = tmp_path / "b.csv"
    path.write_text(f'model_a,model_b,winner,note\ngpt,claude,model_a,"x{sep}y"\nclaude,llama,tie,{sep}\n', newline="")
    counts = read_battles(path).counts()
    assert counts.n_votes == 2 and counts.models == ("claude", "gpt", "llama")
    assert counts == by_rows(path, "csv")


def test_the_cli_reads_an_export_with_u2028_end_to_end(tmp_path):
    path = tmp_path / "battles.jsonl"
    line = {"model_a": "a", "model_b": "b", "winner": "model_a", "conversation_a": [{"content": "x\u2028y\u2029z\x85"}]}
    path.write_text(json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ratings",
            "fit",
            str(path),
            "--format",
            "battles-jsonl",
            "--json",
            "--intervals",
            "none",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert {r["model"] for r in json.loads(result.stdout)} == {"a", "b"}


def _bad_far_down(fmt: str, bad: dict | str, n_good: int = 1500) -> tuple[str, int]:
    good = {"model_a": "a", "model_b": "b", "winner": "tie", "extra": {"x": [1, 2]}}
    if fmt == "battles-jsonl":
        lines = [json.dumps(good)] * n_good + [bad if isinstance(bad, str) else json.dumps(bad)] + [json.dumps(good)]
        return "\n".join(lines) + "\n", n_good + 1
    body = [json.dumps(good)] * n_good + [bad if isinstance(bad, str) else json.dumps(bad)] + [json.dumps(good)]
    return "[\n" + ",\n".join(body) + "\n]\n", n_good + 2


@pytest.mark.parametrize("fmt", ["battles-jsonl", "fastchat-json"])
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"model_a": "a", "model_b": "b", "winner": "model_c"}, "invalid winner 'model_c'"),
        ({"model_a": "a", "model_b": " a ", "winner": "tie"}, "model 'a' battles itself"),
        ({"model_a": "a", "winner": "tie"}, "missing or empty 'model_b'"),
        ({"model_a": 7, "model_b": "b", "winner": "tie"}, "missing or empty 'model_a'"),
        ({"model_a": "  ", "model_b": "b", "winner": "tie"}, "missing or empty 'model_a'"),
        ('{"model_a": "a", "model_b": "b", "winner": tie}', "invalid JSON"),
        ("[1, 2]", "expected an object"),
    ],
)
def test_a_bad_record_far_down_is_reported_with_its_line(tmp_path, fmt, bad, message):
    text, line = _bad_far_down(fmt, bad)
    path = tmp_path / ("bad.jsonl" if fmt == "battles-jsonl" else "bad.json")
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_battles(path)
    assert str(info.value).startswith(f"{path}:{line}: {message}")


def test_a_bad_csv_row_far_down_is_reported_with_its_line(tmp_path):
    rows = ["model_a,model_b,winner"] + ["a,b,tie"] * 2000
    for bad, message in (
        ("a,b,model_c", "invalid winner 'model_c'"),
        ("a,b", "missing or empty 'winner'"),
        ("a,b,tie,extra", "more fields than the header"),
        ("a,,tie", "missing or empty 'model_b'"),
        ("b,b,tie", "model 'b' battles itself"),
    ):
        path = tmp_path / "bad.csv"
        path.write_text("\n".join([*rows, bad, "a,b,tie"]) + "\n")
        with pytest.raises(InputError) as info:
            read_battles(path)
        assert str(info.value).startswith(f"{path}:2002: {message}")


def test_answers_with_braces_and_code_stay_on_the_fast_path(tmp_path, no_row_reader):
    """LaTeX (}{), code (} {) and JSON-looking text inside answers are no reason to read row by row."""
    texts = ["\\frac{a}{b}", "if (x) { y } { z }", '{"model_a": "x"}\n{"model_b": "y"}', "}\n{"]
    records = [{"model_a": "a", "model_b": "b", "winner": "tie", "answer": t} for t in texts]
    path = tmp_path / "b.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert read_battles(path).counts().n_votes == len(texts)
    listed = tmp_path / "b.json"
    listed.write_text(json.dumps(records, indent=2))
    assert read_battles(listed).counts().n_votes == len(texts)


def test_a_repeated_csv_column_counts_as_the_row_reader_does(tmp_path):
    path = tmp_path / "b.csv"
    path.write_text("model_a,model_b,winner,model_a\nx,y,tie,z\n")
    assert read_battles(path).counts() == by_rows(path, "csv")
    assert read_battles(path).counts().models == ("y", "z")  # csv.DictReader keeps the last model_a


def test_jsonl_blank_lines_are_skipped_and_two_records_on_a_line_are_an_error(tmp_path):
    good = json.dumps({"model_a": "a", "model_b": "b", "winner": "tie"})
    path = tmp_path / "b.jsonl"
    path.write_text(f"{good}\n\n  \r\n{good}\n")
    assert read_battles(path).counts().n_votes == 2
    path.write_text(f"{good}\n{good} {good}\n")
    with pytest.raises(InputError) as info:
        read_battles(path)
    assert info.value.line == 2 and "invalid JSON" in str(info.value)


@pytest.mark.parametrize(("fmt", "name"), FORMATS)
def test_anony_values_that_drop_a_record(tmp_path, fmt, name):
    values = [True, False, "false", "False", "0", 0, 0.0, 1, "true", None, "no"]
    kept_by_old_rule = [v for v in values if v not in (False, "false", "False", "0", 0)]
    records = [{"model_a": "a", "model_b": "b", "winner": "tie", "anony": v} for v in values]
    if fmt == "csv":
        records = [dict(r, anony="" if r["anony"] is None else str(r["anony"])) for r in records]
        kept_by_old_rule = [r for r in records if r["anony"] not in ("false", "False", "0")]
    path = write(tmp_path / name, records, fmt)
    assert read_battles(path, anony_only=True).counts().n_votes == len(kept_by_old_rule)
    assert read_battles(path).counts().n_votes == len(values)


def test_files_that_are_not_utf8_or_not_files(tmp_path):
    for name in ("b.csv", "b.jsonl", "b.json"):
        path = tmp_path / name
        path.write_bytes(b'model_a,model_b,winner\na,b,tie\n\xff\xfe"bad\n')
        with pytest.raises(InputError, match="not UTF-8 text"):
            read_battles(path)
    with pytest.raises(InputError, match="cannot read file"):
        read_battles(tmp_path, "csv")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="no battles found"):
        read_battles(empty)


def test_ratings_imports_no_django():
    code = (
        "import sys, ratings, ratings.cli, ratings.io, ratings.columnar\n"
        "print(any(m.startswith('django') for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.parametrize(("fmt", "name"), FORMATS[1:])
@pytest.mark.parametrize("anony_only", [False, True])
@pytest.mark.parametrize(("crlf", "indent", "bom"), [(False, 2, False), (True, 2, True), (False, None, False)])
def test_json_read_in_small_pieces_gives_the_same_battles(tmp_path, fmt, name, anony_only, crlf, indent, bom):
    records = battles(300)
    if indent is None:
        text = json.dumps(records) if fmt == "fastchat-json" else "".join(json.dumps(r) + "\n" for r in records)
        path = tmp_path / name
        path.write_text(text)
    else:
        path = write(tmp_path / name, records, fmt, crlf=crlf, bom=bom)
    data = rio._mapped(path)
    pieces = (columnar._json_list_pieces if fmt == "fastchat-json" else columnar._json_lines_pieces)(data, 1000)
    assert len(pieces) == (1 if indent is None and fmt == "fastchat-json" else pytest.approx(len(data) / 1000, rel=0.5))
    whole = rio.read_columns(data, fmt, anony_only, chunk=len(data) + 1)
    small = rio.read_columns(data, fmt, anony_only, chunk=1000)
    assert whole is not None and small is not None
    assert [small[0][i] for i in small[1]] == [whole[0][i] for i in whole[1]]
    assert [small[0][i] for i in small[2]] == [whole[0][i] for i in whole[2]]
    np.testing.assert_array_equal(small[3], whole[3])
    assert Battles(*small).counts() == by_rows(path, fmt, anony_only)


def test_a_json_list_cut_inside_a_record_is_read_whole(tmp_path):
    """A nested list laid out like the records (``,`` newline, two spaces, ``{``) looks like a cut between
    records: the pieces then fail to decode and the list is decoded whole, to the same battles."""
    record = '{"model_a": "a", "model_b": "b", "winner": "tie", "nested": [1,\n  {"x": "y"}]}'
    path = tmp_path / "b.json"
    path.write_text("[\n  " + ",\n  ".join([record] * 200) + "\n]\n")
    data = rio._mapped(path)
    assert len(columnar._json_list_pieces(data, 1000)) > 1
    small = rio.read_columns(data, "fastchat-json", False, chunk=1000)
    assert small is not None and len(small[3]) == 200
    assert read_battles(path).counts() == by_rows(path, "fastchat-json")


@pytest.mark.parametrize(("fmt", "name"), FORMATS[1:])
def test_names_and_spellings_first_seen_in_a_later_piece(tmp_path, fmt, name):
    """Pieces after the first are decoded with the names and winners seen so far as Literal types; a new
    one makes the piece decode again with plain strings, and a bad record is still refused."""
    first = [{"model_a": "a", "model_b": "b", "winner": "model_a", "x": i} for i in range(60)]
    later = [{"model_a": "c", "model_b": "a", "winner": " Model_B ", "x": i} for i in range(60)]
    path = write(tmp_path / name, first + later + first, fmt)
    data = rio._mapped(path)
    small = rio.read_columns(data, fmt, False, chunk=800)
    assert small is not None
    assert Battles(*small).counts() == by_rows(path, fmt)
    assert Battles(*small).model_a == ["a"] * 60 + ["c"] * 60 + ["a"] * 60
    bad = write(tmp_path / f"bad-{name}", [*first, {"model_a": 7, "model_b": "b", "winner": "tie"}, *first], fmt)
    assert rio.read_columns(rio._mapped(bad), fmt, False, chunk=800) is None
