"""The analyst's journey in a real browser: log in, export battles and the leaderboard from the admin,
download them, and read the API docs, which run under the site's Content-Security-Policy with every
asset served by the site itself (no CDN, no inline script)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

# Recorded before any page script runs (Playwright's init scripts are not subject to the page's CSP).
CSP_LISTENER = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));
"""


@pytest.fixture
def watched(page, live_server):
    """The page, and every console error, page error, CSP violation and request to another host."""
    problems: list[str] = []
    host = urlsplit(live_server.url).netloc
    page.add_init_script(CSP_LISTENER)
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on(
        "request",
        lambda req: (
            problems.append(f"off-site request: {req.url}")
            if urlsplit(req.url).scheme in ("http", "https") and urlsplit(req.url).netloc != host
            else None
        ),
    )
    return page, problems


def test_the_api_docs_render_under_the_sites_csp_with_their_own_assets(watched, live_server):
    page, problems = watched
    response = page.goto(f"{live_server.url}/api/v1/docs")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Arena API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-summary-path")
    paths = page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.textContent)")
    assert "/api/v1/campaigns" in [p.replace("\u200b", "") for p in paths]
    page.click(".opblock-summary-path >> nth=0")  # an operation opens (the UI's script runs)
    page.wait_for_selector(".opblock-body")
    assert page.evaluate("window.__csp") == []
    assert problems == [], problems


def log_in(page, live_server, django_user_model) -> None:
    django_user_model.objects.create_user("analyst", password="pw-analyst-1", is_staff=True, is_superuser=True)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "analyst")
    page.fill("#id_password", "pw-analyst-1")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def test_an_analyst_exports_battles_and_the_leaderboard_then_reads_the_api_docs(
    watched, live_server, django_user_model
):
    import json

    from arena.leaderboards.snapshots import compute_snapshots
    from tests.arena.leaderboards.test_leaderboards import cast_votes
    from tests.factories import make_campaign

    page, problems = watched
    campaign = make_campaign(slug="analyst", prompts=4)
    cast_votes(campaign, 20)
    compute_snapshots(campaign)
    log_in(page, live_server, django_user_model)

    page.goto(f"{live_server.url}/admin/arena/campaign/{campaign.pk}/change/")
    page.click("a.campaign-link:text('Exports')")
    for fmt in ("battles-jsonl", "leaderboard-csv"):
        page.select_option("#id_format", fmt)
        page.click("#export-form input[type=submit]")
        page.wait_for_selector(f"#export-jobs tr.export-done:has(td:text('{fmt}')) a:text('download')", timeout=30_000)

    with page.expect_download() as battles_download:
        page.click("#export-jobs tr:has(td:text('battles-jsonl')) a:text('download')")
    lines = Path(battles_download.value.path()).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 20
    assert {"conv_metadata", "num_tokens"} <= set(records[0]) | set(records[0]["conversation_a"][0])

    with page.expect_download() as board_download:
        page.click("#export-jobs tr:has(td:text('leaderboard-csv')) a:text('download')")
    exported_header = Path(board_download.value.path()).read_text(encoding="utf-8").splitlines()[0]
    public = page.request.get(f"{live_server.url}/c/analyst/leaderboard.csv").text()
    assert public.splitlines()[0] == exported_header and "both_bad" in exported_header

    page.goto(f"{live_server.url}/api/v1/docs")
    page.wait_for_selector(".opblock-summary-path")
    assert page.evaluate("window.__csp") == []
    assert problems == [], problems
