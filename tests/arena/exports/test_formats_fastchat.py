"""Our battles export carries every field FastChat's ``fastchat/serve/monitor/elo_analysis.py`` reads,
for each of its options, with the types and values that script expects.

What the script reads (from its source and ``rating_systems.py`` / ``clean_battle_data.py``), by option:

- always: ``model_a``, ``model_b``, ``winner`` (model_a, model_b, tie, tie (bothbad)), ``anony`` (a
  boolean: only anonymous battles count), ``tstamp`` (sorting, seconds since the epoch);
- ``--category long``: each message's ``num_tokens`` in ``conversation_a`` / ``conversation_b``,
  summed per side (768 or more is long); ``--category english`` / ``chinese``: ``language`` equal to
  "English" / "Chinese"; ``--langs``: ``language`` in a list; ``--exclude-unknown-lang``: ``language``
  containing "unknown";
- ``--style-control``: ``conv_metadata`` with ``sum_assistant_{a,b}_tokens``, ``header_count_{a,b}``,
  ``list_count_{a,b}`` and ``bold_count_{a,b}``, each an integer or an object of integers (summed);
- ``--daily-vote-per-user``: ``tstamp`` and ``judge``; ``--run-outlier-detect``: ``judge`` with the models
  and winner; ``--exclude-models``, ``--exclude-tie``: models and winner.

The checks below read the export as those code paths do (plain Python here; pandas is not a
dependency of Arena) and compare what each option would select with what we know the battles hold.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from arena.exports.filters import ExportFilters
from arena.exports.text_stats import StyleCounts, count_tokens, language_name
from arena.exports.writer import write_export
from arena.models import Battle, Prompt, Response, Voter
from tests.arena.exports.test_exports import add_vote
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db

STYLE_ELEMENTS = [f"{name}_{side}" for side in "ab" for name in ("header_count", "list_count", "bold_count")]
STYLE_ELEMENTS += ["sum_assistant_a_tokens", "sum_assistant_b_tokens"]
LONG = 768  # FastChat's threshold for --category long

STYLED = """# Plan
## Steps
1. Mix **flour** and __water__.
2. Bake.
- hot
- **very** hot

```python
# a comment, not a header
- not a list either
```
"""


@pytest.fixture
def export_dir(settings, tmp_path):
    settings.ARENA_EXPORT_DIR = tmp_path / "exports"


@pytest.fixture
def battles(db, tmp_path, export_dir):
    campaign = make_campaign(slug="fc", models=("Alpha", "Beta"), prompts=4)
    p_en, p_zh, p_none, p_live = campaign.prompts.order_by("external_id")
    Prompt.objects.filter(pk=p_en.pk).update(language="en")
    Prompt.objects.filter(pk=p_zh.pk).update(language="zh-CN")
    Prompt.objects.filter(pk=p_live.pk).update(language="EN")
    Response.objects.filter(prompt=p_en, model__name="Alpha").update(content=STYLED)
    Response.objects.filter(prompt=p_en, model__name="Beta").update(content="word " * 800)  # a long answer
    alice, bob = Voter.objects.create(), Voter.objects.create()
    day = datetime(2025, 5, 1, 9, tzinfo=UTC)
    add_vote(campaign, alice, p_en, "Alpha", "Beta", "left", when=day)
    add_vote(campaign, alice, p_zh, "Beta", "Alpha", "tie", when=day.replace(hour=10))
    add_vote(campaign, bob, p_none, "Alpha", "Beta", "both_bad", when=day.replace(hour=11))
    live = add_vote(campaign, bob, p_live, "Beta", "Alpha", "right", when=day.replace(hour=12))
    Battle.objects.filter(pk=live.battle_id).update(
        conversation={"user": ["Hi", "And **now**?"], "left": ["# Hello", "- a\n- b"], "right": ["Hey", "Now."]}
    )
    path = tmp_path / "battles.json"
    write_export(campaign, "battles-json", ExportFilters(), path)
    return json.loads(path.read_text(encoding="utf-8"))


def style_feature(metadata: dict, element: str) -> int:
    """How the style-control preprocessing turns one conv_metadata entry into a number."""
    value = metadata[element]
    return value if isinstance(value, int) else sum(value.values())


def is_long(battle: dict) -> bool:
    sides = (battle["conversation_a"], battle["conversation_b"])
    return any(sum(turn["num_tokens"] for turn in side) >= LONG for side in sides)


def test_every_field_the_analysis_reads_is_there_with_its_type(battles):
    assert len(battles) == 4
    for battle in battles:
        assert isinstance(battle["model_a"], str) and isinstance(battle["model_b"], str)
        assert battle["winner"] in {"model_a", "model_b", "tie", "tie (bothbad)"}
        assert battle["anony"] is True
        assert isinstance(battle["tstamp"], float) and isinstance(battle["judge"], str)
        assert isinstance(battle["language"], str) and isinstance(battle["turn"], int)
        for side in ("conversation_a", "conversation_b"):
            for turn in battle[side]:
                assert turn["role"] in {"user", "assistant"} and isinstance(turn["content"], str)
                assert isinstance(turn["num_tokens"], int) and turn["num_tokens"] == count_tokens(turn["content"])
        for element in STYLE_ELEMENTS:
            assert isinstance(style_feature(battle["conv_metadata"], element), int), element
    assert sorted(battles, key=lambda b: b["tstamp"]) == battles


def test_category_long_selects_the_battle_with_a_long_answer(battles):
    assert [b["question_id"] for b in battles if is_long(b)] == ["fc-p0"]


def test_category_english_chinese_and_langs_select_by_language_name(battles):
    languages = [b["language"] for b in battles]
    assert languages == ["English", "Chinese", "unknown", "English"]
    assert [b["language_code"] for b in battles] == ["en", "zh-CN", "unknown", "EN"]  # ours, as stored
    english = [b["question_id"] for b in battles if b["language"] == "English"]
    assert english == ["fc-p0", "fc-p3"]
    assert [b["question_id"] for b in battles if b["language"] == "Chinese"] == ["fc-p1"]
    assert [b for b in battles if "unknown" not in b["language"]] == [battles[0], battles[1], battles[3]]


def test_style_control_counts_each_sides_markdown_outside_code(battles):
    styled, _, _, live = battles
    meta = styled["conv_metadata"]
    assert meta["header_count_a"] == {"h1": 1, "h2": 1, "h3": 0, "h4": 0, "h5": 0, "h6": 0}
    assert meta["list_count_a"] == {"ordered": 2, "unordered": 2}
    assert meta["bold_count_a"] == {"**": 2, "__": 1}
    assert meta["sum_assistant_a_tokens"] == count_tokens(STYLED)
    assert meta["sum_assistant_b_tokens"] == 800 and style_feature(meta, "header_count_b") == 0
    # A live battle sums every assistant turn of each side.
    live_meta = live["conv_metadata"]
    assert style_feature(live_meta, "header_count_a") == 1 and style_feature(live_meta, "list_count_a") == 2
    assert live_meta["sum_assistant_a_tokens"] == count_tokens("# Hello") + count_tokens("- a\n- b")
    assert live_meta["sum_assistant_b_tokens"] == count_tokens("Hey") + count_tokens("Now.")
    assert [t["content"] for t in live["conversation_a"]] == ["Hi", "# Hello", "And **now**?", "- a\n- b"]


def test_daily_vote_limits_and_outlier_detection_see_one_judge_per_voter(battles):
    by_day: dict[tuple[str, str], int] = {}
    for battle in battles:
        day = datetime.fromtimestamp(battle["tstamp"], UTC).strftime("%Y-%m-%d")
        by_day[(day, battle["judge"])] = by_day.get((day, battle["judge"]), 0) + 1
    assert sorted(by_day.values()) == [2, 2]  # two voters, two votes each, one day


def test_the_counting_rules():
    assert count_tokens("") == 0 and count_tokens("Hello, world!") == 4
    assert count_tokens("你好") == 2 and count_tokens("internationalization") == 4
    counts = StyleCounts.of("####### seven hashes\n#no space\n* item\n10. tenth\n**not\nbold**")
    assert sum(counts.headers.values()) == 0 and counts.lists == {"ordered": 1, "unordered": 1}
    assert counts.bold == {"**": 0, "__": 0}
    assert [language_name(x) for x in ("en", "en-GB", "english", "pt_BR", "", "xx")] == [
        "English",
        "English",
        "English",
        "Portuguese",
        "unknown",
        "xx",
    ]
