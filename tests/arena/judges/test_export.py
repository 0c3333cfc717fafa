"""The battles export's source filter: human votes by default, a judge's verdicts or both on request."""

from __future__ import annotations

import json

import pytest

from arena.core.errors import ArenaError
from arena.exports.filters import ExportFilters
from arena.exports.writer import write_export
from arena.judges import actions
from arena.judges.models import Judge
from arena.models import Battle, Item, ModelEntry, Voter
from arena.services.votes import record_vote
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign_with_judge():
    campaign = make_campaign(slug="exp", models=("Alpha", "Beta"), prompts=2, dimensions=("helpfulness",))
    item = Item.objects.filter(campaign=campaign).first()
    voter = Voter.objects.create()
    battle = Battle.objects.create(
        campaign=campaign,
        voter=voter,
        prompt_id=item.prompt_id,
        item=item,
        left_id=item.response_lo_id,
        right_id=item.response_hi_id,
    )
    record_vote(battle.id, voter, "left")
    entry = ModelEntry.objects.create(
        name='Judge "J"', backend="static", backend_settings={"text": "helpfulness: A=5, B=2\nSo: [[A]]"}
    )
    Judge.objects.create(campaign=campaign, model=entry)
    actions.start(actions.judges_of("exp"))
    return campaign


def records(campaign, tmp_path, **filters) -> list[dict]:
    path = tmp_path / "battles.jsonl"
    write_export(campaign, "battles-jsonl", ExportFilters.parse(filters), path)
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_battles_export_holds_human_votes_only_unless_asked(campaign_with_judge, tmp_path):
    humans = records(campaign_with_judge, tmp_path)
    assert len(humans) == 1 and not humans[0]["battle_id"].startswith("judge-")
    judged = records(campaign_with_judge, tmp_path, source='judge:Judge "J"')
    assert len(judged) == 2
    assert {r["judge"] for r in judged} == {'Judge "J"'}  # FastChat's judge field names the judge
    assert {r["winner"] for r in judged} == {"tie"}  # always [[A]]: swapped disagreement
    assert judged[0]["scores"] == {"helpfulness": {"model_a": 3.5, "model_b": 3.5}}
    assert len(records(campaign_with_judge, tmp_path, source="all")) == 3


def test_bad_sources_are_refused(campaign_with_judge, tmp_path):
    with pytest.raises(ArenaError, match="no judge named"):
        records(campaign_with_judge, tmp_path, source="judge:Nobody")
    with pytest.raises(ArenaError, match="source"):
        ExportFilters.parse({"source": "robots"})
    with pytest.raises(ArenaError, match="battles only"):
        write_export(campaign_with_judge, "trl-jsonl", ExportFilters.parse({"source": "all"}), tmp_path / "p.jsonl")
