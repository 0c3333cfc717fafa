"""The admin's journey in a real browser, without detours: log in to the Arena-branded admin, add two
models (backend chosen from the kinds, its settings documented beside the form, tried with "Test this
model"), create a campaign, import its prompts from the campaign's page, generate the answers,
activate it (with a confirmation) and open its public page, every step reached from the one before."""

from __future__ import annotations

import json

import pytest

from arena.models import Campaign, Prompt, Response
from tests.browser.test_analyst_journey import CSP_LISTENER

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_page(page, live_server, django_user_model):
    problems: list[str] = []
    page.add_init_script(CSP_LISTENER)
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    django_user_model.objects.create_user("admin", password="pw-admin-1", is_staff=True, is_superuser=True)
    page.goto(f"{live_server.url}/admin/login/")
    assert "Arena administration" in page.inner_text("#site-name")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw-admin-1")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    yield page
    assert page.evaluate("window.__csp") == []
    assert problems == [], problems


def add_model(page, base: str, name: str, text: str) -> None:
    page.goto(f"{base}/admin/arena/modelentry/add/")
    page.fill("#id_name", name)
    page.select_option("#id_backend", "openai")
    assert page.is_visible("#backend-doc-openai pre.backend-settings-help")  # the chosen kind's settings open
    assert "api_key_env" in page.inner_text("#backend-doc-openai")
    page.select_option("#id_backend", "static")
    assert page.is_visible("#backend-doc-static pre.backend-settings-help")
    assert not page.is_visible("#backend-doc-openai pre.backend-settings-help")
    page.fill("#id_backend_settings", json.dumps({"text": text}))
    page.click("input[name=_continue]")
    page.wait_for_selector("ul.messagelist li.success")


def test_an_admin_creates_and_runs_a_campaign_from_its_admin_page(admin_page, live_server, tmp_path):
    page, base = admin_page, live_server.url
    add_model(page, base, "Heron", "Heron says: {prompt}")
    page.click("a.model-test-link")
    page.fill("#id_prompt", "ping")
    page.click("#model-test-form input[type=submit]")
    assert page.inner_text("#model-test-answer") == "Heron says: ping"
    add_model(page, base, "Ibis", "Ibis says: {prompt}")

    page.goto(f"{base}/admin/arena/campaign/add/")
    page.locator("#id_title").press_sequentially("Bird answers")  # keys, as the slug script listens to them
    assert page.input_value("#id_slug") == "bird-answers"  # prepopulated by the admin's script
    page.click("#id_contenders_add_all")  # the two-list widget: choose all
    page.click("input[name=_continue]")
    page.wait_for_selector("ul.messagelist li.success")
    campaign = Campaign.objects.get(slug="bird-answers")

    page.click("a.campaign-link:text('Import prompts')")
    prompts = tmp_path / "birds.jsonl"
    prompts.write_text("\n".join(json.dumps({"external_id": f"q{i}", "prompt": f"Question {i}?"}) for i in range(3)))
    page.set_input_files("#id_file", str(prompts))
    page.click("form input[type=submit]")
    assert "3 prompts created" in page.inner_text("ul.messagelist li.success")
    assert Prompt.objects.filter(campaign=campaign).count() == 3

    page.click("a.campaign-link:text('Import prompts')")
    page.click(f".breadcrumbs a[href='/admin/arena/campaign/{campaign.pk}/change/']")  # back by the breadcrumbs
    page.click("a.campaign-link:text('Generation progress')")
    page.click("button[value=generate]")
    page.wait_for_selector("ul.messagelist li.success")
    page.wait_for_function("document.querySelector('#generation-bar').value == 6", timeout=30_000)
    assert set(Response.objects.filter(prompt__campaign=campaign).values_list("status", flat=True)) == {"done"}

    page.goto(f"{base}/admin/arena/campaign/")
    page.check(f"input[name=_selected_action][value='{campaign.pk}']")
    page.select_option("select[name=action]", "make_active")
    page.click("button[name=index]")
    assert page.inner_text("ul.messagelist li.success") == "1 campaign(s) now active: Bird answers."

    page.goto(f"{base}/admin/arena/campaign/{campaign.pk}/change/")
    hrefs = page.eval_on_selector_all("a.campaign-link", "links => links.map(a => a.textContent)")
    assert hrefs == ["Import prompts", "Dashboard", "Public page", "Leaderboard", "Exports", "Generation progress"]
    page.click("a.campaign-link:text('Public page')")
    page.click("#start-voting")
    page.wait_for_selector("#answer-a")
    shown = page.inner_text("#answer-a") + page.inner_text("#answer-b")
    assert "says: Question" in shown and "Heron" not in page.inner_text("#label-a")
    response = page.request.get(f"{base}/favicon.ico")
    assert response.ok and "svg" in response.headers["content-type"]
