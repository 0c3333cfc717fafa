"""The voter's journey in Chromium, on a desktop (1366x900) and on a phone (390x844): from the campaign
page to a vote and back, as issue 16 found it broken (Back showed a new battle, lines ran together,
tap targets were 13 px, the leaderboard was wider than the phone)."""

from __future__ import annotations

import re

import pytest

from arena.leaderboards.snapshots import compute_snapshots
from arena.models import Battle, Prompt, Response, Vote
from arena.services.items import create_items
from tests.arena.leaderboards.test_leaderboards import cast_votes
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db(transaction=True)

DESKTOP = {"viewport": {"width": 1366, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 3}
MODELS = ("Falcon-X", "Otter-Y")
LINES = ("An old silent pond", "A frog jumps into the pond", "Splash! Silence again")
BATTLE_URL = re.compile(r"/c/poems/b/([\w-]+)/$")
TAP = 44  # px, the smallest tap target (WCAG 2.5.5)


def poem_campaign():
    """Three prompts whose answers are three lines each, written with single newlines."""
    campaign = make_campaign(slug="poems", models=MODELS, prompts=0, dimensions=("helpfulness", "accuracy"))
    prompts = []
    for p in range(3):
        prompt = Prompt.objects.create(
            campaign=campaign, external_id=f"haiku-{p}", messages=[{"role": "user", "content": f"Write haiku {p}."}]
        )
        for model in campaign.contenders.all():
            Response.objects.create(prompt=prompt, model=model, content="\n".join(LINES), status="done")
        prompts.append(prompt.id)
    create_items(campaign, prompts)
    return campaign


def watch(page) -> list[str]:
    """Script errors and console errors (a CSP violation is one) on this page."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


def battle_id(page) -> str:
    match = BATTLE_URL.search(page.url)
    assert match, page.url
    return match.group(1)


def no_horizontal_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"{page.url} is {width} px wide"


def answer_lines(page, selector: str) -> list[str]:
    return [line for line in page.inner_text(selector).splitlines() if line.strip()]


def vote_then_go_back(page, cast) -> str:
    """Vote on the battle shown with ``cast``, then press Back: the same battle, voted, comes back."""
    first = battle_id(page)
    cast()
    page.wait_for_selector("#name-a")
    assert battle_id(page) == first and Vote.objects.filter(battle_id=first).count() == 1
    page.click("#next-battle")
    page.wait_for_selector("#answer-a")
    second = battle_id(page)
    assert second != first
    page.go_back()  # to the reveal of the first battle
    page.wait_for_selector("#name-a")
    assert battle_id(page) == first
    page.go_back()  # to where the first battle was shown before the vote: the same battle, voted
    page.wait_for_selector("#name-a")
    assert battle_id(page) == first
    assert "You voted" in page.inner_text("main") and page.locator("#battle-form").count() == 0
    assert {page.inner_text("#name-a"), page.inner_text("#name-b")} == set(MODELS)
    assert Vote.objects.count() == 1 and Battle.objects.filter(status="open").count() == 1  # the second one
    return first


def test_voter_on_a_desktop(browser, live_server):
    campaign = poem_campaign()
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors = watch(page)
    page.goto(f"{live_server.url}/c/{campaign.slug}/")
    page.click("#start-voting")
    page.wait_for_selector("#answer-a")
    first = battle_id(page)  # the battle's own URL, not /c/poems/vote/
    html = page.content()
    assert not any(name in html for name in MODELS)
    assert answer_lines(page, "#answer-a") == list(LINES) == answer_lines(page, "#answer-b")
    page.reload()
    page.wait_for_selector("#answer-a")
    assert battle_id(page) == first  # reload never re-rolls
    no_horizontal_scroll(page)

    page.check('input[name="score-helpfulness-left"][value="4"]')
    vote_then_go_back(page, lambda: page.keyboard.press("b"))
    vote = Vote.objects.get()
    assert vote.verdict == "right" and vote.scores == {"helpfulness": {"left": 4}}

    stranger = browser.new_context(**DESKTOP).new_page()
    response = stranger.goto(f"{live_server.url}/c/{campaign.slug}/b/{first}/")
    assert response.status == 404 and not any(name in stranger.content() for name in MODELS)
    stranger.context.close()
    assert errors == [], errors
    context.close()


def test_voter_on_a_phone(browser, live_server):
    campaign = poem_campaign()
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors = watch(page)
    page.goto(f"{live_server.url}/c/{campaign.slug}/")
    start = page.locator("#start-voting").bounding_box()
    assert start["y"] + start["height"] <= 844 and start["height"] >= TAP  # in the first screen
    no_horizontal_scroll(page)
    page.tap("#start-voting")
    page.wait_for_selector("#answer-a")
    no_horizontal_scroll(page)
    assert answer_lines(page, "#answer-a") == list(LINES)

    labels = page.locator(".score label")
    assert labels.count() == 2 * 2 * 5  # two sides, two dimensions, five points
    for i in range(labels.count()):
        box = labels.nth(i).bounding_box()
        assert box["width"] >= TAP and box["height"] >= TAP, (i, box)
    for button in page.locator(".verdicts button").all():
        box = button.bounding_box()
        assert box["width"] >= TAP and box["height"] >= TAP, box
    target = page.locator(".score label").nth(3)  # helpfulness 4, left
    target.scroll_into_view_if_needed()
    target.tap()
    assert page.is_checked('input[name="score-helpfulness-left"][value="4"]')

    vote_then_go_back(page, lambda: page.tap('button[value="left"]'))
    assert Vote.objects.get().scores == {"helpfulness": {"left": 4}}
    no_horizontal_scroll(page)
    assert errors == [], errors
    context.close()


def test_the_leaderboard_fits_a_phone_and_explains_itself(browser, live_server):
    names = ("meta-llama/Llama-3.1-70B-Instruct", "mistralai/Mixtral-8x22B-Instruct-v0.1", "Qwen2.5-72B", "gpt-4o")
    campaign = make_campaign(slug="wide", models=names, prompts=4)
    cast_votes(campaign, 60)  # every pair compared: every model has an interval
    compute_snapshots(campaign)
    page = browser.new_context(**PHONE).new_page()
    page.set_default_timeout(10_000)
    errors = watch(page)
    page.goto(f"{live_server.url}/c/{campaign.slug}/leaderboard/")
    no_horizontal_scroll(page)
    board = page.locator("#leaderboard").bounding_box()
    assert board["x"] >= 0 and board["x"] + board["width"] <= 390
    assert "fewer than 20 votes" in page.inner_text("#provisional-note")
    chart = page.locator("#interval-chart").bounding_box()
    assert chart["x"] + chart["width"] <= 390
    ticks = page.locator(".ic-tick-label")
    assert ticks.count() >= 3
    assert ticks.first.bounding_box()["height"] >= 10  # readable text, not a scaled-down drawing
    for tab in page.locator(".tabs a").all():
        assert tab.bounding_box()["height"] >= TAP
    assert errors == [], errors
    page.context.close()


def test_a_ranking_task_fits_a_phone_with_44_px_move_buttons(browser, live_server):
    campaign = make_campaign(slug="rank-phone", models=("R1", "R2", "R3"), prompts=1, task="ranking", ranking_size=3)
    page = browser.new_context(**PHONE).new_page()
    errors = watch(page)
    page.goto(f"{live_server.url}/c/{campaign.slug}/")
    page.tap("#start-voting")
    page.wait_for_selector(".rank-moves button")
    no_horizontal_scroll(page)
    for button in page.locator(".rank-moves button").all():
        box = button.bounding_box()
        assert box["width"] >= TAP and box["height"] >= TAP, box
    assert errors == [], errors
    page.context.close()
