"""The battle a voter is shown next, with every rule of a hand-out: for the battle page, and for a
vote's reply that carries the next battle (the voting page's in-place flow and the JSON API)."""

from __future__ import annotations

from django.http import HttpRequest

from arena.core.errors import ArenaError, Conflict
from arena.models import Campaign, Voter
from arena.services import access, battles
from arena.services.new_battles import BattleView
from arena.services.profiles import CampaignProfile


def hand_out(profile: CampaignProfile, voter: Voter, *, authenticated: bool) -> BattleView:
    """The voter's open battle, else a new one, if they may vote in the campaign."""
    access.check_may_vote(profile.campaign, voter, authenticated=authenticated)
    return battles.open_battle(profile, voter.pk)


def after_vote(
    request: HttpRequest, slug: str, voter: Voter, refused: ArenaError | None
) -> tuple[BattleView | None, ArenaError | None]:
    """The next battle a vote's reply carries, or why there is none: ``refused`` (the battle rate
    limits, counted with the vote), any rule of the hand-out, or a campaign whose next battle is not a
    pairwise battle of its prompt set (live and ranking campaigns have their own pages)."""
    try:
        if refused is not None:
            raise refused
        profile = access.visible_profile(request, slug)
        campaign = profile.campaign
        if campaign.task != Campaign.Task.PAIRWISE or campaign.mode == Campaign.Mode.LIVE:
            raise Conflict("This campaign's next battle is on its own page.")
        return hand_out(profile, voter, authenticated=request.user.is_authenticated), None
    except ArenaError as error:
        return None, error
