"""Who may vote in a campaign, and how much."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from arena import permissions
from arena.core.errors import LimitReached, NotAllowed, NotFound
from arena.models import Admission, Campaign, Invite, Vote, Voter
from arena.services.profiles import CampaignProfile, campaign_profile
from arena.services.voters import voter_from_cookie

_STATUS_MESSAGES = {
    Campaign.Status.PAUSED: "This campaign is paused. Please come back later.",
    Campaign.Status.CLOSED: "This campaign is closed and no longer accepts votes.",
}


def sees_drafts(user) -> bool:
    """Whether this user may see draft campaigns: staff who may view campaigns, not every staff account."""
    return permissions.allowed(user, permissions.VIEW_CAMPAIGN)


def visible_campaign(request: HttpRequest, slug: str, *, invite: str = "") -> Campaign:
    """A campaign this visitor may see, else "No such campaign" (404): drafts only for staff who may
    view campaigns; private campaigns only for them and those who may vote in it (``may_see``), or
    for a visitor bringing a usable ``invite`` token of it (the invitation link)."""
    campaign = Campaign.objects.filter(slug=slug).first()
    if campaign is None or not may_see(request, campaign, invite=invite):
        raise NotFound("No such campaign.")
    return campaign


def visible_profile(request: HttpRequest, slug: str) -> CampaignProfile:
    """The cached profile of a campaign this visitor may see (the rules of ``visible_campaign``)."""
    profile = campaign_profile(slug)
    if profile is None or not may_see(request, profile.campaign):
        raise NotFound("No such campaign.")
    return profile


def may_see(request: HttpRequest, campaign: Campaign, *, invite: str = "") -> bool:
    """Whether this visitor may see the campaign at all (page, leaderboard, API). Public campaigns
    cost nothing here; a private one looks up the visitor's admission."""
    if campaign.status == Campaign.Status.DRAFT or campaign.private:
        if sees_drafts(request.user):
            return True
        if campaign.status == Campaign.Status.DRAFT:
            return False
        if campaign.access == Campaign.Access.LOGIN:
            return request.user.is_authenticated
        if invite and Invite.objects.filter(campaign=campaign, token=invite, revoked=False).exists():
            return True
        return is_admitted(campaign, voter_from_cookie(request))
    return True


def listed_campaigns(request: HttpRequest) -> QuerySet[Campaign]:
    """The campaigns this visitor may see, for the home page and the API's list."""
    campaigns = Campaign.objects.all()
    if sees_drafts(request.user):
        return campaigns
    campaigns = campaigns.exclude(status=Campaign.Status.DRAFT)
    hidden = Q(private=True)
    if request.user.is_authenticated:
        hidden &= ~Q(access=Campaign.Access.LOGIN)
    if (voter := voter_from_cookie(request)) is not None:
        hidden &= ~Q(pk__in=Admission.objects.filter(voter=voter, invite__revoked=False).values("campaign"))
    return campaigns.exclude(hidden)


def is_admitted(campaign: Campaign, voter: Voter | None) -> bool:
    """Admitted by an invitation that has not been revoked since."""
    admitted = Admission.objects.filter(campaign=campaign, voter=voter, invite__revoked=False)
    return voter is not None and admitted.exists()


def check_open(campaign: Campaign) -> None:
    if campaign.status in _STATUS_MESSAGES:
        raise NotAllowed(_STATUS_MESSAGES[campaign.status])
    if campaign.status != Campaign.Status.ACTIVE:
        raise NotAllowed("This campaign is not open for voting yet.")


NOT_ADMITTED = "This campaign is by invitation only. Please use the link from your invitation."


def check_admitted(campaign: Campaign, voter: Voter | None, *, authenticated: bool) -> None:
    """Login and invitation rules. Revoking an invite shuts out the voters it admitted: here, on every
    hand-out, and when they vote (arena.services.votes checks the same in its statement)."""
    if campaign.access == Campaign.Access.LOGIN and not authenticated:
        raise NotAllowed("Please log in to vote in this campaign.")
    if campaign.access == Campaign.Access.INVITE and not is_admitted(campaign, voter):
        raise NotAllowed(NOT_ADMITTED)


def admit_with_invite(campaign: Campaign, voter: Voter, token: str) -> None:
    """Let the voter in with an invite token; counts one use per voter. A voter whose invitation was
    revoked comes back in with a new, valid one."""
    if Admission.objects.filter(campaign=campaign, voter=voter, invite__revoked=False).exists():
        return
    with transaction.atomic():
        invite = Invite.objects.select_for_update().filter(campaign=campaign, token=token).first()
        if invite is None or not invite.usable:
            raise NotAllowed("This invitation is not valid (revoked, used up, or for another campaign).")
        if Admission.objects.filter(campaign=campaign, voter=voter).update(invite=invite):
            Invite.objects.filter(pk=invite.pk).update(uses=F("uses") + 1)  # readmitted by a new invitation
            return
        try:
            with transaction.atomic():
                Admission.objects.create(campaign=campaign, voter=voter, invite=invite)
        except IntegrityError:
            return
        Invite.objects.filter(pk=invite.pk).update(uses=F("uses") + 1)


def check_vote_limits(campaign: Campaign, voter: Voter) -> None:
    cast = today = 0
    if campaign.vote_limit:
        cast = Vote.objects.filter(campaign=campaign, voter=voter).count()
    if campaign.daily_vote_limit:
        since = timezone.now() - timedelta(days=1)
        today = Vote.objects.filter(campaign=campaign, voter=voter, created_at__gte=since).count()
    check_vote_counts(campaign, cast, today)


def check_vote_counts(campaign: Campaign, cast: int, today: int) -> None:
    """The vote limits, given the voter's votes in the campaign: in all (``cast``) and in the last day."""
    if campaign.vote_limit and cast >= campaign.vote_limit:
        raise LimitReached(f"Thank you! You have cast the {campaign.vote_limit} votes this campaign asks for.")
    if campaign.daily_vote_limit and today >= campaign.daily_vote_limit:
        raise LimitReached("You have reached today's vote limit for this campaign. Please come back tomorrow.")


def check_may_vote(campaign: Campaign, voter: Voter | None, *, authenticated: bool) -> None:
    """Every rule at once, in the order a voter would want to hear about them."""
    check_open(campaign)
    check_admitted(campaign, voter, authenticated=authenticated)
    if voter is not None:
        check_vote_limits(campaign, voter)
