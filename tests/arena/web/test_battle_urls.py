"""Every battle has its own URL (/c/<slug>/b/<id>/), for its voter only: the battle while it is open,
the same battle with the vote and the names once voted (so Back after a vote never shows a new one)."""

from __future__ import annotations

import re

import pytest
from django.core.management import CommandError, call_command

from arena.models import Battle, Campaign, Prompt, Response, Vote
from arena.rendering import render_markdown
from arena.services.items import create_items
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db

HAIKU = "An old silent pond\nA frog jumps into the pond\nSplash! Silence again"


def handed_out(client, campaign: Campaign) -> Battle:
    page = client.get(f"/c/{campaign.slug}/vote/")
    assert page.status_code == 200, page.content[:300]
    battle_id = re.search(rb'action="/b/([^/]+)/vote"', page.content).group(1).decode()
    assert f'data-url="/c/{campaign.slug}/b/{battle_id}/"'.encode() in page.content  # where the page moves to
    return Battle.objects.get(pk=battle_id)


def names(battle: Battle) -> list[bytes]:
    return [battle.left.model.name.encode(), battle.right.model.name.encode()]


def test_the_battle_url_shows_that_battle_without_names_until_the_vote(alice, campaign):
    battle = handed_out(alice, campaign)
    url = f"/c/{campaign.slug}/b/{battle.pk}/"
    for _ in range(2):  # reload never re-rolls
        page = alice.get(url)
        assert page.status_code == 200
        assert f'action="/b/{battle.pk}/vote"'.encode() in page.content
        assert not any(name in page.content for name in names(battle))
        assert page["Cache-Control"].startswith("max-age=0") and "no-store" in page["Cache-Control"]
    assert Battle.objects.filter(voter=battle.voter).count() == 1


def test_the_vote_leads_to_the_battle_url_which_then_shows_the_vote_and_the_names(alice, campaign):
    battle = handed_out(alice, campaign)
    url = f"/c/{campaign.slug}/b/{battle.pk}/"
    response = alice.post(f"/b/{battle.pk}/vote", {"verdict": "left"})
    assert response.status_code == 302 and response["Location"] == url
    back = alice.get(url)  # what Back (or a reload) after the vote shows: this battle, voted
    assert back.status_code == 200
    assert b"You voted" in back.content and all(name in back.content for name in names(battle))
    assert b'action="/b/' not in back.content  # nothing to vote on there
    assert Vote.objects.filter(battle=battle).count() == 1
    nxt = handed_out(alice, campaign)  # the next battle is another one, at its own URL
    assert nxt.pk != battle.pk


def test_another_voter_can_neither_open_nor_vote_on_a_battle_url(alice, bob, campaign):
    battle = handed_out(alice, campaign)
    url = f"/c/{campaign.slug}/b/{battle.pk}/"
    assert bob.get(url).status_code == 404
    assert bob.post(f"/b/{battle.pk}/vote", {"verdict": "left"}).status_code == 404
    assert not Vote.objects.exists()
    alice.post(f"/b/{battle.pk}/vote", {"verdict": "left"})
    revealed = bob.get(url)
    assert revealed.status_code == 404 and not any(name in revealed.content for name in names(battle))


def test_a_battle_url_names_its_own_campaign(alice, campaign):
    battle = handed_out(alice, campaign)
    other = make_campaign(slug="other", models=("O1", "O2"), prompts=1)
    assert alice.get(f"/c/{other.slug}/b/{battle.pk}/").status_code == 404
    assert alice.get(f"/c/{campaign.slug}/b/no-such-battle/").status_code == 404


def test_the_short_battle_url_leads_to_the_open_battle_and_shows_the_reveal(alice, campaign):
    battle = handed_out(alice, campaign)
    response = alice.get(f"/b/{battle.pk}/")
    assert response.status_code == 302 and response["Location"] == f"/c/{campaign.slug}/b/{battle.pk}/"
    alice.post(f"/b/{battle.pk}/vote", {"verdict": "tie"})
    reveal = alice.get(f"/b/{battle.pk}/")
    assert reveal.status_code == 200 and all(name in reveal.content for name in names(battle))


def test_multi_line_answers_keep_their_line_breaks(alice):
    campaign = make_campaign(slug="poems", models=("Poet-1", "Poet-2"), prompts=0)
    prompt = Prompt.objects.create(
        campaign=campaign, external_id="haiku", messages=[{"role": "user", "content": "Write a haiku.\nAbout a frog."}]
    )
    for model in campaign.contenders.all():
        Response.objects.create(prompt=prompt, model=model, content=HAIKU, status=Response.Status.DONE)
    create_items(campaign, [prompt.id])
    page = alice.get(f"/c/{campaign.slug}/vote/").content.decode()
    assert page.count("An old silent pond<br>\nA frog jumps into the pond<br>\nSplash! Silence again") == 2
    assert "Write a haiku.<br>\nAbout a frog." in page  # the prompt too


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("one\ntwo", "<p>one<br>\ntwo</p>\n"),
        ("one\r\ntwo", "<p>one<br>\ntwo</p>\n"),
        ("one\n\ntwo", "<p>one</p>\n<p>two</p>\n"),  # a blank line is still a new paragraph
        ("```\nx = 1\ny = 2\n```", "<pre><code>x = 1\ny = 2\n</code></pre>\n"),  # code keeps its newlines
        ("- a\n- b", "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n"),
        ("<script>alert(1)</script>\nnext", "<p>&lt;script&gt;alert(1)&lt;/script&gt;<br>\nnext</p>\n"),
        (
            "[x](javascript:alert(1))\n<img src=x onerror=alert(1)>",
            "<p>[x](javascript:alert(1))<br>\n&lt;img src=x onerror=alert(1)&gt;</p>\n",
        ),
    ],
)
def test_single_newlines_are_line_breaks_and_nothing_else_changes(text, html):
    assert render_markdown(text) == html


def test_answers_stored_before_line_breaks_are_rendered_again_by_a_command(capsys):
    campaign = make_campaign(slug="old", models=("M1", "M2"), prompts=1)
    other = make_campaign(slug="other", models=("M1", "M2"), prompts=1)
    answer = Response.objects.filter(prompt__campaign=campaign).first()
    Response.objects.filter(prompt__campaign__in=[campaign, other]).update(content=HAIKU, html="<p>stale</p>")
    call_command("render_answers", "old")
    assert "2 answers read, 2 rendered again." in capsys.readouterr().out
    answer.refresh_from_db()
    assert answer.html == render_markdown(HAIKU) and answer.html.count("<br>") == 2
    assert Response.objects.filter(prompt__campaign=other, html="<p>stale</p>").count() == 2  # only that campaign
    call_command("render_answers")
    assert "4 answers read, 2 rendered again." in capsys.readouterr().out
    call_command("render_answers")
    assert "0 rendered again" in capsys.readouterr().out  # idempotent
    with pytest.raises(CommandError, match="No campaign"):
        call_command("render_answers", "nope")
