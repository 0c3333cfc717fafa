"""Moderation of voters' live prompts before any generation (issue 14, finding 3): the built-in rules
moderator, an OpenAI-compatible moderation endpoint (the protocol server's /v1/moderations) and a local
transformers classifier; fail closed or open by the campaign's setting."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from arena.models import Battle, Campaign, Prompt, RefusedPrompt, Response
from arena.moderators import ModeratorError, get_moderator
from arena.moderators.base import ModeratorConfigError
from tests.arena.services.guardrails.conftest import live_campaign

pytestmark = pytest.mark.django_db


def send(client, campaign, prompt, capture=None):
    if capture is None:
        return client.post(f"/c/{campaign.slug}/live/", {"prompt": prompt}, HTTP_ACCEPT="application/json")
    with capture(execute=True):
        return client.post(f"/c/{campaign.slug}/live/", {"prompt": prompt}, HTTP_ACCEPT="application/json")


def chat_requests(server):
    return [r for r in server.requests if r.path == "/v1/chat/completions"]


# -- the built-in rules moderator (the default) ------------------------------------------------------------


def test_the_default_moderator_refuses_a_prompt_that_asks_the_models_who_they_are(
    alice, models_api, django_capture_on_commit_callbacks
):
    campaign = live_campaign(models_api)

    answer = send(alice, campaign, "Before you answer: which model are you?", django_capture_on_commit_callbacks)

    assert answer.status_code == 422
    assert answer.json() == {
        "error": "prompt_refused",
        "message": "Your prompt was not sent to the models: it asks the models who they are, and their answers "
        "would end the battle's anonymity. Please write another one.",
    }
    assert chat_requests(models_api) == []  # no generation
    assert Battle.objects.count() == Prompt.objects.count() == Response.objects.count() == 0
    refused = RefusedPrompt.objects.get()
    assert (refused.campaign, refused.moderator, refused.text) == (
        campaign,
        "rules",
        "Before you answer: which model are you?",
    )
    assert refused.reason == "asks the models who they are: 'which model are you'"
    assert refused.voter is not None


def test_staff_word_lists_and_patterns_refuse_and_ordinary_prompts_pass(
    alice, models_api, django_capture_on_commit_callbacks
):
    campaign = live_campaign(models_api, moderator_settings={"words": ["Zorblax"], "patterns": [r"\bcredit card\b"]})

    word = send(alice, campaign, "Tell me about **zorblax** please", django_capture_on_commit_callbacks)
    pattern = send(alice, campaign, "Invent a CREDIT  card number", django_capture_on_commit_callbacks)
    fine = send(alice, campaign, "What is the capital of France?", django_capture_on_commit_callbacks)

    assert word.status_code == 422 and "contains words this campaign does not accept" in word.json()["message"]
    assert pattern.status_code == 422
    assert fine.status_code == 201 and len(chat_requests(models_api)) == 2
    assert list(RefusedPrompt.objects.order_by("id").values_list("reason", flat=True)) == [
        "word list: 'zorblax'",
        "pattern: '\\\\bcredit card\\\\b'",
    ]


def test_the_rules_moderator_leaves_ordinary_prose_alone():
    moderator = get_moderator("rules", {})
    prose = [
        "What is the capital of France?",
        "Which version of Python should I install for Django 5?",
        "Who made the Eiffel tower and when?",
        "Explain how a language model is trained.",
        "Are you able to summarise this article for me?",
        "What is your favourite colour? Answer as a pirate.",
    ]
    assert [text for text in prose if not moderator.check(text).allowed] == []


def test_a_further_turn_is_moderated_too(alice, models_api, django_capture_on_commit_callbacks):
    campaign = live_campaign(models_api)
    send(alice, campaign, "Hello there", django_capture_on_commit_callbacks)
    battle = Battle.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        turn = alice.post(f"/b/{battle.pk}/live/turn", {"prompt": "Now tell me: who trained you?"})

    assert turn.status_code == 422 and "who they are" in turn.content.decode()
    battle.refresh_from_db()
    assert battle.conversation["user"] == ["Hello there"] and len(chat_requests(models_api)) == 2
    assert RefusedPrompt.objects.get().text == "Now tell me: who trained you?"


def test_the_campaign_form_rejects_wrong_moderator_settings(models_api):
    campaign = live_campaign(models_api, moderator_settings={"patterns": ["(unclosed"]})
    with pytest.raises(ValidationError) as error:
        campaign.full_clean()
    assert "is not a regular expression" in str(error.value.message_dict["moderator_settings"])

    campaign.moderator, campaign.moderator_settings = "nonsense", {}
    with pytest.raises(ValidationError) as error:
        campaign.full_clean()
    assert "unknown moderator 'nonsense'" in str(error.value.message_dict["moderator"])

    campaign.moderator, campaign.moderator_settings = "openai", {"base_url": "not a url"}
    with pytest.raises(ValidationError):
        campaign.full_clean()


# -- an OpenAI-compatible moderation endpoint ------------------------------------------------------------


def openai_settings(server, model="omni-moderation-latest", **extra):
    return {"base_url": server.base_url, "model": model, "api_key_env": "ARENA_TEST_MODERATION_KEY", **extra}


def test_the_moderation_endpoint_refuses_what_it_flags(
    alice, models_api, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setenv("ARENA_TEST_MODERATION_KEY", "sk-moderation-secret")
    campaign = live_campaign(models_api, moderator="openai", moderator_settings=openai_settings(models_api))

    refused = send(alice, campaign, "Something forbidden, please", django_capture_on_commit_callbacks)
    allowed = send(alice, campaign, "Something harmless, please", django_capture_on_commit_callbacks)

    assert refused.status_code == 422
    assert refused.json()["message"] == (
        "Your prompt was not sent to the models: the content filter flagged it (violence). Please write another one."
    )
    assert allowed.status_code == 201 and Battle.objects.count() == 1
    moderations = [r for r in models_api.requests if r.path == "/v1/moderations"]
    assert [r.body for r in moderations] == [
        {"model": "omni-moderation-latest", "input": "Something forbidden, please"},
        {"model": "omni-moderation-latest", "input": "Something harmless, please"},
    ]
    assert moderations[0].headers["authorization"] == "Bearer sk-moderation-secret"
    assert len(chat_requests(models_api)) == 2  # only the allowed prompt was generated
    refused_row = RefusedPrompt.objects.get()
    assert (refused_row.moderator, refused_row.reason) == ("openai", "moderation service flagged: violence")


@pytest.mark.parametrize("knob", ["status=503", "garbage=1", "delay=3"])
def test_a_failing_moderator_fails_closed_by_default(alice, models_api, knob, django_capture_on_commit_callbacks):
    settings = openai_settings(models_api, model=f"mod?{knob}", timeout=0.5)
    campaign = live_campaign(models_api, moderator="openai", moderator_settings=settings)

    answer = send(alice, campaign, "Something harmless, please", django_capture_on_commit_callbacks)

    assert answer.status_code == 503
    assert answer.json() == {
        "error": "moderation_unavailable",
        "message": "Your prompt could not be checked right now, so it was not sent to the models. "
        "Please try again in a few minutes.",
    }
    assert Battle.objects.count() == 0 and chat_requests(models_api) == []
    assert RefusedPrompt.objects.get().reason.startswith("moderator unavailable: ")


def test_a_failing_moderator_lets_prompts_through_when_the_campaign_fails_open(
    alice, models_api, django_capture_on_commit_callbacks
):
    settings = openai_settings(models_api, model="mod?status=500")
    campaign = live_campaign(models_api, moderator="openai", moderator_settings=settings, moderation_fail_open=True)

    answer = send(alice, campaign, "Something forbidden, please", django_capture_on_commit_callbacks)

    assert answer.status_code == 201 and Battle.objects.count() == 1 and RefusedPrompt.objects.count() == 0


def test_the_api_key_never_reaches_a_stored_reason(models_api, monkeypatch):
    monkeypatch.setenv("ARENA_TEST_MODERATION_KEY", "sk-moderation-secret")
    moderator = get_moderator("openai", openai_settings(models_api, model="mod?status=401"))
    with pytest.raises(ModeratorError) as error:
        moderator.check("hello")
    assert "sk-moderation-secret" not in str(error.value) and "401" in str(error.value)


def test_an_unreachable_service_is_a_moderator_error():
    moderator = get_moderator("openai", {"base_url": "http://127.0.0.1:9/v1", "timeout": 0.5})
    with pytest.raises(ModeratorError, match="unreachable"):
        moderator.check("hello")


def test_moderator_settings_are_validated():
    with pytest.raises(ModeratorConfigError, match="unknown setting"):
        get_moderator("openai", {"base_url": "http://x/v1", "api_key": "sk-in-the-clear"})
    with pytest.raises(ModeratorConfigError, match="timeout"):
        get_moderator("openai", {"base_url": "http://x/v1", "timeout": 0})
    with pytest.raises(ModeratorConfigError, match="flag_labels"):
        get_moderator("transformers", {"model_path": "/nowhere"})


def test_staff_see_the_refused_prompts_with_their_reason(alice, staff_client, models_api):
    campaign = live_campaign(models_api)
    send(alice, campaign, "What model are you, honestly?")

    page = staff_client.get(f"/staff/c/{campaign.slug}/").content.decode()

    assert "Refused prompts (1)" in page
    assert "What model are you, honestly?" in page and "asks the models who they are" in page


def test_rules_settings_that_would_refuse_everything_or_break_the_check_are_caught():
    invisible_only = get_moderator("rules", {"words": ["\u200b"]})
    assert invisible_only.check("What is the capital of France?").allowed
    with pytest.raises(ModeratorConfigError, match="cannot be combined"):
        get_moderator("rules", {"patterns": ["(?i)secret"]})
    with pytest.raises(ModeratorConfigError, match="list of non-empty strings"):
        get_moderator("rules", {"words": "bomb"})


def test_a_campaign_file_sets_the_guardrails_and_is_refused_with_a_broken_pattern():
    from arena.services.imports.campaigns import load_campaign
    from arena.services.imports.rows import ImportFailed

    spec = {
        "slug": "guarded",
        "title": "Guarded",
        "mode": "live",
        "moderator": "rules",
        "moderator_settings": {"words": ["zorblax"]},
        "moderation_fail_open": True,
        "live_battles_per_hour": 30,
        "live_tokens_per_day": 100000,
        "live_cost_per_day": 2.5,
        "models": [{"name": "Priced", "backend": "static", "input_price": 0.5, "output_price": 1.5}],
    }
    campaign, _ = load_campaign(spec)

    assert (campaign.moderator_settings, campaign.live_battles_per_hour, campaign.live_cost_per_day) == (
        {"words": ["zorblax"]},
        30,
        2.5,
    )
    assert campaign.contenders.get().output_price == 1.5
    with pytest.raises(ImportFailed) as error:
        load_campaign({**spec, "slug": "broken", "moderator_settings": {"patterns": ["(unclosed"]}})
    assert "moderator_settings" in str(error.value.errors)


def test_settings_saved_around_the_form_fail_closed_instead_of_crashing(alice, models_api):
    campaign = live_campaign(models_api)
    Campaign.objects.filter(pk=campaign.pk).update(moderator_settings=["not", "an", "object"])

    answer = send(alice, campaign, "What is the capital of France?")

    assert answer.status_code == 503 and Battle.objects.count() == 0
    assert RefusedPrompt.objects.get().reason == "moderator unavailable: moderator_settings: must be a JSON object"
