"""Ranking tasks over HTTP: the pages, the JSON API, anonymity before the submission, admin and
campaign files."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache

from arena.models import Campaign, ModelEntry, Prompt, Ranking, Response, Vote
from arena.services import ratelimit
from arena.services.imports import load_campaign
from arena.services.imports.rows import ImportFailed
from arena.services.items import create_items
from tests.arena.web.test_anonymity_and_xss import _leaks
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db

MODELS = ("Alpha", "Beta", "Gamma", "Delta")


@pytest.fixture(autouse=True)
def _no_rate_limits_left_over():
    cache.clear()
    ratelimit.reset()


@pytest.fixture
def ranking(db) -> Campaign:
    return make_campaign(slug="rk", models=MODELS, prompts=3, task=Campaign.Task.RANKING, ranking_size=3)


def shown_models(ranking_id: str) -> list[str]:
    shown = Ranking.objects.get(pk=ranking_id).shown
    names = dict(Response.objects.filter(pk__in=shown).values_list("pk", "model__name"))
    return [names[pk] for pk in shown]


def test_start_voting_leads_a_ranking_campaign_to_its_ranking_task(ranking, alice):
    page = alice.get("/c/rk/")
    assert 'href="/c/rk/vote/"' in page.content.decode()
    response = alice.get("/c/rk/vote/")
    assert response.status_code == 302 and response["Location"] == "/c/rk/rank/"
    assert alice.get("/c/test/rank/").status_code == 404  # no such campaign
    make_campaign(slug="pairs")
    assert alice.get("/c/pairs/rank/")["Location"] == "/c/pairs/vote/"  # a pairwise campaign: to its battles


def test_the_ranking_page_shows_the_prompt_and_n_anonymised_responses(ranking, alice):
    response = alice.get("/c/rk/rank/")
    assert response.status_code == 200 and "arena_voter" in response.cookies
    html = response.content.decode()
    ranking_id = Ranking.objects.get().pk
    assert "Question number" in html
    assert re.findall(r'<h3 class="rank-label" id="label-([A-Z])">Response \1</h3>', html) == ["A", "B", "C"]
    for name in MODELS:
        assert name not in html
    shown = Ranking.objects.get().shown
    for pk in shown:
        assert Response.objects.get(pk=pk).html in html  # the cached sanitised rendering
    assert f'action="/r/{ranking_id}/submit"' in html
    assert '<script src="/static/arena/ranking.js" defer></script>' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # no inline script: the CSP forbids it
    assert 'aria-roledescription="sortable response"' in html and 'aria-live="polite"' in html
    assert 'aria-label="Response A, place 1 of 3"' in html
    assert alice.get("/c/rk/rank/").content.decode().count(ranking_id) == 1  # a reload: the same task


def test_submitting_the_form_reveals_the_models_in_the_submitted_order(ranking, alice):
    alice.get("/c/rk/rank/")
    ranking_obj = Ranking.objects.get()
    shown = shown_models(ranking_obj.pk)
    response = alice.post(f"/r/{ranking_obj.pk}/submit", {"order": "C A B", "duration_ms": "5300"})
    assert response.status_code == 302 and response["Location"] == f"/r/{ranking_obj.pk}/"
    reveal = alice.get(response["Location"]).content.decode()
    names = re.findall(r'<span class="model-name" id="name-(\d)">([^<]+)</span>', reveal)
    assert names == [("1", shown[2]), ("2", shown[0]), ("3", shown[1])]
    assert "counts as 3 pairwise votes" in reveal
    assert 'id="next-ranking" href="/c/rk/rank/"' in reveal
    assert Vote.objects.count() == 3 and set(Vote.objects.values_list("duration_ms", flat=True)) == {5300}

    again = alice.post(f"/r/{ranking_obj.pk}/submit", {"order": "A B C"})
    assert again.status_code == 409 and "already submitted" in again.content.decode()
    assert Ranking.objects.get().order == [ranking_obj.shown[i] for i in (2, 0, 1)]
    following = alice.get("/c/rk/rank/")
    assert Ranking.objects.count() == 2 and following.status_code == 200


def test_a_bad_order_shows_the_same_task_again_with_the_message(ranking, alice):
    alice.get("/c/rk/rank/")
    ranking_id = Ranking.objects.get().pk
    response = alice.post(f"/r/{ranking_id}/submit", {"order": "A A B"})
    html = response.content.decode()
    assert response.status_code == 400
    assert 'role="alert"' in html and "Response A appears more than once" in html
    assert f'action="/r/{ranking_id}/submit"' in html and "Response C" in html
    assert Ranking.objects.get().status == "open" and not Vote.objects.exists()
    assert alice.get(f"/r/{ranking_id}/")["Location"] == "/c/rk/rank/"  # not submitted: back to the task


def test_another_voters_ranking_is_not_found_on_every_url(ranking, alice, bob):
    alice.get("/c/rk/rank/")
    ranking_id = Ranking.objects.get().pk
    bob.get("/c/rk/rank/")  # bob has a voter cookie of his own
    assert bob.get(f"/r/{ranking_id}/").status_code == 404
    assert bob.post(f"/r/{ranking_id}/submit", {"order": "A B C"}).status_code == 404
    assert bob.get(f"/api/v1/rankings/{ranking_id}").status_code == 404
    submit = bob.post(f"/api/v1/rankings/{ranking_id}/submit", {"order": ["A", "B", "C"]}, "application/json")
    assert submit.status_code == 404 and submit.json()["error"] == "not_found"
    assert Ranking.objects.get(pk=ranking_id).status == "open"


def test_the_json_api_hands_out_reads_and_submits_rankings(ranking, alice):
    task = alice.post("/api/v1/campaigns/rk/rankings")
    assert task.status_code == 200
    body = task.json()
    assert [r["label"] for r in body["responses"]] == ["A", "B", "C"] and body["status"] == "open"
    assert body["messages"][0]["content"].startswith("Question number")
    assert alice.post("/api/v1/campaigns/rk/rankings").json()["id"] == body["id"]
    assert alice.get(f"/api/v1/rankings/{body['id']}").json() == body
    shown = shown_models(body["id"])

    bad = alice.post(f"/api/v1/rankings/{body['id']}/submit", {"order": ["A", "B"]}, "application/json")
    assert bad.status_code == 400 and "Response C is missing" in bad.json()["message"]
    done = alice.post(
        f"/api/v1/rankings/{body['id']}/submit", {"order": ["B", "C", "A"], "duration_ms": 900}, "application/json"
    )
    assert done.status_code == 200
    assert done.json() == {
        "id": body["id"],
        "order": [
            {"rank": 1, "label": "B", "model": shown[1]},
            {"rank": 2, "label": "C", "model": shown[2]},
            {"rank": 3, "label": "A", "model": shown[0]},
        ],
        "pairs": 3,
    }
    again = alice.post(f"/api/v1/rankings/{body['id']}/submit", {"order": ["A", "B", "C"]}, "application/json")
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    assert alice.get(f"/api/v1/rankings/{body['id']}").json()["status"] == "submitted"


def test_the_api_keeps_pairwise_and_ranking_tasks_apart(ranking, alice):
    make_campaign(slug="pairs")
    refused = alice.post("/api/v1/campaigns/pairs/rankings")
    assert refused.status_code == 409 and "pairwise" in refused.json()["message"]
    battles = alice.post("/api/v1/campaigns/rk/battles")
    assert battles.status_code == 409 and "/api/v1/campaigns/rk/rankings" in battles.json()["message"]
    paths = alice.get("/api/v1/openapi.json").json()["paths"]
    assert {
        "/api/v1/campaigns/{slug}/rankings",
        "/api/v1/rankings/{ranking_id}",
        "/api/v1/rankings/{ranking_id}/submit",
    } <= set(paths)


def test_access_rules_and_limits_apply_as_for_battles(db, alice, settings):
    make_campaign(slug="inv", models=MODELS, task="ranking", ranking_size=3, access=Campaign.Access.INVITE)
    assert alice.get("/c/inv/rank/").status_code == 403
    assert alice.post("/api/v1/campaigns/inv/rankings").status_code == 403
    make_campaign(slug="paused", models=MODELS, task="ranking", ranking_size=3, status=Campaign.Status.PAUSED)
    assert "paused" in alice.get("/c/paused/rank/").content.decode()
    make_campaign(slug="fast", models=MODELS, task="ranking", ranking_size=3, prompts=5)
    settings.ARENA_VOTE_RATE_PER_MINUTE = 1
    alice.get("/c/fast/rank/")
    first = Ranking.objects.get(campaign__slug="fast")
    assert alice.post(f"/r/{first.pk}/submit", {"order": "A B C"}).status_code == 302
    alice.get("/c/fast/rank/")
    second = Ranking.objects.get(campaign__slug="fast", status="open")
    limited = alice.post(f"/r/{second.pk}/submit", {"order": "A B C"})
    assert limited.status_code == 429 and limited.has_header("Retry-After")
    assert Ranking.objects.get(pk=second.pk).status == "open"


# --- anonymity ------------------------------------------------------------------------------------------


@pytest.fixture
def secret_ranking(db):
    """Three models with distinctive names and ids, so that any leak is visible in a scan."""
    campaign = Campaign.objects.create(
        slug="anon-rank", title="Anon", status="active", instructions="Rank.", task="ranking", ranking_size=3
    )
    models = [
        ModelEntry.objects.create(id=731_054 + i, name=name, backend="static")
        for i, name in enumerate(("Zephyrine-Ultra", "Quokkabot-9000", "Marmoset-XL"))
    ]
    campaign.contenders.set(models)
    prompt = Prompt.objects.create(campaign=campaign, external_id="q", messages=[{"role": "user", "content": "Hi"}])
    for i, model in enumerate(models):
        Response.objects.create(id=918_273 + i, prompt=prompt, model=model, content=f"Hello {i}", status="done")
    create_items(campaign, [prompt.id])
    return campaign, models


def test_nothing_before_the_submission_names_or_identifies_a_model(alice, secret_ranking):
    campaign, models = secret_ranking
    pages = [
        alice.get(f"/c/{campaign.slug}/"),
        alice.get(f"/c/{campaign.slug}/vote/", follow=True),
        alice.get(f"/c/{campaign.slug}/rank/"),
        alice.post(f"/api/v1/campaigns/{campaign.slug}/rankings"),
    ]
    ranking_id = pages[-1].json()["id"]
    pages += [alice.get(f"/r/{ranking_id}/", follow=True), alice.get(f"/api/v1/rankings/{ranking_id}")]
    pages += [alice.get(f"/static/arena/{name}") for name in ("ranking.js", "ranking.css")]
    pages.append(alice.post(f"/r/{ranking_id}/submit", {"order": "A A A"}))  # a refused order shows the task again
    for response in pages:
        assert response.status_code in (200, 400)
        assert _leaks(response, models) == [], response.request["PATH_INFO"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", ranking_id)
    after = alice.post(f"/r/{ranking_id}/submit", {"order": "C B A"}, follow=True)
    assert len(_leaks(after, models)) >= 3  # the scan finds the names once they are meant to be shown


# --- admin and campaign files ----------------------------------------------------------------------------


def test_the_admin_campaign_form_has_the_task_and_its_size(staff_client, ranking):
    html = staff_client.get(f"/admin/arena/campaign/{ranking.pk}/change/").content.decode()
    assert 'name="task"' in html and 'name="ranking_size"' in html
    assert '<option value="ranking" selected>' in html


def test_a_campaign_file_sets_the_task_and_ranking_size(db):
    spec = {
        "slug": "from-file",
        "title": "From a file",
        "status": "active",
        "task": "ranking",
        "ranking_size": 4,
        "models": [{"name": n} for n in MODELS],
        "prompts": [{"id": "p1", "prompt": "Why?", "responses": {n: f"Because {n}." for n in MODELS}}],
    }
    campaign, _ = load_campaign(spec)
    assert (campaign.task, campaign.ranking_size) == ("ranking", 4)
    with pytest.raises(ImportFailed, match="campaign: ranking_size: Ensure this value is less than or equal to 8"):
        load_campaign({**spec, "slug": "too-big", "ranking_size": 12})
    assert not Campaign.objects.filter(slug="too-big").exists()
    gold, _ = load_campaign({**spec, "slug": "with-gold", "gold_rate": 0.2})
    assert gold.gold_rate == 0.2
    with pytest.raises(ImportFailed, match="gold_rate"):
        load_campaign({**spec, "slug": "too-much-gold", "gold_rate": 0.9})
