"""``python -m ratings fit`` end to end, in a subprocess, for every input format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ratings.io import InputError, read_battles

REPO = Path(__file__).resolve().parents[2]
BATTLES = [
    ("gpt", "llama", "model_a"),
    ("gpt", "claude", "tie"),
    ("claude", "llama", "model_a"),
    ("llama", "gpt", "model_b"),
    ("claude", "gpt", "tie (bothbad)"),
    ("llama", "claude", "model_b"),
    ("claude", "gpt", "model_a"),
    ("llama", "gpt", "model_a"),
    ("llama", "claude", "model_a"),
] * 10


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ratings", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def write_csv(path: Path) -> Path:
    lines = ["question_id,model_a,model_b,winner"] + [f"q{i},{a},{b},{w}" for i, (a, b, w) in enumerate(BATTLES)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_jsonl(path: Path) -> Path:
    path.write_text(
        "".join(
            json.dumps({"model_a": a, "model_b": b, "winner": w, "vote_id": i}) + "\n"
            for i, (a, b, w) in enumerate(BATTLES)
        )
    )
    return path


def write_fastchat(path: Path) -> Path:
    records = [
        {"model_a": a, "model_b": b, "winner": w, "anony": True, "language": "English", "turn": 1}
        for a, b, w in BATTLES
    ]
    records.append({"model_a": "gpt", "model_b": "secret", "winner": "model_b", "anony": False})
    path.write_text(json.dumps(records, indent=2))
    return path


def test_all_formats_give_the_same_json_leaderboard(tmp_path):
    outputs = []
    for path in (write_csv(tmp_path / "b.csv"), write_jsonl(tmp_path / "b.jsonl"), write_fastchat(tmp_path / "b.json")):
        args = ["fit", str(path), "--json", "--bootstrap", "50", "--seed", "1"]
        if path.suffix == ".json":
            args.append("--anony-only")
        result = run(*args)
        assert result.returncode == 0, result.stderr
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1] == outputs[2]
    rows = outputs[0]
    assert [r["model"] for r in rows] == ["claude", "gpt", "llama"]
    assert {"model", "rating", "ci_low", "ci_high", "rank", "votes", "wins", "losses", "ties"} <= set(rows[0])
    claude = rows[0]
    counted = (claude["votes"], claude["wins"], claude["losses"], claude["ties"], claude["both_bad"])
    assert counted == (60, 30, 10, 10, 10)


def test_table_output_options_and_explicit_format(tmp_path):
    path = write_csv(tmp_path / "battles.txt")
    result = run(
        "fit",
        str(path),
        "--format",
        "csv",
        "--ties",
        "half",
        "--both-bad",
        "exclude",
        "--intervals",
        "sandwich",
        "--anchor",
        "gpt=1200",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["rank", "model", "rating"]
    gpt = next(line for line in lines if " gpt " in line)
    assert "1200.0" in gpt
    assert "ties as half wins" in result.stdout and "sandwich" in result.stdout
    assert "claude" in lines[1]


def test_fastchat_records_with_anony_false_count_unless_asked(tmp_path):
    path = write_fastchat(tmp_path / "clean_battle.json")
    everything = json.loads(run("fit", str(path), "--json", "--intervals", "none").stdout)
    assert "secret" in [r["model"] for r in everything]
    anonymous = json.loads(run("fit", str(path), "--json", "--intervals", "none", "--anony-only").stdout)
    assert "secret" not in [r["model"] for r in anonymous]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bad.csv", "model_a,model_b,winner\na,b,model_a\na,b,model_c\n", "bad.csv:3: invalid winner 'model_c'"),
        ("bad.csv", "model_a,winner\na,model_a\n", "bad.csv:1: missing column(s) model_b"),
        (
            "bad.jsonl",
            '{"model_a": "a", "model_b": "b", "winner": "tie"}\n\n{"model_a": "a", "model_b"\n',
            "bad.jsonl:3: invalid JSON",
        ),
        ("bad.jsonl", '{"model_a": "a", "model_b": "a", "winner": "tie"}\n', "bad.jsonl:1: model 'a' battles itself"),
        (
            "bad.json",
            '[\n {"model_a": "a", "model_b": "b", "winner": "tie"},\n {"model_a": "a", "winner": "tie"}\n]',
            "bad.json:3: missing or empty 'model_b'",
        ),
        ("bad.json", '[\n {"model_a": "a", "model_b": "b", "winner": "tie"}\n {"x": 1}]', "bad.json:3: expected ','"),
        ("bad.json", '{"model_a": "a"}', "bad.json:1: expected a JSON list"),
        ("empty.csv", "model_a,model_b,winner\n", "empty.csv: no battles found"),
        ("battles.xlsx", "whatever", "cannot tell the format"),
    ],
)
def test_malformed_input_gives_a_located_error_and_exit_2(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError) as info:
        read_battles(path)
    assert expected in str(info.value)
    if name == "bad.csv" and "model_c" in content:  # one subprocess run is enough to check the exit path
        result = run("fit", str(path))
        assert result.returncode == 2
        assert expected in result.stderr and "Traceback" not in result.stderr
        assert result.stdout == ""


def test_bad_options_exit_2_without_traceback(tmp_path):
    path = write_csv(tmp_path / "b.csv")
    for args in (["--anchor", "gpt"], ["--anchor", "nobody=1000"], ["--ties", "third"]):
        result = run("fit", str(path), "--intervals", "none", *args)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr and "error" in result.stderr
    missing = run("fit", str(tmp_path / "missing.csv"))
    assert missing.returncode == 2 and "cannot read file" in missing.stderr
