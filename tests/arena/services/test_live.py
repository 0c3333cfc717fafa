"""Live battles over HTTP: the voter writes the prompt, two models answer, the vote counts.

The models are a real OpenAI-compatible server on 127.0.0.1 (tests/protocol_server.py); tasks run
in-process at the commit (CELERY_TASK_ALWAYS_EAGER).
"""

from __future__ import annotations

import json
import re

import pytest

from arena.models import Battle, Campaign, ModelEntry, Prompt, Response, Vote
from arena.services import live
from tests.protocol_server import expected_reply

pytestmark = pytest.mark.django_db

NAMES = ("Zephyrine-Ultra", "Quokkabot-9000")
IDS = (731_054, 731_077)


def make_live_campaign(server, *, slug="live", failing: str | None = None, **fields) -> Campaign:
    """Two models with distinctive names and ids, so that any leak is visible in a scan."""
    fields.setdefault("status", "active")
    campaign = Campaign.objects.create(slug=slug, title="Live arena", mode="live", instructions="Ask.", **fields)
    entries = []
    for pk, name in zip(IDS, NAMES, strict=True):
        model = failing if name == NAMES[1] and failing else f"echo-{pk}"
        settings = {"base_url": server.base_url, "model": model, "max_retries": 0}
        entries.append(ModelEntry.objects.create(id=pk, name=name, backend="openai", backend_settings=settings))
    campaign.contenders.set(entries)
    return campaign


def leaks(text: str, battle: Battle | None = None) -> list[str]:
    needles = [*NAMES, *(str(i) for i in IDS), "echo-", "openai", "127.0.0.1"]
    if battle is not None:  # response ids, when long enough to be told apart from other numbers
        needles += [str(pk) for pk in (battle.left_id, battle.right_id) if pk > 999]
    return [n for n in needles if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w])", text, re.I)]


def start(client, campaign, prompt="What is the capital of France?", capture=None, **extra):
    if capture is None:
        return client.post(f"/c/{campaign.slug}/live/", {"prompt": prompt}, **extra)
    with capture(execute=True):
        return client.post(f"/c/{campaign.slug}/live/", {"prompt": prompt}, **extra)


def test_the_prompt_page_asks_for_a_prompt_and_names_no_model(alice, models_api):
    campaign = make_live_campaign(models_api)

    page = alice.get(f"/c/{campaign.slug}/live/")

    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="prompt"' in html and 'maxlength="4000"' in html
    assert leaks(html) == []


def test_a_prompt_opens_a_battle_that_two_models_answer(alice, models_api, django_capture_on_commit_callbacks):
    campaign = make_live_campaign(models_api)

    response = start(alice, campaign, capture=django_capture_on_commit_callbacks)

    battle = Battle.objects.select_related("left", "right", "prompt").get()
    assert response.status_code == 302 and response["Location"] == f"/b/{battle.pk}/live/"
    assert battle.voter.public_id and battle.status == "open" and battle.item_id is None
    assert battle.prompt.external_id == "" and battle.prompt.campaign == campaign
    assert {battle.left.model_id, battle.right.model_id} == set(IDS)
    assert battle.left.status == battle.right.status == "done"
    answer = expected_reply("What is the capital of France?")
    assert battle.left.content == battle.right.content == answer
    assert battle.conversation == {"user": ["What is the capital of France?"], "left": [answer], "right": [answer]}
    assert len(models_api.requests) == 2

    page = alice.get(f"/b/{battle.pk}/live/")
    html = page.content.decode()
    assert page.status_code == 200 and html.count("<p>Echo: What is the capital of France?</p>") == 2
    assert 'value="left" data-key="a 1">' in html  # the vote is open (no "disabled")
    assert f'data-ws="/ws/battles/{battle.pk}/"' in html
    assert leaks(html + json.dumps(dict(page.headers)), battle) == []


def test_the_json_answer_gives_the_battle_and_its_socket(alice, models_api):
    campaign = make_live_campaign(models_api)

    response = start(alice, campaign, HTTP_ACCEPT="application/json")

    battle = Battle.objects.get()
    assert response.status_code == 201
    assert response.json() == {
        "battle": battle.pk,
        "url": f"/b/{battle.pk}/live/",
        "websocket": f"/ws/battles/{battle.pk}/",
    }


def test_a_prompt_that_is_too_long_is_refused_with_the_limit(alice, models_api, settings):
    settings.ARENA_MAX_PROMPT_CHARS = 20
    campaign = make_live_campaign(models_api)

    response = start(alice, campaign, prompt="x" * 21)

    assert response.status_code == 400
    assert "21 characters long; the limit is 20" in response.content.decode()
    assert Battle.objects.count() == 0 and Prompt.objects.count() == 0


def test_an_empty_prompt_is_refused(alice, models_api):
    response = start(alice, make_live_campaign(models_api), prompt="   ")

    assert response.status_code == 400 and "Please write a prompt" in response.content.decode()


def test_a_voter_who_sends_prompts_too_fast_is_asked_to_wait(alice, bob, models_api, settings):
    settings.ARENA_LIVE_PROMPTS_PER_MINUTE = 2
    campaign = make_live_campaign(models_api)

    codes = [start(alice, campaign, HTTP_ACCEPT="application/json").status_code for _ in range(3)]

    assert codes == [201, 201, 429]
    too_fast = start(alice, campaign)
    assert too_fast.status_code == 429 and "too quickly (at most 2 a minute)" in too_fast.content.decode()
    assert start(bob, campaign, HTTP_ACCEPT="application/json").status_code == 201  # per voter


def test_the_conversation_goes_on_and_each_model_sees_its_own_answers(
    alice, models_api, settings, django_capture_on_commit_callbacks
):
    settings.ARENA_LIVE_MAX_TURNS = 2
    campaign = make_live_campaign(models_api)
    start(alice, campaign, prompt="First question", capture=django_capture_on_commit_callbacks)
    battle = Battle.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post(f"/b/{battle.pk}/live/turn", {"prompt": "Second question"})

    assert response.status_code == 302 and response["Location"] == f"/b/{battle.pk}/live/"
    battle.refresh_from_db()
    first, second = expected_reply("First question"), expected_reply("Second question")
    assert battle.conversation == {
        "user": ["First question", "Second question"],
        "left": [first, second],
        "right": [first, second],
    }
    assert battle.prompt.messages == [{"role": "user", "content": t} for t in ("First question", "Second question")]
    for pk in IDS:
        later = models_api.requests_for(f"echo-{pk}")[-1].body["messages"]
        assert later == [
            {"role": "user", "content": "First question"},
            {"role": "assistant", "content": first},
            {"role": "user", "content": "Second question"},
        ]
    page = alice.get(f"/b/{battle.pk}/live/").content.decode()
    assert "<p>First question</p>" in page and page.count("<p>Echo: Second question</p>") == 2
    assert 'id="live-continue" hidden' in page  # two turns is this campaign's limit

    refused = alice.post(f"/b/{battle.pk}/live/turn", {"prompt": "Third"})
    assert refused.status_code == 429 and "reached 2 turns" in refused.content.decode()


def test_a_next_turn_waits_until_both_answers_are_complete(alice, models_api):
    campaign = make_live_campaign(models_api)
    start(alice, campaign)  # the tasks would start at the commit, which this test never reaches
    battle = Battle.objects.get()

    response = alice.post(f"/b/{battle.pk}/live/turn", {"prompt": "More?"})

    assert response.status_code == 409 and "wait until both answers are complete" in response.content.decode()
    page = alice.get(f"/b/{battle.pk}/live/").content.decode()
    assert 'value="left" data-key="a 1" disabled>' in page  # the vote opens only when both are done


def test_a_failed_side_voids_the_battle_which_then_takes_no_vote(alice, models_api, django_capture_on_commit_callbacks):
    campaign = make_live_campaign(models_api, failing="echo?status=400")

    start(alice, campaign, capture=django_capture_on_commit_callbacks)

    battle = Battle.objects.select_related("left", "right").get()
    assert battle.status == "void"
    failed = battle.left if battle.left.status == "failed" else battle.right
    assert failed.error.startswith("bad_request: ")
    page = alice.get(f"/b/{battle.pk}/live/").content.decode()
    assert "could not answer" in page and "This battle will not count." in page
    assert f'href="/c/{campaign.slug}/live/"' in page and leaks(page, battle) == []
    vote = alice.post(f"/b/{battle.pk}/vote", {"verdict": "left"})
    assert vote.status_code == 409 and Vote.objects.count() == 0


def test_the_vote_on_a_live_battle_is_recorded_and_reveals_the_names(
    alice, models_api, django_capture_on_commit_callbacks
):
    campaign = make_live_campaign(models_api)
    start(alice, campaign, capture=django_capture_on_commit_callbacks)
    battle = Battle.objects.select_related("left", "right").get()

    response = alice.post(f"/b/{battle.pk}/vote", {"verdict": "right", "duration_ms": "1234"})

    assert response.status_code == 302
    vote = Vote.objects.get()
    assert (vote.verdict, vote.winner_id, vote.prompt_id) == ("right", battle.right.model_id, battle.prompt_id)
    reveal = alice.get(f"/b/{battle.pk}/", follow=True).content.decode()  # to the battle's own URL
    assert all(name in reveal for name in NAMES)
    assert alice.get(f"/b/{battle.pk}/live/")["Location"] == f"/b/{battle.pk}/"  # voted: to the reveal


def test_another_voter_cannot_open_or_continue_the_battle(alice, bob, models_api, django_capture_on_commit_callbacks):
    campaign = make_live_campaign(models_api)
    start(alice, campaign, capture=django_capture_on_commit_callbacks)
    battle = Battle.objects.get()
    bob.get(f"/c/{campaign.slug}/live/")

    assert bob.get(f"/b/{battle.pk}/live/").status_code == 404
    assert bob.post(f"/b/{battle.pk}/live/turn", {"prompt": "hijack"}).status_code == 404
    assert Battle.objects.get().conversation["user"] == ["What is the capital of France?"]


def test_a_paused_or_prompt_set_campaign_takes_no_live_prompt(alice, models_api):
    paused = make_live_campaign(models_api, slug="paused", status="paused")
    assert start(alice, paused).status_code == 403
    page = alice.get(f"/c/{paused.slug}/live/")
    assert page.status_code == 403 and "This campaign is paused" in page.content.decode()
    prompt_set = Campaign.objects.create(slug="ps", title="PS", status="active", mode="prompt_set")
    assert alice.get(f"/c/{prompt_set.slug}/live/")["Location"] == f"/c/{prompt_set.slug}/vote/"
    assert Response.objects.count() == 0


def test_pairs_are_drawn_by_weight_and_never_twice_the_same_model():
    for _ in range(50):
        first, second = live.draw_pair({1: 1.0, 2: 3.0, 3: 0.0})
        assert {first, second} == {1, 2}
    assert set(live.draw_pair({1: 0.0, 2: 0.0})) == {1, 2}  # all zero: uniform, still works
    with pytest.raises(live.NothingToVoteOn):
        live.draw_pair({1: 1.0})


@pytest.mark.django_db
def test_live_campaign_pages_lead_to_the_live_form_and_votes_wait_for_both_answers(alice):
    from arena.core.errors import Conflict
    from arena.models import Battle, Campaign, Response, Voter
    from arena.services.votes import record_vote
    from tests.factories import make_campaign

    campaign = make_campaign(slug="livelinks", models=("A", "B"), prompts=1, mode=Campaign.Mode.LIVE)
    page = alice.get("/c/livelinks/").content.decode()
    assert 'href="/c/livelinks/live/"' in page
    voter = Voter.objects.create()
    prompt = campaign.prompts.get()
    left, right = prompt.responses.order_by("model__name")
    Response.objects.filter(pk=right.pk).update(status=Response.Status.RUNNING)
    battle = Battle.objects.create(
        campaign=campaign,
        voter=voter,
        prompt=prompt,
        left=left,
        right=right,
        conversation={"user": ["hi"], "left": [], "right": []},
    )
    with pytest.raises(Conflict, match="both answers"):
        record_vote(battle.pk, voter, "left")
    Response.objects.filter(pk=right.pk).update(status=Response.Status.DONE)
    assert record_vote(battle.pk, voter, "left").vote.verdict == "left"
