"""The analyst's journey in a real browser: log in, export battles and the leaderboard from the admin,
download them, and read the API docs, which run under the site's Content-Security-Policy with every
asset served by the site itself (no CDN, no inline script)."""

from __future__ import annotations

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
