"""The voter's flow in a real browser: instructions, battle, keyboard vote, reveal, next."""

from __future__ import annotations

import pytest

from arena.models import Battle, Vote
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_voter_votes_with_the_keyboard_and_sees_the_names_after(page, live_server):
    campaign = make_campaign(slug="web", models=("Falcon-X", "Otter-Y"), prompts=3, dimensions=("helpfulness",))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    page.goto(f"{live_server.url}/c/{campaign.slug}/")
    assert "Pick the better answer." in page.inner_text("main")
    page.click("#start-voting")
    page.wait_for_selector("#answer-a")
    before = page.content()
    assert "Falcon-X" not in before and "Otter-Y" not in before
    assert page.inner_text("#label-a") == "Model A" and page.inner_text("#label-b") == "Model B"

    page.check('input[name="score-helpfulness-left"][value="4"]')
    page.keyboard.press("b")
    page.wait_for_selector("#name-a")
    names = {page.inner_text("#name-a"), page.inner_text("#name-b")}
    assert names == {"Falcon-X", "Otter-Y"}

    vote = Vote.objects.get()
    assert vote.verdict == "right"
    assert vote.scores == {"helpfulness": {"left": 4}}
    assert vote.duration_ms is not None and vote.duration_ms > 0

    page.keyboard.press("n")
    page.wait_for_selector("#answer-a")
    assert "Falcon-X" not in page.content()
    assert errors == [], errors


def test_the_battle_stacks_on_a_phone(browser, live_server):
    campaign = make_campaign(slug="phone", models=("M1", "M2"), prompts=1)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{live_server.url}/c/{campaign.slug}/vote/")
    a = page.locator("#answer-a").bounding_box()
    b = page.locator("#answer-b").bounding_box()
    assert b["y"] > a["y"] + a["height"] - 1  # B is below A, not beside it
    page.tap('button[value="left"]')
    page.wait_for_selector("#name-a")
    context.close()


def test_a_double_click_casts_one_vote(page, live_server):
    campaign = make_campaign(slug="dbl", models=("P1", "P2"), prompts=2)
    page.goto(f"{live_server.url}/c/{campaign.slug}/vote/")
    page.dblclick('button[value="left"]')
    page.wait_for_selector("#name-a")
    assert Vote.objects.count() == 1


def test_a_vote_and_the_next_battle_take_one_request(page, live_server):
    """Voting in place (arena/static/arena/app.js): the vote's reply reveals the names on the page and
    carries the next battle, which "Next battle" shows without another request; the next battle votes
    like the first, and Back asks the server for the first battle, voted."""
    campaign = make_campaign(slug="inplace", models=("Falcon-X", "Otter-Y", "Heron-Z"), prompts=3)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{live_server.url}/c/{campaign.slug}/vote/")
    first = page.url.rstrip("/").rsplit("/", 1)[1]
    requests: list[tuple[str, str]] = []
    page.on(
        "request",
        lambda request: "/static/" in request.url or requests.append((request.resource_type, request.url)),
    )

    page.click('button[value="left"]')
    page.wait_for_selector("#name-a")
    assert requests == [("fetch", f"{live_server.url}/b/{first}/vote")]  # no page load
    assert "You voted" in page.inner_text("main") and page.url.endswith(f"/c/{campaign.slug}/b/{first}/")
    battle = Battle.objects.get(pk=first)
    assert page.inner_text("#name-a") == battle.left.model.name
    assert page.inner_text("#name-b") == battle.right.model.name
    second = Battle.objects.exclude(pk=first).get(status=Battle.Status.OPEN)  # handed out with the vote

    page.keyboard.press("n")
    page.wait_for_selector(f'form[action="/b/{second.pk}/vote"]')
    assert len(requests) == 1  # the next battle came with the vote
    assert page.url.endswith(f"/c/{campaign.slug}/b/{second.pk}/")
    html = page.content()
    assert "You voted" not in html and not any(name in html for name in ("Falcon-X", "Otter-Y", "Heron-Z"))
    assert page.inner_text("#answer-a").strip() and page.inner_text("#answer-b").strip()
    assert {second.left.html.strip(), second.right.html.strip()} == {
        page.inner_html("#answer-a").strip(),
        page.inner_html("#answer-b").strip(),
    }

    page.keyboard.press("b")
    page.wait_for_selector("#name-a")
    vote = Vote.objects.get(battle=second)
    assert vote.verdict == "right" and vote.duration_ms is not None
    assert Vote.objects.count() == 2 and len(requests) == 2

    page.go_back()  # the second battle before its vote: the server shows it voted
    page.wait_for_selector("#battle-form", state="detached")  # (not wait_for_function: the CSP forbids eval)
    assert page.url.endswith(f"/b/{second.pk}/") and "You voted" in page.inner_text("main")
    assert errors == [], errors


def test_a_vote_refused_for_now_says_why_and_can_be_cast_again(page, live_server, settings):
    campaign = make_campaign(slug="slow", models=("Falcon-X", "Otter-Y", "Heron-Z"), prompts=3)
    settings.ARENA_VOTE_RATE_PER_MINUTE = 1
    page.goto(f"{live_server.url}/c/{campaign.slug}/vote/")
    page.click('button[value="left"]')
    page.click("#next-battle")
    second = page.url.rstrip("/").rsplit("/", 1)[1]
    page.click('button[value="right"]')
    page.wait_for_selector(".notice-error")
    assert "limit of 1 votes a minute" in page.inner_text(".notice-error")
    assert not Vote.objects.filter(battle_id=second).exists() and page.locator("#name-a").count() == 0
    settings.ARENA_VOTE_RATE_PER_MINUTE = 100
    page.click('button[value="right"]')  # unlocked again
    page.wait_for_selector("#name-a")
    assert page.locator(".notice-error").count() == 0
    assert Vote.objects.get(battle_id=second).verdict == "right"
