"""The admin without detours: links from a campaign to its pages, confirmations, the Arena brand, and
prompt imports that list every error of a file in one pass."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from arena.models import Campaign, Prompt
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db


def test_a_campaigns_change_page_links_to_every_page_about_it(staff_client):
    campaign = make_campaign(slug="linked")
    html = staff_client.get(reverse("admin:arena_campaign_change", args=[campaign.pk])).content.decode()
    for url in (
        reverse("admin:arena_campaign_import", args=[campaign.pk]),
        reverse("arena:dashboard", args=["linked"]),
        reverse("arena:campaign", args=["linked"]),
        reverse("ratings:leaderboard", args=["linked"]),
        reverse("admin:exports_campaign_export", args=[campaign.pk]),
        reverse("admin:arena_campaign_generation", args=[campaign.pk]),
    ):
        assert f'href="{url}"' in html, url


def test_a_live_campaign_has_no_generation_link(staff_client):
    campaign = make_campaign(slug="live-links", mode=Campaign.Mode.LIVE, prompts=0)
    html = staff_client.get(reverse("admin:arena_campaign_change", args=[campaign.pk])).content.decode()
    assert reverse("admin:arena_campaign_generation", args=[campaign.pk]) not in html
    assert reverse("arena:dashboard", args=["live-links"]) in html


@pytest.mark.parametrize("page", ["admin:arena_campaign_import", "admin:exports_campaign_export"])
def test_the_import_and_export_pages_breadcrumbs_lead_back_to_the_campaign(staff_client, page):
    campaign = make_campaign(slug="crumbs")
    html = staff_client.get(reverse(page, args=[campaign.pk])).content.decode()
    crumbs = html.split('<div class="breadcrumbs">', 1)[1].split("</div>", 1)[0]
    assert reverse("admin:arena_campaign_change", args=[campaign.pk]) in crumbs
    assert reverse("admin:arena_campaign_changelist") in crumbs


def test_status_actions_confirm_what_they_did(staff_client):
    draft = make_campaign(slug="draft-one", status=Campaign.Status.DRAFT)
    active = make_campaign(slug="active-one", models=("Alpha", "Beta"))
    closed = make_campaign(slug="closed-one", models=("Alpha", "Beta"), status=Campaign.Status.CLOSED)
    response = staff_client.post(
        reverse("admin:arena_campaign_changelist"),
        {"action": "make_active", "_selected_action": [draft.pk, active.pk, closed.pk]},
        follow=True,
    )
    shown = [str(m) for m in response.context["messages"]]
    assert "1 campaign(s) now active: Campaign draft-one." in shown
    assert "Already active: Campaign active-one." in shown
    assert any("closed campaign cannot become active" in m for m in shown)
    draft.refresh_from_db()
    assert draft.status == "active"


def test_the_admin_is_branded_arena(staff_client, client):
    html = staff_client.get(reverse("admin:index")).content.decode()
    assert "Django administration" not in html and "Django site admin" not in html
    assert "Arena administration" in html
    assert "arena/favicon" in html
    login = client.get(reverse("admin:login")).content.decode()
    assert "Arena administration" in login and "Django" not in login.split("<body", 1)[1].split("<footer", 1)[0]


def test_favicon_ico_leads_to_the_sites_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    icon = client.get(response["Location"])
    assert icon.status_code == 200 and b"<svg" in b"".join(icon.streaming_content)


def _upload(staff_client, campaign, name: str, text: str):
    return staff_client.post(
        reverse("admin:arena_campaign_import", args=[campaign.pk]),
        {
            "file": SimpleUploadedFile(name, text.encode()),
            "format": "auto",
            "chosen_model": "chosen",
            "rejected_model": "rejected",
        },
    )


def test_an_import_lists_every_error_of_the_file_with_its_line_in_one_pass(staff_client):
    campaign = make_campaign(slug="imp", prompts=0)
    lines = [
        {"external_id": "a", "prompt": ""},  # line 1: empty prompt
        {"external_id": "b", "prompt": "Hi", "responses": {"Nobody": "Hello"}},  # line 2: unknown model
        {"external_id": "c", "prompt": "Fine", "responses": {"Alpha": "Yes"}},
        {"external_id": "c", "prompt": "Again", "responses": {"Alpha": "Yes"}},  # line 4: repeated id
        "not json",  # line 5
    ]
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    response = _upload(staff_client, campaign, "prompts.jsonl", text)
    errors = response.context["errors"]
    assert [e.split(":", 1)[0] for e in errors] == ["line 1", "line 2", "line 4", "line 5"], errors
    assert "'Nobody' is not in this campaign" in errors[1]
    html = response.content.decode()
    assert all(f"<li>line {n}:" in html for n in (1, 2, 4, 5))
    assert not Prompt.objects.filter(campaign=campaign).exists()


def test_a_clean_import_goes_through_and_returns_to_the_campaign(staff_client):
    campaign = make_campaign(slug="imp-ok", prompts=0)
    text = json.dumps({"external_id": "x", "prompt": "Hi", "responses": {"Alpha": "A", "Beta": "B"}})
    response = _upload(staff_client, campaign, "prompts.jsonl", text)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:arena_campaign_change", args=[campaign.pk])
    assert Prompt.objects.filter(campaign=campaign).count() == 1


def test_the_api_docs_page_loads_its_assets_from_this_site(client):
    response = client.get("/api/v1/docs")
    html = response.content.decode()
    assert response.status_code == 200
    assert "/static/ninja/swagger-ui-bundle.js" in html and "/static/ninja/swagger-ui-init.js" in html
    assert "cdn" not in html.lower() and "<script>" not in html  # no CDN, no inline script
    assert client.get("/static/ninja/swagger-ui-bundle.js").status_code == 200


def test_the_public_leaderboard_csv_and_the_exported_one_share_one_layout(client, tmp_path):
    import csv

    from arena.exports.filters import ExportFilters
    from arena.exports.writer import write_export
    from arena.leaderboards.snapshots import compute_snapshots
    from tests.arena.leaderboards.test_leaderboards import cast_votes

    campaign = make_campaign(slug="one-layout", prompts=4)
    cast_votes(campaign, 20)
    compute_snapshots(campaign)
    public = list(csv.reader(client.get("/c/one-layout/leaderboard.csv").content.decode().splitlines()))
    path = tmp_path / "board.csv"
    write_export(campaign, "leaderboard-csv", ExportFilters(dimension="", category=""), path)
    exported = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    assert public[0] == exported[0]
    assert {"both_bad", "dimension", "category", "method", "provisional"} <= set(public[0])
    overall = [row for row in exported[1:] if row[0] == "" and row[1] == "" and row[2] == "davidson"]
    assert public[1:] == overall and len(overall) == 3


def test_the_dashboards_status_buttons_confirm_the_change(staff_client):
    make_campaign(slug="dash-status", status=Campaign.Status.ACTIVE)
    response = staff_client.post(reverse("arena:set-status", args=["dash-status"]), {"status": "paused"}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Campaign dash-status is now paused."]
    assert "Campaign dash-status is now paused." in response.content.decode()
