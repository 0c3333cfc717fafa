"""Ranking in a real browser: order the responses with the keyboard and by dragging, submit, reveal."""

from __future__ import annotations

import pytest

from arena.models import Ranking, Response, Vote
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db(transaction=True)

MODELS = ("Heron-1", "Ibis-2", "Jacana-3", "Kestrel-4")


def labels(page) -> list[str]:
    return page.eval_on_selector_all("#ranking-list > .rank-item", "items => items.map(i => i.dataset.label)")


def stored_order_labels(ranking: Ranking) -> list[str]:
    return ["ABCDEFGH"[ranking.shown.index(pk)] for pk in ranking.order]


def model_of(pk: int) -> str:
    return Response.objects.select_related("model").get(pk=pk).model.name


@pytest.fixture
def watched(page):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield page, errors
    assert errors == [], errors


def test_a_voter_ranks_with_the_keyboard_and_sees_the_models_in_that_order(watched, live_server):
    page, _ = watched
    campaign = make_campaign(slug="rank-kb", models=MODELS, prompts=2, task="ranking", ranking_size=4)
    page.goto(f"{live_server.url}/c/{campaign.slug}/")
    page.click("#start-voting")
    page.wait_for_selector("#ranking-list")
    page.wait_for_load_state()
    assert not any(name in page.content() for name in MODELS)
    assert labels(page) == ["A", "B", "C", "D"]
    assert page.is_hidden("#ranking-typed")  # the list is the input once the script runs

    page.focus("#item-C")
    page.keyboard.press("ArrowUp")  # A C B D
    page.keyboard.press("ArrowUp")  # C A B D
    assert labels(page) == ["C", "A", "B", "D"]
    assert page.evaluate("document.activeElement.id") == "item-C"  # focus stays on the moved response
    assert page.inner_text("#ranking-status") == "Response C is now at place 1 of 4."
    assert page.get_attribute("#item-C", "aria-label") == "Response C, place 1 of 4"
    page.focus("#item-A")
    page.keyboard.press("End")  # C B D A
    page.focus("#item-D")
    page.keyboard.press("2")  # C D B A
    page.keyboard.press("ArrowDown")  # C B D A
    page.keyboard.press("ArrowUp")  # C D B A
    assert labels(page) == ["C", "D", "B", "A"]
    assert page.input_value("#ranking-order") == "C D B A"
    assert page.inner_text("#item-D .rank-place") == "2"

    page.focus("#submit-ranking")
    page.keyboard.press("Enter")
    page.wait_for_selector("#ranking-result")
    ranking = Ranking.objects.get()
    assert ranking.status == "submitted" and stored_order_labels(ranking) == ["C", "D", "B", "A"]
    assert ranking.duration_ms is not None and ranking.duration_ms > 0
    shown_names = [page.inner_text(f"#name-{i}") for i in range(1, 5)]
    assert shown_names == [model_of(pk) for pk in ranking.order]
    assert Vote.objects.filter(battle__ranking=ranking).count() == 6

    page.keyboard.press("n")  # Next
    page.wait_for_selector("#ranking-list")
    assert Ranking.objects.filter(status="open").count() == 1
    assert not any(name in page.content() for name in MODELS)


def test_a_voter_ranks_by_dragging_the_responses(watched, live_server):
    page, _ = watched
    campaign = make_campaign(slug="rank-drag", models=MODELS[:3], prompts=1, task="ranking", ranking_size=3)
    page.goto(f"{live_server.url}/c/{campaign.slug}/rank/")
    page.wait_for_selector("#ranking-list")

    bar_c = page.locator("#item-C .rank-bar")
    top_a = page.locator("#item-A").bounding_box()
    box = bar_c.bounding_box()
    page.mouse.move(box["x"] + 40, box["y"] + box["height"] / 2)
    page.mouse.down()
    for step in range(1, 11):  # up to the top response's bar, in steps, as a hand does
        y = box["y"] + (top_a["y"] + 5 - box["y"]) * step / 10
        page.mouse.move(box["x"] + 40, y)
    page.mouse.up()
    assert labels(page) == ["C", "A", "B"]

    # And A down below B, dragged by its bar with Playwright's own drag helper.
    below_b = page.locator("#item-B").bounding_box()["height"] - 4
    page.locator("#item-A .rank-bar").drag_to(page.locator("#item-B"), target_position={"x": 40, "y": below_b})
    assert labels(page) == ["C", "B", "A"]
    assert page.inner_text("#item-A .rank-place") == "3"

    page.click("#submit-ranking")
    page.wait_for_selector("#ranking-result")
    ranking = Ranking.objects.get()
    assert stored_order_labels(ranking) == ["C", "B", "A"]
    assert Vote.objects.filter(battle__ranking=ranking).count() == 3


def test_the_up_and_down_buttons_move_a_response(watched, live_server):
    page, _ = watched
    campaign = make_campaign(slug="rank-btn", models=MODELS[:3], prompts=1, task="ranking", ranking_size=3)
    page.goto(f"{live_server.url}/c/{campaign.slug}/rank/")
    page.click("#item-A .rank-down")
    page.click("#item-C .rank-up")
    assert labels(page) == ["B", "C", "A"]
    page.dblclick("#submit-ranking")  # a double click submits once
    page.wait_for_selector("#ranking-result")
    assert stored_order_labels(Ranking.objects.get()) == ["B", "C", "A"]
    assert Vote.objects.count() == 3


def test_no_xss_payload_runs_on_the_ranking_pages(page, live_server):
    from arena.models import Campaign, ModelEntry, Prompt
    from arena.services.items import create_items
    from tests.arena.web.test_anonymity_and_xss import PAYLOADS

    everything = "\n\n".join(PAYLOADS)
    short = [p for p in PAYLOADS if len(p) <= 90]
    campaign = Campaign.objects.create(
        slug="xss-rank", title=short[0], status="active", task="ranking", ranking_size=3, instructions=everything
    )
    models = [ModelEntry.objects.create(name=name) for name in short[1:4]]
    campaign.contenders.set(models)
    prompt = Prompt.objects.create(campaign=campaign, messages=[{"role": "user", "content": everything}])
    for model in models:
        Response.objects.create(prompt=prompt, model=model, content=everything, status="done")
    create_items(campaign, [prompt.id])

    fired: list[str] = []
    page.on("dialog", lambda dialog: (fired.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda exc: fired.append(f"pageerror {exc}"))
    page.goto(f"{live_server.url}/c/{campaign.slug}/rank/")
    page.wait_for_load_state("load")
    page.mouse.click(5, 5)
    page.focus("#item-B")
    page.keyboard.press("1")
    page.click("#submit-ranking")
    page.wait_for_selector("#ranking-result")  # the reveal shows the (hostile) model names as text
    page.wait_for_timeout(300)
    assert page.evaluate("document.querySelectorAll('main script, main iframe, main object, main embed').length") == 0
    assert fired == []
