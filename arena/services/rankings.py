"""Ranking tasks: one voter orders N anonymised responses to one prompt, best first.

A submitted ranking is expanded, in the same transaction, into its N-choose-2 pairwise battles
(status voted, ``Battle.ranking`` set, left/right = the two responses in the order shown), each with
its Vote. Ratings, exports and the quality statistics read Vote rows, so a ranking counts there as
N*(N-1)/2 pairwise outcomes without any special case.

Hand-out: the prompt whose least-ranked pair of models has the fewest submitted rankings (that pair
among the N shown, the others drawn at random), found by walking the items' index like battles do;
with as many models as N this is simply "the prompt with the fewest rankings".

Rules, as for battles: the shown order is drawn on the server; a page reload returns the same open
ranking (one open ranking per voter and campaign, guarded by a lock on the voter row); a voter never
gets the same prompt twice; one submission per ranking; another voter's ranking is "not found".
The campaign's vote limits count rankings, not the pairs they expand to (one ranking is one task).
Responses are named to the voter by letter only ("Response A", ...); ids never leave the server.
"""

from __future__ import annotations

import logging
import random
import re
import string
from dataclasses import dataclass
from datetime import timedelta
from itertools import combinations
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Cast, Coalesce, Random
from django.utils import timezone

from arena.core.errors import ArenaError, Conflict, LimitReached, NotFound, NothingToVoteOn
from arena.core.hot_sql import sql
from arena.core.identity import reveals_identity
from arena.leaderboards.scheduling import request_recompute
from arena.models import Battle, Campaign, Item, Prompt, Ranking, Response, Vote, Voter
from arena.services.access import check_admitted, check_open
from arena.services.battles import active_pairs_clause
from arena.services.profiles import CampaignProfile

log = logging.getLogger(__name__)

LABELS = string.ascii_uppercase
MAX_DURATION_MS = 24 * 3600 * 1000
ALREADY_SUBMITTED = "You have already submitted this ranking; your first ranking counts."
_system_random = random.SystemRandom()


@dataclass(frozen=True)
class ShownResponse:
    label: str  # "A", "B", ...
    html: str  # the cached sanitised rendering


@dataclass(frozen=True)
class RankingView:
    """What a ranking page shows before the submission: nothing that identifies a model."""

    id: str
    campaign_slug: str
    messages: list[dict[str, Any]]
    responses: list[ShownResponse]
    status: str


@dataclass(frozen=True)
class RankedResponse:
    rank: int  # 1 = best
    label: str
    model: str
    html: str


@dataclass(frozen=True)
class SubmittedRanking:
    """A submitted ranking and what the voter may now see: the models, best first."""

    id: str
    campaign_slug: str
    messages: list[dict[str, Any]]
    ranked: list[RankedResponse]
    pairs: int


# --- hand-out -----------------------------------------------------------------------------------------


def check_ranking_campaign(campaign: Campaign) -> None:
    if campaign.task != Campaign.Task.RANKING:
        raise Conflict("This campaign asks for pairwise votes, not rankings.")
    if campaign.mode != Campaign.Mode.PROMPT_SET:
        raise Conflict("Ranking tasks need pre-generated responses; this campaign is a live one.")


def check_ranking_limits(campaign: Campaign, voter: Voter) -> None:
    """The campaign's vote limits, counted in submitted rankings."""
    if not (campaign.vote_limit or campaign.daily_vote_limit):
        return
    submitted = Ranking.objects.filter(campaign=campaign, voter=voter, status=Ranking.Status.SUBMITTED)
    if campaign.vote_limit and submitted.count() >= campaign.vote_limit:
        raise LimitReached(f"Thank you! You have submitted the {campaign.vote_limit} rankings this campaign asks for.")
    if campaign.daily_vote_limit:
        since = timezone.now() - timedelta(days=1)
        if submitted.filter(submitted_at__gte=since).count() >= campaign.daily_vote_limit:
            raise LimitReached("You have reached today's limit for this campaign. Please come back tomorrow.")


def check_may_rank(campaign: Campaign, voter: Voter | None, *, authenticated: bool) -> None:
    """Every rule of ``access.check_may_vote``, with the limits counted in rankings."""
    check_ranking_campaign(campaign)
    check_open(campaign)
    check_admitted(campaign, voter, authenticated=authenticated)
    if voter is not None:
        check_ranking_limits(campaign, voter)


def open_ranking(profile: CampaignProfile, voter: Voter) -> RankingView:
    """The voter's open ranking in this campaign, else a new one on the least-ranked eligible prompt.

    Eligible: at least ``ranking_size`` done responses from the campaign's active models, and never
    a prompt this voter has already been given. The responses (a random N of those ready) are shown
    in an order drawn here, on the server.
    """
    campaign = profile.campaign
    check_ranking_campaign(campaign)
    with transaction.atomic():
        # One open ranking per voter and campaign, even when two page loads race.
        Voter.objects.select_for_update().filter(pk=voter.pk).values_list("pk").first()
        ranking = _current_open_ranking(campaign, voter)
        if ranking is None:
            ranking = _new_ranking(profile, voter)
    return _view(ranking, campaign.slug)


def _current_open_ranking(campaign: Campaign, voter: Voter) -> Ranking | None:
    ranking = (
        Ranking.objects.filter(campaign=campaign, voter=voter, status=Ranking.Status.OPEN)
        .order_by("-created_at")
        .first()
    )
    if ranking is None:
        return None
    ready = Response.objects.filter(pk__in=ranking.shown, status=Response.Status.DONE).count()
    if ready != len(ranking.shown):
        # An answer was deleted or is being regenerated: this task can no longer be judged fairly.
        ranking.delete()
        return None
    return ranking


# Front-most items (prompt x model pair) by "fewest ranked, random among equals": the walk of the
# (campaign, vote_count, shuffle) index that battles use, so a hand-out does not scan every prompt.
_CANDIDATES_SQL = sql(
    """
SELECT i.prompt_id, i.model_lo_id, i.model_hi_id, i.vote_count
FROM {item} i
WHERE i.campaign_id = %s {extra}
  AND NOT EXISTS (SELECT 1 FROM {ranking} k WHERE k.voter_id = %s AND k.campaign_id = %s
                  AND k.prompt_id = i.prompt_id)
ORDER BY i.vote_count, i.shuffle
LIMIT %s
""",
    Item,
    Ranking,
)
CANDIDATES = 64


def _new_ranking(profile: CampaignProfile, voter: Voter) -> Ranking:
    """A task on the prompt whose least-ranked pair of models has the fewest rankings, that pair shown.

    Each submitted ranking adds one to the items (prompt x model pair) it ranked, so walking the
    items' index finds the least-ranked prompts without counting rankings. Prompts another voter
    holds an open task on come after the others, which spreads voters who arrive together. When the
    front of the index holds no prompt with N ready answers, an exact (slower) query decides.
    """
    campaign = profile.campaign
    size = campaign.ranking_size
    active = sorted(profile.weights)
    extra, params = active_pairs_clause(profile)
    with connection.cursor() as cursor:
        cursor.execute(_CANDIDATES_SQL.format(extra=extra), [campaign.pk, *params, voter.pk, campaign.pk, CANDIDATES])
        rows = cursor.fetchall()
    since = timezone.now() - timedelta(seconds=settings.ARENA_BATTLE_TTL)
    held = set(
        Ranking.objects.filter(
            prompt_id__in={row[0] for row in rows}, status=Ranking.Status.OPEN, created_at__gt=since
        ).values_list("prompt_id", flat=True)
    )
    rows.sort(key=lambda row: (row[3], row[0] in held, _system_random.random()))
    tried: set[int] = set()
    for prompt_id, model_lo, model_hi, _ in rows:
        if prompt_id in tried:
            continue
        tried.add(prompt_id)
        ready = _ready_responses(prompt_id, active)
        if len(ready) >= size and model_lo in ready and model_hi in ready:
            return _create(campaign, voter, prompt_id, ready, size, (ready[model_lo], ready[model_hi]))
    prompt_id = _least_ranked_prompt(profile, voter, since)
    return _create(campaign, voter, prompt_id, _ready_responses(prompt_id, active), size, ())


def _ready_responses(prompt_id: int, active: list[int]) -> dict[int, int]:
    """model id -> response id of the prompt's done answers from active models."""
    return dict(
        Response.objects.filter(prompt_id=prompt_id, status=Response.Status.DONE, model_id__in=active).values_list(
            "model_id", "pk"
        )
    )


def _create(
    campaign: Campaign, voter: Voter, prompt_id: int, ready: dict[int, int], size: int, include: tuple[int, ...]
) -> Ranking:
    """The task: ``include`` plus a random draw of the other ready answers, all in a random order."""
    others = [pk for pk in ready.values() if pk not in include]
    chosen = [*include, *_system_random.sample(others, size - len(include))]
    shown = _system_random.sample(chosen, size)
    return Ranking.objects.create(campaign=campaign, voter=voter, prompt_id=prompt_id, shown=shown)


def _least_ranked_prompt(profile: CampaignProfile, voter: Voter, since) -> int:
    """The exact rule, prompt by prompt: enough ready answers, not yet given to this voter, fewest
    rankings (submitted, or open and young) first, random among equals."""
    campaign = profile.campaign
    active = list(profile.weights)
    ready = (
        Response.objects.filter(prompt=OuterRef("pk"), status=Response.Status.DONE, model_id__in=active)
        .order_by()
        .values("prompt")
        .annotate(n=Count("pk"))
        .values("n")
    )
    taken = (
        Ranking.objects.filter(prompt=OuterRef("pk"))
        .filter(Q(status=Ranking.Status.SUBMITTED) | Q(created_at__gt=since))
        .order_by()
        .values("prompt")
        .annotate(n=Count("pk"))
        .values("n")
    )
    prompt_id = (
        Prompt.objects.filter(campaign=campaign)
        .exclude(rankings__voter=voter)
        .annotate(
            n_ready=Coalesce(Subquery(ready, output_field=IntegerField()), Value(0)),
            n_taken=Coalesce(Subquery(taken, output_field=IntegerField()), Value(0)),
        )
        .filter(n_ready__gte=campaign.ranking_size)
        .order_by("n_taken", "?")
        .values_list("pk", flat=True)
        .first()
    )
    if prompt_id is None:
        raise NothingToVoteOn("You have ranked everything available in this campaign. Thank you!")
    return prompt_id


def _view(ranking: Ranking, campaign_slug: str) -> RankingView:
    html = dict(Response.objects.filter(pk__in=ranking.shown).values_list("pk", "html"))
    messages = Prompt.objects.filter(pk=ranking.prompt_id).values_list("messages", flat=True).first()
    return RankingView(
        id=ranking.pk,
        campaign_slug=campaign_slug,
        messages=list(messages or []),
        responses=[ShownResponse(LABELS[i], html.get(pk, "")) for i, pk in enumerate(ranking.shown)],
        status=ranking.status,
    )


def voter_ranking(ranking_id: str, voter: Voter | None) -> Ranking:
    """A ranking of this voter; another voter's ranking is reported as missing, not forbidden."""
    ranking = Ranking.objects.select_related("campaign", "prompt").filter(pk=ranking_id).first()
    if ranking is None or voter is None or ranking.voter_id != voter.pk:
        raise NotFound("No such ranking.")
    return ranking


def ranking_view(ranking: Ranking) -> RankingView:
    """The page of one of the voter's rankings (``voter_ranking`` loaded its campaign and prompt)."""
    return _view(ranking, ranking.campaign.slug)


# --- submission ---------------------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s,;>]+")


def parse_order(value: Any) -> list[str]:
    """Labels best first, from a list (["C", "A", "B"]) or a string ("C,A,B", "C A B", "CAB")."""
    if isinstance(value, str):
        text = value.strip().upper()
        parts = [p for p in _SEPARATORS.split(text) if p]
        if len(parts) == 1 and len(parts[0]) > 1 and parts[0].isalpha():
            parts = list(parts[0])
        return parts
    if isinstance(value, list | tuple) and all(isinstance(p, str) for p in value):
        return [p.strip().upper() for p in value]
    raise ArenaError('The order must be a list of response letters, best first, e.g. ["B", "A", "C"].')


def clean_order(order: list[str], size: int) -> list[int]:
    """Positions in the shown order (0 = "A"), best first; exactly a permutation of the shown labels."""
    labels = LABELS[:size]
    expected = ", ".join(labels)
    if not order:
        raise ArenaError(f"Please put all {size} responses in order, best first ({expected}).")
    unknown = [p for p in order if len(p) != 1 or p not in labels]
    if unknown:
        raise ArenaError(f"Unknown response {unknown[0]!r}: this task shows responses {expected}.")
    repeated = sorted({p for p in order if order.count(p) > 1})
    if repeated:
        raise ArenaError(f"Response {repeated[0]} appears more than once; rank each response exactly once.")
    missing = [label for label in labels if label not in order]
    if missing:
        raise ArenaError(f"Response {missing[0]} is missing; rank all {size} responses ({expected}).")
    return [labels.index(p) for p in order]


def submit_ranking(ranking_id: str, voter: Voter, order: Any, duration_ms: int | None = None) -> SubmittedRanking:
    """Store the voter's order and expand it into N-choose-2 voted battles, in one transaction.

    A second submission is refused (409) and changes nothing: the ranking row is locked, then
    claimed with a conditional UPDATE (open -> submitted). Each pair's Vote gets verdict left or
    right by rank, the winner in model terms, no scores, and the ranking's duration.
    """
    with transaction.atomic():
        ranking = Ranking.objects.select_for_update().filter(pk=ranking_id).first()
        if ranking is None or ranking.voter_id != voter.pk:
            raise NotFound("No such ranking.")
        if ranking.status != Ranking.Status.OPEN:
            raise Conflict(ALREADY_SUBMITTED)
        campaign = Campaign.objects.get(pk=ranking.campaign_id)  # the authoritative status
        check_open(campaign)
        check_ranking_limits(campaign, voter)
        positions = clean_order(parse_order(order), len(ranking.shown))
        if duration_ms is not None:
            duration_ms = max(0, min(int(duration_ms), MAX_DURATION_MS))
        responses = {r.pk: r for r in Response.objects.select_related("model").filter(pk__in=ranking.shown).order_by()}
        if len(responses) != len(ranking.shown) or any(r.status != Response.Status.DONE for r in responses.values()):
            raise Conflict("An answer of this task changed while you were ranking it. Please take the next one.")
        ordered_ids = [ranking.shown[i] for i in positions]
        now = timezone.now()
        claimed = Ranking.objects.filter(pk=ranking.pk, status=Ranking.Status.OPEN).update(
            status=Ranking.Status.SUBMITTED, order=ordered_ids, duration_ms=duration_ms, submitted_at=now
        )
        if claimed != 1:
            raise Conflict(ALREADY_SUBMITTED)
        pairs = _expand(ranking, campaign, voter, responses, ordered_ids, duration_ms, now)
        transaction.on_commit(lambda: _after_submit(campaign.pk))
    messages = Prompt.objects.filter(pk=ranking.prompt_id).values_list("messages", flat=True).first() or []
    return SubmittedRanking(
        ranking.pk, campaign.slug, list(messages), _ranked(ranking.shown, ordered_ids, responses), pairs
    )


def _ranked(shown: list[int], ordered_ids: list[int], responses: dict[int, Response]) -> list[RankedResponse]:
    return [
        RankedResponse(rank + 1, LABELS[shown.index(pk)], responses[pk].model.name, responses[pk].html)
        for rank, pk in enumerate(ordered_ids)
        if pk in responses
    ]


def _expand(
    ranking: Ranking,
    campaign: Campaign,
    voter: Voter,
    responses: dict[int, Response],
    ordered_ids: list[int],
    duration_ms: int | None,
    now,
) -> int:
    """The N-choose-2 battles and votes of a submitted ranking; left is the one shown first."""
    rank = {pk: i for i, pk in enumerate(ordered_ids)}
    names = list(campaign.contenders.values_list("name", flat=True))
    leaks = {pk: reveals_identity([r.html], names) for pk, r in responses.items()}
    battles, votes = [], []
    for left_id, right_id in combinations(ranking.shown, 2):
        left, right = responses[left_id], responses[right_id]
        left_wins = rank[left_id] < rank[right_id]
        battle = Battle(
            campaign=campaign,
            voter=voter,
            prompt_id=ranking.prompt_id,
            left=left,
            right=right,
            status=Battle.Status.VOTED,
            flagged=leaks[left_id] or leaks[right_id],
            ranking=ranking,
            created_at=now,
        )
        vote = Vote(
            battle=battle,
            campaign=campaign,
            voter=voter,
            prompt_id=ranking.prompt_id,
            left_model_id=left.model_id,
            right_model_id=right.model_id,
            winner_id=left.model_id if left_wins else right.model_id,
            verdict=Vote.Verdict.LEFT if left_wins else Vote.Verdict.RIGHT,
            scores={},
            duration_ms=duration_ms,
            created_at=now,
        )
        battles.append(battle)
        votes.append(vote)
    Battle.objects.bulk_create(battles)
    Vote.objects.bulk_create(votes)
    # A submitted ranking counts once on the item of every pair it ranked, each reshuffled among its equals.
    models = [r.model_id for r in responses.values()]
    Item.objects.filter(
        campaign=campaign, prompt_id=ranking.prompt_id, model_lo_id__in=models, model_hi_id__in=models
    ).update(vote_count=F("vote_count") + 1, shuffle=Cast(Random() * (2**31 - 1), IntegerField()))
    return len(votes)


def submitted_ranking(ranking: Ranking) -> SubmittedRanking:
    """The reveal of a ranking already submitted (a page reload after the submission)."""
    if ranking.status != Ranking.Status.SUBMITTED:
        raise Conflict("This ranking has not been submitted yet.")
    responses = {r.pk: r for r in Response.objects.select_related("model").filter(pk__in=ranking.shown)}
    ranked = _ranked(ranking.shown, ranking.order, responses)
    pairs = ranking.pairs.count()
    return SubmittedRanking(ranking.pk, ranking.campaign.slug, list(ranking.prompt.messages), ranked, pairs)


def _after_submit(campaign_id: int) -> None:
    """Ask for a leaderboard recompute; never fails the submission (beat recomputes anyway)."""
    try:
        request_recompute(campaign_id)
    except Exception:  # the broker or cache may be down; the ranking is already stored
        log.warning("could not schedule a recompute for campaign %s", campaign_id, exc_info=True)
