"""The battle page is rendered once per campaign and filled per request (arena.web.pages): the filled
frame must be exactly what a full render of the template gives, and it must follow the campaign."""

from __future__ import annotations

import re

import pytest
from django.template.loader import render_to_string

from arena.models import Campaign
from arena.services.battles import BattleView
from arena.services.profiles import campaign_profile, forget_profiles
from arena.web import pages
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db

BATTLE = BattleView(
    id="Ab-3_xY",
    messages=[
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Write `<b>` in **bold**"},
        {"role": "assistant", "content": "Earlier <i>answer</i>"},
        {"role": "user", "content": "And again?"},
    ],
    left_html="<p>left &amp; answer</p>",
    right_html="<pre><code>right</code></pre>",
)


def full_render(profile, battle: BattleView, *, user, csrf_token: str) -> str:
    return render_to_string(
        "arena/battle.html",
        {
            "campaign": profile.campaign,
            "battle": battle,
            "dimensions": profile.dimensions,
            "conversation_html": pages.conversation_html(battle.messages),
            "left_html": battle.left_html,
            "right_html": battle.right_html,
            "csrf_token": csrf_token,
            "user": user,
        },
    )


@pytest.mark.parametrize("staff", [False, True])
def test_a_filled_frame_is_the_full_render(staff, django_user_model):
    make_campaign(slug="framed", dimensions=("helpfulness", "accuracy"), allow_both_bad=False)
    profile = campaign_profile("framed")
    user = django_user_model(username="u", is_staff=staff)
    expected = full_render(profile, BATTLE, user=user, csrf_token="tok123")
    assert pages.battle_page(profile, BATTLE, staff=staff, csrf_token="tok123") == expected
    assert ("/admin/" in expected) is staff
    assert 'name="score-accuracy-right"' in expected and "both_bad" not in expected


def test_slot_values_are_inserted_once_and_never_reread_as_slots():
    make_campaign(slug="framed")
    profile = campaign_profile("framed")
    marker = pages.slot("csrf_token")
    battle = BattleView(id='x"y<z', messages=[{"role": "user", "content": "q"}], left_html=marker, right_html="r")
    html = pages.battle_page(profile, battle, staff=False, csrf_token="tok")
    assert 'action="/b/x&quot;y&lt;z/vote"' in html  # the id is escaped where it is shown
    assert html.count(marker) == 1  # the answer shows the marker as text; nothing replaced it
    assert 'name="csrfmiddlewaretoken" value="tok"' in html


def test_the_frame_follows_changes_to_the_campaign():
    campaign = make_campaign(slug="framed", allow_tie=True)
    before = pages.battle_page(campaign_profile("framed"), BATTLE, staff=False, csrf_token="t")
    assert 'value="tie"' in before
    campaign.title, campaign.allow_tie = "Renamed campaign", False
    campaign.save()  # the profile and its frames are forgotten on save
    after = pages.battle_page(campaign_profile("framed"), BATTLE, staff=False, csrf_token="t")
    assert "Renamed campaign" in after and 'value="tie"' not in after


def test_frames_are_kept_per_profile_and_staff_flag():
    make_campaign(slug="framed")
    profile = campaign_profile("framed")
    assert pages.battle_frame(profile, staff=False) is pages.battle_frame(profile, staff=False)
    assert pages.battle_frame(profile, staff=False) is not pages.battle_frame(profile, staff=True)
    forget_profiles()
    assert pages.battle_frame(campaign_profile("framed"), staff=False) is not pages.battle_frame(profile, staff=False)


def test_a_frame_must_show_every_slot():
    with pytest.raises(ValueError, match="right_html"):
        pages.build_frame("arena/_conversation.html", {"turns": []}, ("right_html",))


def test_the_battle_page_served_is_the_frame_with_this_voters_values(alice, campaign):
    response = alice.get(f"/c/{campaign.slug}/vote/")
    html = response.content.decode()
    battle_id = re.search(r'action="/b/([^/]+)/vote"', html).group(1)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    assert response.cookies["csrftoken"].value and token  # the masked token of this voter's cookie
    assert not re.search(pages.slot("[a-z_]+"), html)  # no marker left over
    assert Campaign.objects.get(pk=campaign.pk).battles.filter(pk=battle_id).exists()
