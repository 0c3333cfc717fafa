"""Budgets of live generation per campaign (issue 14, finding 2): battles per hour, tokens and estimated
cost per day pause live generation with a clear message; usage and cost per model and day are recorded
from every generation and shown to staff."""

from __future__ import annotations

import pytest

from arena.models import Battle, Campaign, GenerationUsage, ModelEntry, Prompt, Response
from arena.services import generation
from arena.services.guardrails import usage
from tests.arena.services.guardrails.conftest import live_campaign

pytestmark = pytest.mark.django_db


def send(client, campaign, prompt="What is the capital of France?", capture=None):
    if capture is None:
        return client.post(f"/c/{campaign.slug}/live/", {"prompt": prompt}, HTTP_ACCEPT="application/json")
    with capture(execute=True):
        return client.post(f"/c/{campaign.slug}/live/", {"prompt": prompt}, HTTP_ACCEPT="application/json")


def test_the_hourly_budget_of_battles_pauses_live_battles(alice, bob, models_api, stopped_clock):
    campaign = live_campaign(models_api, live_battles_per_hour=2)

    refused_by_moderator = send(alice, campaign, "Which model are you?")  # not a battle: does not count
    codes = [send(voter, campaign).status_code for voter in (alice, bob, alice)]

    assert refused_by_moderator.status_code == 422
    assert codes == [201, 201, 429]
    paused = send(bob, campaign)
    assert paused.json()["error"] == "budget_reached"
    assert paused.json()["message"].startswith(
        "Live battles are paused in this campaign: it has reached its budget of 2 battles this hour. They resume at "
    )
    assert 1 <= int(paused["Retry-After"]) <= 3601
    assert Battle.objects.count() == 2


def test_the_daily_token_budget_pauses_new_battles_and_further_turns(
    alice, models_api, django_capture_on_commit_callbacks
):
    campaign = live_campaign(models_api, live_tokens_per_day=20)
    assert send(alice, campaign, capture=django_capture_on_commit_callbacks).status_code == 201
    battle = Battle.objects.get()
    spent = sum(GenerationUsage.objects.values_list("prompt_tokens", flat=True)) + sum(
        GenerationUsage.objects.values_list("completion_tokens", flat=True)
    )
    assert spent == 2 * (6 + 7)  # the server's counts: 6 prompt words, "Echo:" and 6 words back

    new = send(alice, campaign, capture=django_capture_on_commit_callbacks)
    turn = alice.post(f"/b/{battle.pk}/live/turn", {"prompt": "And Spain?"}, HTTP_ACCEPT="application/json")

    message = "Live battles are paused in this campaign: it has used its daily budget of 20 tokens. They resume at "
    assert new.status_code == turn.status_code == 429
    assert new.json()["message"] == turn.json()["message"] == message + "midnight UTC."
    assert Battle.objects.count() == 1 and len(models_api.requests) == 2
    battle.refresh_from_db()
    assert battle.conversation["user"] == ["What is the capital of France?"]


def test_the_daily_cost_budget_uses_the_models_prices(alice, models_api, django_capture_on_commit_callbacks):
    campaign = live_campaign(models_api, live_cost_per_day=0.001)
    campaign.contenders.update(input_price=10.0, output_price=30.0)  # USD per million tokens

    assert send(alice, campaign, capture=django_capture_on_commit_callbacks).status_code == 201
    first_day = GenerationUsage.objects.get(model__name="Contender live-0")
    assert (first_day.generations, first_day.prompt_tokens, first_day.completion_tokens) == (1, 6, 7)
    assert first_day.cost == pytest.approx((6 * 10.0 + 7 * 30.0) / 1e6)
    assert send(alice, campaign, capture=django_capture_on_commit_callbacks).status_code == 201  # $0.00054 spent

    paused = send(alice, campaign, capture=django_capture_on_commit_callbacks)  # $0.00108 spent

    assert paused.status_code == 429
    assert paused.json()["message"] == (
        "Live battles are paused in this campaign: it has used its daily budget of $0.001 of generation. "
        "They resume at midnight UTC."
    )
    assert Battle.objects.count() == 2


def test_missing_token_counts_are_estimated_and_priced(models_api):
    entry = ModelEntry.objects.create(name="Priced", input_price=1.0, output_price=2.0)
    assert usage.tokens_of([{"role": "user", "content": "x" * 41}], "y" * 8, None, None) == (11, 2)
    assert usage.tokens_of([], "", 5, 7) == (5, 7)
    assert usage.cost_of(entry, 1_000_000, 500_000) == 2.0


def test_an_answer_reused_from_the_cache_costs_nothing(models_api, django_capture_on_commit_callbacks):
    campaign = Campaign.objects.create(slug="set", title="Set", status="active")
    entry = ModelEntry.objects.create(
        name="Greedy",
        backend="openai",
        params={"do_sample": False},
        backend_settings={"base_url": models_api.base_url, "model": "echo"},
    )
    campaign.contenders.set([entry])
    for key in ("p1", "p2"):  # the same messages twice: the second answer comes from the cache
        Prompt.objects.create(campaign=campaign, external_id=key, messages=[{"role": "user", "content": "Same"}])

    with django_capture_on_commit_callbacks(execute=True):
        generation.queue_missing_responses(campaign)

    assert Response.objects.filter(status="done").count() == 2 and len(models_api.requests) == 1
    assert GenerationUsage.objects.get().generations == 1


def test_staff_see_usage_and_cost_per_model_and_day(
    alice, staff_client, models_api, django_capture_on_commit_callbacks
):
    campaign = live_campaign(models_api, live_tokens_per_day=1000)
    campaign.contenders.update(input_price=10.0, output_price=30.0)
    send(alice, campaign, capture=django_capture_on_commit_callbacks)

    page = staff_client.get(f"/staff/c/{campaign.slug}/").content.decode()

    assert Response.objects.filter(status="done").count() == 2
    row = f'<td>{usage.today():%Y-%m-%d}</td><td>Contender live-0</td><td class="num">1</td><td class="num">6</td>'
    assert row in page and "$0.0003" in page  # 0.00027 per model
    assert 'id="live-budget">Today (UTC): 26 tokens of 1000, $0.0005' in page


def test_the_prompt_page_says_live_battles_are_paused_before_the_voter_writes(alice, models_api):
    campaign = live_campaign(models_api, live_tokens_per_day=10)
    GenerationUsage.objects.create(
        campaign=campaign,
        model=campaign.contenders.first(),
        day=usage.today(),
        generations=1,
        prompt_tokens=4,
        completion_tokens=6,
    )

    page = alice.get(f"/c/{campaign.slug}/live/").content.decode()

    assert "it has used its daily budget of 10 tokens. They resume at midnight UTC." in page
