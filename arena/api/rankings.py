"""Ranking tasks in the JSON API: get a task, read it, submit the order (best first, by letter).

Voters are identified by the same signed cookie as the pages; the POSTs need the CSRF token like
every state-changing call of the API. Responses are named by letter only until the submission.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema

from arena.api.common import ErrorOut, check_csrf
from arena.core.errors import NotFound
from arena.services import access, rankings, ratelimit
from arena.services.voters import get_or_create_voter, remember_voter, voter_from_cookie

router = Router(tags=["rankings"])


class MessageOut(Schema):
    role: str
    content: str


class ShownOut(Schema):
    label: str = Field(description='"A", "B", ... in the order shown.')
    html: str = Field(description="The response rendered as sanitised HTML.")


class RankingOut(Schema):
    id: str
    campaign: str
    messages: list[MessageOut]
    responses: list[ShownOut]
    status: str


class RankingIn(Schema):
    order: list[str] = Field(
        description='Every shown label exactly once, best first, e.g. ["C", "A", "B"].', min_length=1, max_length=26
    )
    duration_ms: int | None = Field(default=None, ge=0, le=2**31 - 1)


class RankedOut(Schema):
    rank: int
    label: str
    model: str


class SubmittedOut(Schema):
    id: str
    order: list[RankedOut]
    pairs: int = Field(description="Pairwise votes the ranking counts as: N*(N-1)/2.")


def _out(view: rankings.RankingView) -> dict:
    return {
        "id": view.id,
        "campaign": view.campaign_slug,
        "messages": [
            {"role": str(m.get("role", "user")), "content": str(m.get("content", ""))}
            for m in view.messages
            if m.get("role") != "system"
        ],
        "responses": [{"label": r.label, "html": r.html} for r in view.responses],
        "status": view.status,
    }


@router.post(
    "/campaigns/{slug}/rankings",
    response={200: RankingOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 429: ErrorOut},
)
def next_ranking(request: HttpRequest, response: HttpResponse, slug: str):
    """The voter's ranking task in a ranking campaign (their open one if any). Sets the voter cookie on first use."""
    check_csrf(request)
    profile = access.visible_profile(request, slug)
    rankings.check_ranking_campaign(profile.campaign)
    ratelimit.check_battle(request)
    voter, created = get_or_create_voter(request)
    rankings.check_may_rank(profile.campaign, voter, authenticated=request.user.is_authenticated)
    view = rankings.open_ranking(profile, voter)
    if created:
        remember_voter(response, voter)
    return _out(view)


@router.get("/rankings/{ranking_id}", response={200: RankingOut, 404: ErrorOut})
def get_ranking(request: HttpRequest, ranking_id: str):
    """One of your rankings, as shown (letters only, also after the submission)."""
    return _out(rankings.ranking_view(rankings.voter_ranking(ranking_id, voter_from_cookie(request))))


@router.post(
    "/rankings/{ranking_id}/submit",
    response={200: SubmittedOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 429: ErrorOut},
)
def submit_ranking(request: HttpRequest, ranking_id: str, payload: RankingIn):
    """Submit your order, best first; once only. The answer reveals the models in your order."""
    check_csrf(request)
    voter = voter_from_cookie(request)
    if voter is None:
        raise NotFound("No such ranking.")
    ratelimit.check_vote(request)
    submitted = rankings.submit_ranking(ranking_id, voter, payload.order, payload.duration_ms)
    return {
        "id": submitted.id,
        "order": [{"rank": r.rank, "label": r.label, "model": r.model} for r in submitted.ranked],
        "pairs": submitted.pairs,
    }
