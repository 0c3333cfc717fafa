"""Judges for staff: the dashboard section, the JSON API and the admin (validation and the run action)."""

from __future__ import annotations

import pytest
from django.test import Client

from arena.judges.models import Judge, JudgeVerdict
from arena.models import ModelEntry
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def judge(db) -> Judge:
    campaign = make_campaign(slug="web", models=("Alpha", "Beta"), prompts=2)
    entry = ModelEntry.objects.create(name="Static judge", backend="static", backend_settings={"text": "[[A]]"})
    return Judge.objects.create(campaign=campaign, model=entry)


def test_the_api_runs_a_judge_and_reports_progress_agreement_and_its_leaderboard(staff_client, judge):
    started = staff_client.post("/api/v1/judges/run", {"campaign": "web"}, content_type="application/json")
    assert started.status_code == 202, started.content
    assert started.json() == [
        {"judge": "Static judge", "candidates": 2, "created": 2, "left_out_self": 0, "dispatched": 2}
    ]
    progress = staff_client.get("/api/v1/judges/web/progress").json()[0]
    assert progress["counts"]["done"] == 2 and progress["calls"] == 4
    report = staff_client.get("/api/v1/judges/web/agreement").json()[0]
    assert report["position_consistency"]["share"] == 0.0  # always [[A]]
    board = staff_client.get("/api/v1/judges/web/leaderboard").json()[0]
    assert {r["model"] for r in board["rows"]} == {"Alpha", "Beta"} and all(r["ties"] == 2 for r in board["rows"])


def test_the_api_is_for_staff_with_the_judge_permissions(judge, django_user_model):
    anonymous = Client()
    assert anonymous.get("/api/v1/judges/web/progress").status_code == 401
    user = django_user_model.objects.create_user("plain-staff", password="pw", is_staff=True)
    staff = Client()
    staff.force_login(user)
    assert staff.get("/api/v1/judges/web/progress").status_code == 403
    assert staff.post("/api/v1/judges/run", {"campaign": "web"}, content_type="application/json").status_code == 403
    assert not JudgeVerdict.objects.exists()


def test_the_api_refuses_bad_input_with_clear_errors(staff_client, judge):
    missing = staff_client.post("/api/v1/judges/run", {"campaign": "nope"}, content_type="application/json")
    assert missing.status_code == 404 and "nope" in missing.json()["message"]
    bad = staff_client.post("/api/v1/judges/run", {"campaign": "web", "limit": 0}, content_type="application/json")
    assert bad.status_code in (400, 422)


def test_the_dashboard_shows_judges_and_their_failures_escaped(staff_client, judge):
    broken = ModelEntry.objects.create(
        name="Rambler", backend="static", backend_settings={"text": "<script>alert(1)</script> no verdict"}
    )
    Judge.objects.create(campaign=judge.campaign, model=broken)
    staff_client.post("/api/v1/judges/run", {"campaign": "web"}, content_type="application/json")
    html = staff_client.get("/staff/c/web/").content.decode()
    assert 'id="judge-figures"' in html and "Static judge" in html and "Rambler: latest failures" in html
    assert "unparsed verdict" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_admin_refuses_a_template_without_the_answers_and_runs_judges(staff_client, judge):
    page = staff_client.post(
        "/admin/judges/judge/add/",
        {
            "campaign": judge.campaign.pk,
            "model": ModelEntry.objects.get(name="Alpha").pk,
            "template": "Judge {conversation} and {answer_a}",
            "max_concurrency": 4,
            "prompt_price": 0,
            "completion_price": 0,
            "is_active": "on",
        },
    )
    assert page.status_code == 200 and "{answer_b}" in page.content.decode()
    assert Judge.objects.count() == 1
    done = staff_client.post(
        "/admin/judges/judge/", {"action": "run_items", "_selected_action": [judge.pk]}, follow=True
    )
    assert "2 new pairings to judge of 2" in done.content.decode()
    assert JudgeVerdict.objects.filter(judge=judge, status="done").count() == 2


def test_the_leaderboard_page_shows_win_rates_against_the_reference_and_flags_self_judging(alice, judge):
    from django.urls import reverse

    from arena.judges import actions

    alpha, beta = ModelEntry.objects.get(name="Alpha"), ModelEntry.objects.get(name="Beta")
    beta.backend_settings = {"text": "[[C]]"}
    beta.save()
    own = Judge.objects.create(campaign=judge.campaign, model=beta, reference_model=alpha, allow_self_judging=True)
    actions.start([own])
    html = alice.get(reverse("ratings:leaderboard", args=["web"])).content.decode()
    assert "Win rates against Alpha, by the LLM judge Beta" in html
    assert "self-preference" in html
    row = html[html.index("<td>Beta</td>") :]
    assert '<td class="num">2</td><td class="num">50.0</td>' in row  # two ties: half a win each
