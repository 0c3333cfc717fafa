"""Judges in the JSON API (/api/v1/judges): run them, follow their progress, read their figures.

Staff only, with the Django session (as the exports API): reading needs the view-judge (or
change-judge) permission, running needs change-judge; POSTs need the CSRF token. Running calls
`arena.judges.actions.start`, the code behind ``manage.py run_judges`` and the admin action.
"""

from __future__ import annotations

from typing import Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema

from arena.api.common import ErrorOut, StaffSession, Status
from arena.core.errors import NotAllowed
from arena.judges import actions, boards
from arena.permissions import allowed

VIEW_JUDGE = ("judges.view_judge", "judges.change_judge")
CHANGE_JUDGE = ("judges.change_judge",)


router = Router(
    auth=StaffSession(
        VIEW_JUDGE,
        feature="judges",
        missing="Judges need the permission to view judges (judges.view_judge).",
    ),
    tags=["judges"],
)


class RunIn(Schema):
    campaign: str = Field(description="Campaign slug.")
    judge: str | None = Field(None, description="The judge's model name; default: every active judge.")
    scope: Literal["items", "voted"] = Field("items", description="Every prompt x model pair, or the voted ones.")
    limit: int | None = Field(None, ge=1, description="A random sample of this many new pairings.")
    retry_failed: bool = False


class StartedOut(Schema):
    judge: str
    candidates: int
    created: int
    left_out_self: int
    dispatched: int


_ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut}


@router.post("/run", response={202: list[StartedOut], **_ERRORS}, url_name="judges_run")
def run_judges(request: HttpRequest, payload: RunIn):
    """Plan the pairings and hand them to the workers; follow them with ``GET /judges/{slug}/progress``."""
    if not allowed(request.user, CHANGE_JUDGE):
        raise NotAllowed("Running judges needs the permission to change judges (judges.change_judge).")
    judges = actions.judges_of(payload.campaign, payload.judge)
    started = actions.start(judges, scope=payload.scope, limit=payload.limit, retry_failed=payload.retry_failed)
    return Status(
        202,
        [
            {
                "judge": s.judge,
                "candidates": s.plan.candidates,
                "created": s.plan.created,
                "left_out_self": s.plan.left_out_self,
                "dispatched": s.dispatched,
            }
            for s in started
        ],
    )


@router.get("/{slug}/progress", response={200: list[dict], **_ERRORS}, url_name="judges_progress")
def progress(request: HttpRequest, slug: str, judge: str | None = None):
    """Each judge's pairings by status, tokens, calls and estimated cost."""
    return [actions.progress(j).to_dict() for j in actions.judges_of(slug, judge)]


@router.get("/{slug}/agreement", response={200: list[dict], **_ERRORS}, url_name="judges_agreement")
def agreement(request: HttpRequest, slug: str, judge: str | None = None):
    """Judge-human agreement, consistency, biases, rank correlation, human baseline and win rates."""
    return [boards.report(j) for j in actions.judges_of(slug, judge)]


@router.get("/{slug}/leaderboard", response={200: list[dict], **_ERRORS}, url_name="judges_leaderboard")
def leaderboard(request: HttpRequest, slug: str, judge: str | None = None, dimension: str = ""):
    """Each judge's own leaderboard (Bradley-Terry/Davidson, sandwich 95% intervals), overall or on a dimension."""
    out = []
    for j in actions.judges_of(slug, judge):
        board = boards.leaderboard(j, dimension=dimension)
        out.append(
            {"judge": j.name, "dimension": dimension, **(board.to_dict(matrices=False) if board else {"rows": []})}
        )
    return out
