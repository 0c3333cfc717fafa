"""Output checks after generation (issue 14, finding 4): empty answers, answers cut at max_new_tokens,
refusals and identity leaks are flagged on their response, in both generation paths (pre-generated
prompt sets and live battles), and staff see the flagged battles and their counts on the dashboard."""

from __future__ import annotations

from urllib.parse import quote_plus

import pytest
from django.test import Client

from arena.models import Battle, Campaign, ModelEntry, Prompt, Response
from arena.services import generation
from arena.services.guardrails.output_checks import check_answer, is_refusal, merge
from tests.arena.services.guardrails.conftest import live_campaign

pytestmark = pytest.mark.django_db

REFUSAL = "I'm sorry, but I can't help with that."


def scripted(reply: str) -> str:
    return f"scripted?reply={quote_plus(reply)}"


# -- the checks themselves ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        REFUSAL,
        "Sorry, I cannot assist with this request.",
        "As an AI language model, I cannot provide that.",
        "I must decline.",
        "I am unable to answer that question.",
        "**I'm sorry**, but I cannot comply.",
        "I\u2019m afraid I can\u2019t do that.",
    ],
)
def test_refusals_are_recognised(text):
    assert is_refusal(text)


def test_ordinary_answers_are_not_refusals():
    prose = [
        "I cannot stress enough how important sleep is.",
        "Sorry to hear that! Here are some tips.",
        "Unfortunately, the train is late. I can help you plan another route.",
        "I won't lie: this is hard. Here is how to do it.",
        "I can help with that! First, preheat the oven.",
        "Paris is the capital of France.",
        "The function cannot return None; it raises instead.",
        "Here is a story.\n\nThe robot said: I'm sorry, but I can't help with that. Then it laughed.",
        "# Steps\n\n1. I can't think of a better first step than reading the manual.",
    ]
    assert [text for text in prose if is_refusal(text)] == []


def test_each_reason_is_found_and_kept_in_order():
    assert check_answer("   \u200b ") == ["empty"]
    assert check_answer("<p></p>") == ["empty"]
    assert check_answer("The answer starts but", "length") == ["cut"]
    assert check_answer(REFUSAL) == ["refusal"]
    assert check_answer("As ChatGPT, I think Paris.") == ["identity"]
    assert check_answer("Zephyrine-Ultra here: Paris.", names=["Zephyrine-Ultra"]) == ["identity"]
    assert check_answer("Paris is the capital of France.", "stop", ["Zephyrine-Ultra"]) == []
    assert merge("cut", ["refusal", "cut"]) == "cut,refusal"
    assert merge("", []) == ""


# -- the pre-generated path ------------------------------------------------------------------------------


def prompt_set(server, models: dict[str, tuple[str, dict]], slug: str = "set") -> Campaign:
    campaign = Campaign.objects.create(slug=slug, title="Set", status="active")
    entries = [
        ModelEntry.objects.create(
            name=name,
            backend="openai",
            params=params,
            backend_settings={"base_url": server.base_url, "model": model, "max_retries": 0},
        )
        for name, (model, params) in models.items()
    ]
    campaign.contenders.set(entries)
    Prompt.objects.create(campaign=campaign, external_id="p1", messages=[{"role": "user", "content": "Tell me"}])
    return campaign


def test_pre_generated_answers_are_checked_when_they_are_stored(models_api, django_capture_on_commit_callbacks):
    campaign = prompt_set(
        models_api,
        {
            "Plain": ("echo", {}),
            "Refuser": (scripted(REFUSAL), {}),
            "Cutter": ("echo", {"max_new_tokens": 1}),
            "Blank": (scripted(" \u200b "), {}),
            "Namer": (scripted("As ChatGPT, I would say yes."), {}),
        },
    )

    with django_capture_on_commit_callbacks(execute=True):
        generation.queue_missing_responses(campaign)

    checks = dict(Response.objects.values_list("model__name", "checks"))
    assert checks == {"Plain": "", "Refuser": "refusal", "Cutter": "cut", "Blank": "empty", "Namer": "identity"}


def test_staff_see_the_flagged_battles_of_a_prompt_set_with_their_reasons(
    models_api, staff_client, django_capture_on_commit_callbacks
):
    campaign = prompt_set(models_api, {"Plain": ("echo", {}), "Refuser": (scripted(REFUSAL), {})})
    with django_capture_on_commit_callbacks(execute=True):
        generation.queue_missing_responses(campaign)

    for _ in range(2):  # two voters, each handed the campaign's one pair
        assert Client().get(f"/c/{campaign.slug}/vote/", follow=True).status_code == 200

    assert Battle.objects.filter(campaign=campaign).count() == 2
    page = staff_client.get(f"/staff/c/{campaign.slug}/").content.decode()
    assert "Flagged battles (2)" in page
    assert '<li>refused to answer: <span class="num">2</span></li>' in page
    assert '<li>empty answer: <span class="num">0</span></li>' in page
    assert page.count("(Refuser): refused to answer") == 2


# -- the live path ---------------------------------------------------------------------------------------


def test_live_answers_are_checked_and_their_battle_is_shown_to_staff(
    alice, staff_client, models_api, django_capture_on_commit_callbacks
):
    campaign = live_campaign(models_api, models=(scripted(REFUSAL), "echo"))
    campaign.contenders.filter(backend_settings__model="echo").update(params={"max_new_tokens": 2})

    with django_capture_on_commit_callbacks(execute=True):
        assert alice.post(f"/c/{campaign.slug}/live/", {"prompt": "Tell me a long story"}).status_code == 302

    battle = Battle.objects.select_related("left__model", "right__model").get()
    assert {battle.left.model.name: battle.left.checks, battle.right.model.name: battle.right.checks} == {
        "Contender live-0": "refusal",
        "Contender live-1": "cut",
    }
    page = staff_client.get(f"/staff/c/{campaign.slug}/").content.decode()
    assert "Flagged battles (1)" in page
    assert "(Contender live-0): refused to answer" in page and "(Contender live-1): cut at max_new_tokens" in page


def test_a_live_side_keeps_the_reasons_of_every_turn(alice, models_api, django_capture_on_commit_callbacks):
    campaign = live_campaign(models_api, models=("echo", "echo"))
    campaign.contenders.update(params={"max_new_tokens": 3})
    with django_capture_on_commit_callbacks(execute=True):
        alice.post(f"/c/{campaign.slug}/live/", {"prompt": "A very long first question indeed"})
    battle = Battle.objects.get()
    campaign.contenders.update(params={})

    with django_capture_on_commit_callbacks(execute=True):
        assert alice.post(f"/b/{battle.pk}/live/turn", {"prompt": "Short"}).status_code == 302

    battle.refresh_from_db()
    assert battle.left.finish_reason == "stop" and battle.left.checks == battle.right.checks == "cut"


def test_imported_answers_are_checked_by_the_command(campaign):
    """tests.factories' campaign: imported answers that no generation checked."""
    from io import StringIO

    from django.core.management import call_command

    answer = Response.objects.filter(prompt__campaign=campaign).first()
    Response.objects.filter(pk=answer.pk).update(content=REFUSAL)
    out = StringIO()

    call_command("check_outputs", campaign.slug, stdout=out)

    assert Response.objects.get(pk=answer.pk).checks == "refusal"
    assert set(Response.objects.filter(prompt__campaign=campaign).values_list("checks", flat=True)) == {"", "refusal"}
    assert "refused to answer: 1" in out.getvalue() and "empty answer: 0" in out.getvalue()
