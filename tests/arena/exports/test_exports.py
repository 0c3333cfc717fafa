"""Exports: the records of every format, filters, pairs from rankings, streaming in constant memory."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arena.core.errors import ArenaError
from arena.exports import formats, sinks
from arena.exports.filters import ExportFilters
from arena.exports.formats import ranking_pairs, tiers_from_scores, voter_hash
from arena.exports.writer import write_export
from arena.models import Battle, Prompt, Response, Vote, Voter
from tests.factories import make_campaign

FASTCHAT_FIELDS = {
    "question_id",
    "model_a",
    "model_b",
    "winner",
    "judge",
    "conversation_a",
    "conversation_b",
    "turn",
    "anony",
    "language",
    "tstamp",
    "conv_metadata",
}
OUR_FIELDS = {
    "campaign",
    "battle_id",
    "position_a",
    "verdict",
    "dimension",
    "scores",
    "duration_ms",
    "category",
    "voter_id",
    "flagged",
    "language_code",
}


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path):
    settings.ARENA_EXPORT_DIR = tmp_path / "exports"
    return settings.ARENA_EXPORT_DIR


def add_vote(campaign, voter, prompt, left, right, verdict, *, scores=None, flagged=False, when=None, ms=1500):
    """A voted battle written directly: ``left`` and ``right`` are model names."""
    responses = {r.model.name: r for r in Response.objects.filter(prompt=prompt).select_related("model")}
    left_r, right_r = responses[left], responses[right]
    battle = Battle.objects.create(
        campaign=campaign,
        voter=voter,
        prompt=prompt,
        left=left_r,
        right=right_r,
        status=Battle.Status.VOTED,
        flagged=flagged,
    )
    winner = {"left": left_r.model, "right": right_r.model}.get(verdict)
    return Vote.objects.create(
        battle=battle,
        campaign=campaign,
        voter=voter,
        prompt=prompt,
        left_model=left_r.model,
        right_model=right_r.model,
        winner=winner,
        verdict=verdict,
        scores=scores or {},
        duration_ms=ms,
        created_at=when or datetime(2025, 3, 10, 12, tzinfo=UTC),
    )


@pytest.fixture
def voted(db):
    """Four votes on prompt 0, one of each verdict, with Beta on the left first (not the id order)."""
    campaign = make_campaign(slug="exp", dimensions=("helpfulness",))
    p0, p1, _ = campaign.prompts.all()
    Prompt.objects.filter(pk=p0.pk).update(language="en")
    alice, bob = Voter.objects.create(), Voter.objects.create()
    votes = [
        add_vote(campaign, alice, p0, "Beta", "Alpha", "left", scores={"helpfulness": {"left": 2, "right": 5}}),
        add_vote(campaign, alice, p0, "Alpha", "Gamma", "right", scores={"helpfulness": {"left": 4}}),
        add_vote(campaign, bob, p0, "Gamma", "Beta", "tie"),
        add_vote(campaign, bob, p1, "Alpha", "Beta", "both_bad"),
    ]
    return campaign, votes


def export(campaign, fmt, tmp_path, **filters):
    path = tmp_path / f"out.{fmt}"
    stats = write_export(campaign, fmt, ExportFilters.parse(filters), path)
    return path, stats


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def answer(prompt_index: int, model: str) -> str:
    return f"Answer number {['Alpha', 'Beta', 'Gamma'].index(model)} to question {prompt_index}."


def test_battles_carry_the_public_arena_fields_with_model_a_on_the_left(voted, tmp_path, settings):
    campaign, votes = voted
    path, stats = export(campaign, "battles-jsonl", tmp_path)
    records = read_jsonl(path)
    assert stats.rows_written == len(records) == 4
    assert all(set(r) == FASTCHAT_FIELDS | OUR_FIELDS for r in records)
    first, second, tie, both_bad = records
    assert (first["model_a"], first["model_b"], first["winner"]) == ("Beta", "Alpha", "model_a")
    assert (second["model_a"], second["model_b"], second["winner"]) == ("Alpha", "Gamma", "model_b")
    assert tie["winner"] == "tie" and both_bad["winner"] == "tie (bothbad)"
    for record, vote in zip(records, votes, strict=True):
        named = {"model_a": record["model_a"], "model_b": record["model_b"]}.get(record["winner"])
        assert named == (vote.winner.name if vote.winner else None)
        assert record["battle_id"] == vote.battle_id and record["position_a"] == "left"
        assert record["tstamp"] == vote.created_at.timestamp() and isinstance(record["tstamp"], float)
        assert record["anony"] is True and record["turn"] == 1 and record["campaign"] == "exp"
    question = [{"role": "user", "content": "Question number 0?", "num_tokens": 5}]
    assert first["conversation_a"] == [*question, {"role": "assistant", "content": answer(0, "Beta"), "num_tokens": 8}]
    assert first["conversation_b"] == [*question, {"role": "assistant", "content": answer(0, "Alpha"), "num_tokens": 8}]
    assert first["question_id"] == "exp-p0" and first["language"] == "English" and first["language_code"] == "en"
    assert both_bad["language"] == both_bad["language_code"] == "unknown"
    assert first["category"] == "facts" and both_bad["category"] == "coding" and first["duration_ms"] == 1500
    assert first["scores"] == {"helpfulness": {"model_a": 2, "model_b": 5}}
    assert second["scores"] == {"helpfulness": {"model_a": 4, "model_b": None}}


def test_voter_ids_are_salted_hashes_never_the_database_ids(voted, tmp_path, settings):
    campaign, votes = voted
    records = read_jsonl(export(campaign, "battles-jsonl", tmp_path)[0])
    alice, bob = votes[0].voter, votes[2].voter
    assert records[0]["voter_id"] == records[1]["voter_id"] == records[0]["judge"]
    assert records[2]["voter_id"] != records[0]["voter_id"]
    text = json.dumps(records)
    for voter in (alice, bob):
        assert voter.public_id not in text
        assert records[0]["voter_id"] not in (str(voter.pk), voter.public_id)
    assert records[0]["voter_id"] == voter_hash(settings.ARENA_IP_SALT.encode(), alice.pk)
    settings.ARENA_IP_SALT = "another-salt"
    assert read_jsonl(export(campaign, "battles-jsonl", tmp_path)[0])[0]["voter_id"] != records[0]["voter_id"]


def test_the_rating_cli_and_fastchat_style_readers_accept_the_battle_files(voted, tmp_path, capsys):
    from ratings.cli import main

    campaign, _ = voted
    jsonl, _ = export(campaign, "battles-jsonl", tmp_path)
    assert main(["fit", str(jsonl), "--format", "battles-jsonl", "--intervals", "none", "--json"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert {row["model"] for row in board} == {"Alpha", "Beta", "Gamma"}
    # FastChat's elo_analysis.py reads --clean-battle-file with pandas.read_json: one JSON list.
    listed, _ = export(campaign, "battles-json", tmp_path)
    battles = json.loads(listed.read_text(encoding="utf-8"))
    assert battles == read_jsonl(jsonl)
    assert main(["fit", str(listed), "--format", "fastchat-json", "--intervals", "none", "--anony-only"]) == 0
    for battle in sorted(battles, key=lambda b: b["tstamp"]):  # what elo_analysis.py relies on
        assert battle["anony"] is True and isinstance(battle["language"], str) and isinstance(battle["judge"], str)
        assert battle["winner"] in {"model_a", "model_b", "tie", "tie (bothbad)"}
        messages = battle["conversation_a"] + battle["conversation_b"]
        assert all(set(m) == {"role", "content", "num_tokens"} for m in messages)


def test_pairs_leave_out_ties_and_both_bad_and_follow_the_winner_across_sides(voted, tmp_path):
    campaign, _ = voted
    path, stats = export(campaign, "trl-jsonl", tmp_path)
    pairs = read_jsonl(path)
    assert stats.rows_done == 4 and stats.rows_written == len(pairs) == 2
    assert stats.skipped == {"tie, both bad or unscored": 2}
    question = [{"role": "user", "content": "Question number 0?"}]
    beta_wins, gamma_wins = pairs
    assert beta_wins["prompt"] == question
    assert beta_wins["chosen"] == [{"role": "assistant", "content": answer(0, "Beta")}]
    assert beta_wins["rejected"] == [{"role": "assistant", "content": answer(0, "Alpha")}]
    assert (gamma_wins["chosen_model"], gamma_wins["rejected_model"]) == ("Gamma", "Alpha")
    assert gamma_wins["chosen"][0]["content"] == answer(0, "Gamma")
    assert "margin" not in beta_wins and beta_wins["question_id"] == "exp-p0"

    openai = read_jsonl(export(campaign, "openai-jsonl", tmp_path)[0])
    assert openai[0] == {
        "input": {"messages": question},
        "preferred_output": [{"role": "assistant", "content": answer(0, "Beta")}],
        "non_preferred_output": [{"role": "assistant", "content": answer(0, "Alpha")}],
    }
    assert len(openai) == 2


def test_parquet_pairs_have_nested_message_columns_in_row_groups(voted, tmp_path, monkeypatch):
    campaign, _ = voted
    monkeypatch.setattr(sinks, "PARQUET_BATCH_ROWS", 1)
    path, stats = export(campaign, "parquet", tmp_path, margin="scores")
    table = pq.read_table(path)
    message = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    assert table.schema.field("prompt").type == message
    assert table.schema.field("chosen").type == message and table.schema.field("rejected").type == message
    assert table.schema.field("margin").type == pa.float64()
    assert pq.ParquetFile(path).metadata.num_row_groups == 2 == table.num_rows == stats.rows_written
    rows = table.to_pylist()
    trl = read_jsonl(export(campaign, "trl-jsonl", tmp_path, margin="scores")[0])
    assert rows == trl
    assert rows[0]["chosen"] == [{"role": "assistant", "content": answer(0, "Beta")}]


def test_a_dimension_decides_pairs_and_battles_by_its_scores(voted, tmp_path):
    campaign, _ = voted
    # First vote: verdict "left" (Beta) but helpfulness left 2 < right 5, so Alpha is chosen.
    pairs = read_jsonl(export(campaign, "trl-jsonl", tmp_path, dimension="helpfulness", margin="scores")[0])
    assert len(pairs) == 1
    assert (pairs[0]["chosen_model"], pairs[0]["rejected_model"]) == ("Alpha", "Beta")
    assert pairs[0]["margin"] == 0.75  # (5 - 2) / (5 - 1)
    battles = read_jsonl(export(campaign, "battles-jsonl", tmp_path, dimension="helpfulness")[0])
    assert [(b["model_a"], b["winner"], b["dimension"]) for b in battles] == [("Beta", "model_b", "helpfulness")]
    with pytest.raises(ArenaError, match="no dimension"):
        export(campaign, "trl-jsonl", tmp_path, dimension="honesty")


def test_agreement_margins_and_minimum_votes_per_item(db, tmp_path):
    campaign = make_campaign(slug="agree")
    p0, p1, _ = campaign.prompts.all()
    voters = [Voter.objects.create() for _ in range(4)]
    add_vote(campaign, voters[0], p0, "Alpha", "Beta", "left")
    add_vote(campaign, voters[1], p0, "Beta", "Alpha", "right")  # Alpha again, on the other side
    add_vote(campaign, voters[2], p0, "Alpha", "Beta", "right")  # Beta
    add_vote(campaign, voters[3], p0, "Beta", "Alpha", "tie")
    add_vote(campaign, voters[0], p1, "Alpha", "Gamma", "left")  # an item with a single vote
    pairs = read_jsonl(export(campaign, "trl-jsonl", tmp_path, margin="agreement")[0])
    # (2 votes for Alpha - 1 for Beta) / 4 votes on the item; 1 / 1 on the item with a single vote.
    assert [(p["chosen_model"], p["margin"]) for p in pairs] == [
        ("Alpha", 0.25),
        ("Alpha", 0.25),
        ("Beta", -0.25),
        ("Alpha", 1.0),
    ]
    path, stats = export(campaign, "trl-jsonl", tmp_path, min_votes=2)
    assert stats.rows_total == 4 and len(read_jsonl(path)) == 3
    battles = read_jsonl(export(campaign, "battles-jsonl", tmp_path, min_votes=5)[0])
    assert battles == []


def test_filters_select_dates_categories_flagged_battles_and_excluded_voters(db, tmp_path):
    campaign = make_campaign(slug="filt")
    p0, p1, _ = campaign.prompts.all()  # categories: facts, coding
    good, cheat = Voter.objects.create(), Voter.objects.create(excluded=True)
    day = datetime(2025, 5, 1, 9, tzinfo=UTC)
    ids = {
        "may1": add_vote(campaign, good, p0, "Alpha", "Beta", "left", when=day).battle_id,
        "may2": add_vote(campaign, good, p1, "Alpha", "Beta", "left", when=day + timedelta(days=1)).battle_id,
        "may3": add_vote(campaign, good, p0, "Beta", "Gamma", "left", when=day + timedelta(days=2)).battle_id,
        "flag": add_vote(campaign, good, p0, "Alpha", "Gamma", "left", when=day, flagged=True).battle_id,
        "cheat": add_vote(campaign, cheat, p0, "Alpha", "Gamma", "left", when=day).battle_id,
    }

    def battle_ids(**filters):
        return {r["battle_id"] for r in read_jsonl(export(campaign, "battles-jsonl", tmp_path, **filters)[0])}

    assert battle_ids() == {ids["may1"], ids["may2"], ids["may3"]}
    assert battle_ids(since="2025-05-02") == {ids["may2"], ids["may3"]}
    assert battle_ids(until="2025-05-02") == {ids["may1"], ids["may2"]}  # a bare date includes that day
    assert battle_ids(until="2025-05-02T00:00:00Z") == {ids["may1"]}
    assert battle_ids(category="coding") == {ids["may2"]}
    assert battle_ids(include_flagged=True) == {ids["may1"], ids["may2"], ids["may3"], ids["flag"]}
    assert ids["cheat"] in battle_ids(include_excluded=True)
    with pytest.raises(ArenaError, match="before"):
        ExportFilters.parse({"since": "2025-05-03", "until": "2025-05-01"})
    with pytest.raises(ArenaError, match="not a date"):
        ExportFilters.parse({"since": "yesterday"})
    with pytest.raises(ArenaError, match="Unknown"):
        ExportFilters.parse({"voter": "x"})


def test_a_ranking_of_n_responses_expands_to_n_choose_2_pairs():
    assert list(ranking_pairs([["a"], ["b"], ["c"], ["d"]])) == [
        ("a", "b", 1),
        ("a", "c", 2),
        ("a", "d", 3),
        ("b", "c", 1),
        ("b", "d", 2),
        ("c", "d", 1),
    ]
    ranking = [[i] for i in range(7)]
    assert len(list(ranking_pairs(ranking))) == 21
    # Equal ranks form no pair with one another; a tie of two gives nothing.
    assert list(ranking_pairs([["a", "b"], ["c"]])) == [("a", "c", 1), ("b", "c", 1)]
    assert list(ranking_pairs([["a", "b"]])) == []
    assert tiers_from_scores([("x", 3), ("y", 5), ("z", 3), ("w", None)]) == [["y"], ["x", "z"]]


def test_leaderboards_come_from_the_stored_snapshots_never_recomputed(db, tmp_path, monkeypatch):
    from arena.leaderboards.models import LeaderboardSnapshot
    from arena.leaderboards.snapshots import compute_snapshots
    from ratings import leaderboard
    from tests.arena.leaderboards.test_leaderboards import cast_votes

    campaign = make_campaign(slug="lb", dimensions=("helpfulness",), prompts=4)
    with pytest.raises(ArenaError, match="No leaderboard"):
        export(campaign, "leaderboard-csv", tmp_path)
    cast_votes(campaign, 20, scored=True)
    compute_snapshots(campaign)

    def no_recompute(*args, **kwargs):
        raise AssertionError("an export must not recompute a leaderboard")

    monkeypatch.setattr(leaderboard, "compute_leaderboard", no_recompute)
    overall = LeaderboardSnapshot.objects.get(campaign=campaign, dimension="", category="", method="davidson")
    path, stats = export(campaign, "leaderboard-csv", tmp_path)
    import csv

    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert list(rows[0])[:8] == ["dimension", "category", "method", "rank", "model", "rating", "ci_low", "ci_high"]
    snapshots = LeaderboardSnapshot.objects.filter(campaign=campaign, method="davidson").count()
    assert len(rows) == stats.rows_written == 3 * snapshots and snapshots >= 4
    first = next(r for r in rows if r["dimension"] == "" and r["category"] == "")
    expected = overall.data["rows"][0]
    assert (first["model"], float(first["rating"]), float(first["win_rate"])) == (
        expected["model"],
        expected["rating"],
        expected["win_rate"],
    )
    assert {r["dimension"] for r in rows} == {"", "helpfulness"}

    document = json.loads(export(campaign, "leaderboard-json", tmp_path, dimension="helpfulness")[0].read_text())
    (board,) = document["leaderboards"]
    assert board["dimension"] == "helpfulness" and len(board["rows"]) == 3
    assert {"rating", "ci_low", "ci_high", "rank", "votes", "win_rate"} <= set(board["rows"][0])
    with pytest.raises(ArenaError, match="snapshots"):
        export(campaign, "leaderboard-json", tmp_path, since="2025-01-01")


def test_a_failed_export_leaves_no_file_behind(voted, tmp_path, monkeypatch):
    campaign, _ = voted

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(formats, "battle_line", broken)
    with pytest.raises(RuntimeError):
        export(campaign, "battles-jsonl", tmp_path)
    assert [p.name for p in tmp_path.iterdir() if "out.battles" in p.name] == []  # neither the file nor a temp


def test_exports_stream_in_constant_memory(db, tmp_path, django_assert_max_num_queries):
    """A few thousand votes with long answers: the export's peak memory is a small part of the file."""
    campaign = make_campaign(slug="big", prompts=2)
    long_text = "A long answer with some *Markdown* and Unicode: é, 漢字. " * 40
    Response.objects.filter(prompt__campaign=campaign).update(content=long_text)
    voters = Voter.objects.bulk_create([Voter(public_id=f"v{i}") for i in range(50)])
    responses = list(Response.objects.filter(prompt__campaign=campaign).order_by("id"))
    battles, votes = [], []
    when = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(3000):
        left, right = responses[i % 3], responses[(i + 1) % 3]
        voter = voters[i % 50]
        battle = Battle(
            id=f"b{i}",
            campaign=campaign,
            voter=voter,
            prompt_id=left.prompt_id,
            left=left,
            right=right,
            status=Battle.Status.VOTED,
        )
        battles.append(battle)
        votes.append(
            Vote(
                battle=battle,
                campaign=campaign,
                voter=voter,
                prompt_id=left.prompt_id,
                left_model_id=left.model_id,
                right_model_id=right.model_id,
                winner_id=left.model_id,
                verdict="left",
                scores={},
                duration_ms=i,
                created_at=when,
            )
        )
    Battle.objects.bulk_create(battles, batch_size=1000)
    Vote.objects.bulk_create(votes, batch_size=1000)

    for fmt in ("battles-jsonl", "trl-jsonl"):
        path = tmp_path / f"big.{fmt}"
        tracemalloc.start()
        try:
            with django_assert_max_num_queries(15):
                stats = write_export(campaign, fmt, ExportFilters(), path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        size = path.stat().st_size
        assert stats.rows_written == 3000 and size > 5_000_000
        assert peak < size / 4, f"{fmt}: peak {peak:,} bytes for a {size:,}-byte file"
