"""Anonymity before the vote, and untrusted model output rendered inert."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from arena.models import Campaign, ModelEntry, Prompt, Response
from arena.rendering import render_markdown
from arena.services.items import create_items

pytestmark = pytest.mark.django_db

PAYLOADS = [
    line.replace("\\n", "\n")
    for line in (Path(__file__).resolve().parents[2] / "data" / "xss_payloads.txt").read_text().splitlines()
    if line.strip()
]


@pytest.fixture
def secret_campaign(db):
    """Two models with distinctive names and ids, so that any leak is visible in a scan."""
    campaign = Campaign.objects.create(slug="anon", title="Anon", status="active", instructions="Vote.")
    models = [
        ModelEntry.objects.create(id=731_054, name="Zephyrine-Ultra", backend="static"),
        ModelEntry.objects.create(id=731_077, name="Quokkabot-9000", backend="static"),
    ]
    campaign.contenders.set(models)
    prompt = Prompt.objects.create(campaign=campaign, external_id="q", messages=[{"role": "user", "content": "Hi"}])
    for i, model in enumerate(models):
        Response.objects.create(id=918_273 + i, prompt=prompt, model=model, content=f"Hello {i}", status="done")
    create_items(campaign, [prompt.id])
    return campaign, models


def _leaks(response, models) -> list[str]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    haystack = body.decode(errors="replace") + json.dumps(dict(response.headers))
    haystack += " ".join(f"{k}={v.value}" for k, v in response.cookies.items())
    found = []
    for model in models:
        for needle in (model.name, str(model.id), *(str(r.id) for r in model.responses.all())):
            if re.search(rf"(?<![\w-]){re.escape(needle)}(?![\w-])", haystack, re.I):
                found.append(needle)
    return found


def test_nothing_before_the_vote_names_or_identifies_a_model(alice, secret_campaign):
    campaign, models = secret_campaign
    pages = [
        alice.get("/"),
        alice.get(f"/c/{campaign.slug}/"),
        alice.get(f"/c/{campaign.slug}/vote/"),
        alice.post(f"/api/v1/campaigns/{campaign.slug}/battles"),
        alice.get("/api/v1/campaigns"),
    ]
    battle_id = pages[-2].json()["id"]
    pages += [alice.get(f"/b/{battle_id}/", follow=True), alice.get(f"/api/v1/battles/{battle_id}")]
    pages += [alice.get(f"/static/arena/{name}") for name in ("app.js", "app.css")]
    for response in pages:
        assert response.status_code == 200
        assert _leaks(response, models) == [], response.request["PATH_INFO"]
    after = alice.post(f"/b/{battle_id}/vote", {"verdict": "tie"}, follow=True)
    assert _leaks(after, models)  # the scan does find names once they are meant to be shown


# Battle ids: the creation time in milliseconds (hex), then 96 random bits (arena.models.new_battle_id).
BATTLE_ID = r"[0-9a-f]{11}[A-Za-z0-9_-]{16}"


def test_the_battle_url_is_opaque(alice, secret_campaign):
    campaign, _ = secret_campaign
    battle_id = alice.post(f"/api/v1/campaigns/{campaign.slug}/battles").json()["id"]
    assert re.fullmatch(BATTLE_ID, battle_id)


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, attrs))


SAFE_TAGS = {
    "a",
    "p",
    "pre",
    "code",
    "span",
    "em",
    "strong",
    "ul",
    "ol",
    "li",
    "br",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "table",
    "thead",
    "tbody",
    "tr",
    "td",
    "th",
    "del",
    "s",
}


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markdown_rendering_neutralises_xss(payload):
    parser = _Elements()
    parser.feed(render_markdown(payload))
    for tag, attrs in parser.elements:
        assert tag in SAFE_TAGS, tag
        for name, value in attrs:
            assert not name.startswith("on"), name
            if name in {"href", "src"}:
                scheme = re.sub(r"[\s\x00-\x1f]", "", value or "").split(":", 1)[0].lower()
                assert scheme in {"http", "https", "mailto"} or ":" not in (value or ""), value


def test_pages_send_a_strict_content_security_policy(alice, campaign):
    policy = alice.get(f"/c/{campaign.slug}/vote/").headers["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]+)", policy).group(1)
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "object-src 'none'" in policy


def _normalised(text: str, battle_id: str) -> str:
    """A page with what differs between any two battles blanked: its id, per-client tokens, and which
    answer is on which side."""
    text = text.replace(battle_id, "BATTLE")
    text = re.sub(r'(csrfmiddlewaretoken" value=|nonce=)"[^"]*"', r'\1"X"', text)
    return re.sub(r"Hello [01]", "Hello X", text)


def test_a_gold_battle_looks_exactly_like_any_other_battle(secret_campaign):
    """Same prompt, same two answers: the gold battle's page, JSON and headers match the regular one's
    once the battle id, per-client tokens and the random sides are blanked."""
    from django.test import Client

    from arena.models import Battle, GoldBattle
    from arena.services.profiles import forget_profiles

    campaign, models = secret_campaign
    first, second = Response.objects.filter(prompt__campaign=campaign).order_by("id")
    GoldBattle.objects.create(campaign=campaign, prompt=first.prompt, first=first, second=second, expected="first")
    seen = {}
    for kind, rate in (("gold", 1.0), ("regular", 0.0)):
        Campaign.objects.filter(pk=campaign.pk).update(gold_rate=rate)
        forget_profiles()
        voter = Client()
        page = voter.get(f"/c/{campaign.slug}/vote/")
        api = voter.post(f"/api/v1/campaigns/{campaign.slug}/battles")  # the same open battle
        battle_id = api.json()["id"]
        assert (Battle.objects.get(pk=battle_id).gold_id is not None) == (kind == "gold")
        assert re.fullmatch(BATTLE_ID, battle_id)  # the same kind of opaque id
        for response in (page, api):
            assert response.status_code == 200 and _leaks(response, models) == []
        skipped = {"Content-Length", "Set-Cookie", "Expires", "Date"}  # the clock's may differ by a second
        headers = [{k: v for k, v in r.headers.items() if k not in skipped} for r in (page, api)]
        texts = [page.content.decode(), json.dumps(api.json(), sort_keys=True), json.dumps(headers)]
        seen[kind] = [_normalised(text, battle_id) for text in texts]
    assert seen["gold"] == seen["regular"]
