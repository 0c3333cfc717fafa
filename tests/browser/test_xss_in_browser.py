"""XSS payloads in every place a voter sees untrusted text; none may run in the browser."""

from __future__ import annotations

import pytest

from arena.models import Campaign, Dimension, ModelEntry, Prompt, Response
from arena.services.items import create_items
from tests.arena.web.test_anonymity_and_xss import PAYLOADS

pytestmark = pytest.mark.django_db(transaction=True)
SHORT = [p for p in PAYLOADS if len(p) <= 90]


def test_no_payload_executes_on_any_voter_page(page, live_server):
    everything = "\n\n".join(PAYLOADS)
    campaign = Campaign.objects.create(slug="xss", title=SHORT[0], status="active", instructions=everything)
    for i, label in enumerate(SHORT[:5]):
        Dimension.objects.create(campaign=campaign, key=f"d{i}", label=label, help_text=label)
    models = [ModelEntry.objects.create(name=SHORT[1]), ModelEntry.objects.create(name=SHORT[2])]
    campaign.contenders.set(models)
    prompt = Prompt.objects.create(
        campaign=campaign,
        messages=[
            {"role": "user", "content": everything},
            {"role": "assistant", "content": everything},
            {"role": "user", "content": everything},
        ],
        external_id="x",
    )
    for model in models:
        Response.objects.create(prompt=prompt, model=model, content=everything, status="done")
    create_items(campaign, [prompt.id])

    fired: list[str] = []
    page.on("dialog", lambda dialog: (fired.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda exc: fired.append(f"pageerror {exc}"))
    for url in ["/", f"/c/{campaign.slug}/", f"/c/{campaign.slug}/vote/"]:
        page.goto(live_server.url + url)
        page.wait_for_load_state("load")
    # Give every onload/onerror/autofocus handler a chance to run, then click every link and button
    # that is not the vote itself.
    page.mouse.click(5, 5)
    for link in page.locator("main a[href]").all():
        href = link.get_attribute("href") or ""
        assert not href.strip().lower().startswith(("javascript:", "data:", "vbscript:")), href
    page.click('button[value="tie"]')
    page.wait_for_selector("#name-a")
    page.wait_for_timeout(300)
    assert page.evaluate("document.querySelectorAll('main script, main iframe, main object, main embed').length") == 0
    assert fired == []
