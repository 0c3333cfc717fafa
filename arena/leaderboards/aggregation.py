"""Folding votes into the stored pairwise aggregates (the Django side of the ratings engine).

Each vote is folded exactly once: ``Vote.folded`` marks the votes already counted, so a recompute
reads only the votes that arrived since the last one (a per-row watermark that, unlike "the largest
id seen", cannot skip a vote whose transaction committed late). Folds of one campaign are serialised
by a row lock on its `EloState`, and a fold marks exactly the vote ids it read.

Votes of excluded voters, of flagged battles (an answer named its model) and of gold battles (they
score the voter, not the models) are never counted; they are marked folded all the same.

The votes are read with one SQL statement per batch, as integer columns where possible, and folded
with numpy (one ``bincount`` per aggregate key); only online Elo walks the votes one by one, in a
plain loop over Python floats. A full rebuild recounts the folded votes into fresh aggregates with
the same code, without rewriting the vote rows, so it gives the same counts as the incremental path.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from django.db import connection, transaction

from arena.core import hot_sql
from arena.leaderboards.models import OVERALL, EloState, PairAggregate
from arena.models import Battle, Campaign, ModelEntry, Prompt, Response, Vote, Voter
from ratings.counts import Outcome, PairCounts
from ratings.elo import update_elo_indexed

FOLD_BATCH = 100_000

# Vote.Verdict values as Outcome codes (model a is the left model).
VERDICT_OUTCOME = {
    Vote.Verdict.LEFT: Outcome.A_WINS,
    Vote.Verdict.RIGHT: Outcome.B_WINS,
    Vote.Verdict.TIE: Outcome.TIE,
    Vote.Verdict.BOTH_BAD: Outcome.BOTH_BAD,
}
_TALLY_KEYS = {int(code): verdict.value for verdict, code in VERDICT_OUTCOME.items()}

# Portable SQL (PostgreSQL and SQLite). ``counted`` is 0 for the votes that must not enter ratings;
# ``longer`` is 1 when the left answer is longer, -1 when the right one is, 0 when they are equal.
_VOTES_SQL = hot_sql.sql(
    """
SELECT v.id, v.left_model_id, v.right_model_id,
       CASE v.verdict {verdicts} ELSE -1 END,
       CASE WHEN u.excluded OR b.flagged OR b.gold_id IS NOT NULL THEN 0 ELSE 1 END,
       CASE WHEN COALESCE(LENGTH(rl.content), 0) > COALESCE(LENGTH(rr.content), 0) THEN 1
            WHEN COALESCE(LENGTH(rl.content), 0) < COALESCE(LENGTH(rr.content), 0) THEN -1 ELSE 0 END,
       p.category,
       CAST(v.scores AS TEXT)
FROM {vote} v
JOIN {battle} b ON b.id = v.battle_id
JOIN {voter} u ON u.id = v.voter_id
JOIN {prompt} p ON p.id = v.prompt_id
LEFT JOIN {response} rl ON rl.id = b.left_id
LEFT JOIN {response} rr ON rr.id = b.right_id
WHERE v.campaign_id = %s AND {where}
ORDER BY v.id
""",
    Vote,
    Battle,
    Voter,
    Prompt,
    Response,
    verdicts=" ".join(f"WHEN '{verdict.value}' THEN {int(code)}" for verdict, code in VERDICT_OUTCOME.items()),
)
_UNFOLDED = _VOTES_SQL.replace("{where}", "NOT v.folded") + "LIMIT %s"
_FOLDED = _VOTES_SQL.replace("{where}", "v.folded")
_MARK_FOLDED_POSTGRES = hot_sql.sql("UPDATE {vote} SET folded = true WHERE id = ANY(%s)", Vote)

Key = tuple[str, str]  # (dimension, category)


@dataclass
class _Votes:
    """One batch of votes as columns, in id order."""

    ids: np.ndarray
    left: np.ndarray  # ModelEntry ids
    right: np.ndarray
    outcome: np.ndarray  # Outcome codes
    counted: np.ndarray  # bool
    longer: np.ndarray  # 1 left longer, -1 right longer, 0 same length
    category: list[str]
    scores: list[str | dict | None]

    @classmethod
    def read(cls, sql: str, params: list) -> _Votes | None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cls.from_rows(cursor.fetchall())

    @classmethod
    def stream(cls, sql: str, params: list, chunk: int) -> Iterator[_Votes]:
        """The rows of one query, converted a chunk at a time: one pass over the joined tables,
        which PostgreSQL runs in parallel (a server-side cursor would not, and was slower here);
        the raw result waits in libpq, about 70 bytes a vote."""
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            while (votes := cls.from_rows(cursor.fetchmany(chunk))) is not None:
                yield votes

    @classmethod
    def from_rows(cls, rows: list[tuple]) -> _Votes | None:
        if not rows:
            return None
        ids, left, right, outcome, counted, longer, category, scores = zip(*rows, strict=True)
        return cls(
            ids=np.array(ids, dtype=np.int64),
            left=np.array(left, dtype=np.int64),
            right=np.array(right, dtype=np.int64),
            outcome=np.array(outcome, dtype=np.int8),
            counted=np.array(counted, dtype=bool),
            longer=np.array(longer, dtype=np.int8),
            category=list(category),
            scores=list(scores),
        )


@dataclass
class _Delta:
    """What a batch of votes adds: counts per aggregate key, bias tallies, and the Elo sequence."""

    counts: dict[Key, PairCounts] = field(default_factory=dict)
    tallies: dict[str, int] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)  # the models indexed by elo_a / elo_b
    elo_a: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    elo_b: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    elo_outcome: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))

    @property
    def n_counted(self) -> int:
        return len(self.elo_outcome)


def _pair_counts(names: np.ndarray, ia: np.ndarray, ib: np.ndarray, outcome: np.ndarray) -> PairCounts:
    """Counts over just the models that appear in these votes (so an aggregate lists a model once
    it has a vote under that key, whether the votes came in one batch or many)."""
    used, index = np.unique(np.concatenate([ia, ib]), return_inverse=True)
    n = len(ia)
    return PairCounts.from_battles(index[:n], index[n:], outcome, models=names[used].tolist())


def _score_outcome(sides: object) -> int:
    if not isinstance(sides, dict):
        return Outcome.SKIP
    left, right = sides.get("left"), sides.get("right")
    if left is None or right is None:
        return Outcome.SKIP
    return Outcome.A_WINS if left > right else Outcome.B_WINS if left < right else Outcome.TIE


def _dimension_outcomes(scores: Iterable[tuple[int, str | dict | None]]) -> dict[str, tuple[list[int], list[int]]]:
    """Per dimension: positions of the votes that score it, and the outcome (higher score wins)."""
    out: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for position, raw in scores:
        data = json.loads(raw) if isinstance(raw, str) else raw
        for key, sides in (data or {}).items():
            code = _score_outcome(sides)
            if code != Outcome.SKIP:
                out[key][0].append(position)
                out[key][1].append(code)
    return out


def _fold_batch(votes: _Votes, names_by_id: dict[int, str]) -> _Delta:
    keep = np.flatnonzero(votes.counted & (votes.outcome >= 0))  # an unknown verdict counts nowhere
    delta = _Delta()
    if not keep.size:
        return delta
    model_ids, index = np.unique(np.concatenate([votes.left[keep], votes.right[keep]]), return_inverse=True)
    names = np.array([names_by_id[i] for i in model_ids.tolist()], dtype=object)
    n = keep.size
    ia, ib, outcome = index[:n], index[n:], votes.outcome[keep]
    delta.counts[(OVERALL, OVERALL)] = _pair_counts(names, ia, ib, outcome)
    categories = [votes.category[i] for i in keep.tolist()]
    if any(categories):
        labels, label_of = np.unique(np.array(categories, dtype=object), return_inverse=True)
        for k, label in enumerate(labels.tolist()):
            if label:
                rows = np.flatnonzero(label_of == k)
                delta.counts[(OVERALL, label)] = _pair_counts(names, ia[rows], ib[rows], outcome[rows])
    scored = ((p, votes.scores[i]) for p, i in enumerate(keep.tolist()) if votes.scores[i] not in (None, "", "{}"))
    for dimension, (positions, codes) in _dimension_outcomes(scored).items():
        rows = np.array(positions, dtype=np.int64)
        delta.counts[(dimension, OVERALL)] = _pair_counts(names, ia[rows], ib[rows], np.array(codes, np.int8))
    per_outcome = np.bincount(outcome, minlength=4)
    delta.tallies = {_TALLY_KEYS[code]: int(per_outcome[code]) for code in range(4) if per_outcome[code]}
    # Decisive votes between answers of different length: did the longer one win?
    winner_side = np.where(outcome == Outcome.A_WINS, 1, np.where(outcome == Outcome.B_WINS, -1, 0))
    for key, value in (
        ("longer_won", winner_side * votes.longer[keep] > 0),
        ("shorter_won", winner_side * votes.longer[keep] < 0),
    ):
        if value.any():
            delta.tallies[key] = int(value.sum())
    delta.names, delta.elo_a, delta.elo_b, delta.elo_outcome = names.tolist(), ia, ib, outcome
    return delta


def _with_names(names: dict[int, str], votes: _Votes) -> dict[int, str]:
    """``names`` (model id -> name) completed with the models of these votes that it lacks."""
    missing = set(np.unique(np.concatenate([votes.left, votes.right])).tolist()) - names.keys()
    if missing:
        names.update(ModelEntry.objects.filter(id__in=missing).values_list("id", "name"))
    return names


def _add_to_state(state: EloState, delta: _Delta) -> None:
    tallies = dict(state.tallies)
    for key, value in delta.tallies.items():
        tallies[key] = tallies.get(key, 0) + value
    state.tallies = tallies
    if delta.n_counted:
        state.ratings = update_elo_indexed(state.ratings, delta.names, delta.elo_a, delta.elo_b, delta.elo_outcome)
    state.n_votes += delta.n_counted


def _locked_state(campaign: Campaign) -> EloState:
    """The campaign's Elo state row, locked until the end of the transaction: the fold lock."""
    state = EloState.objects.select_for_update().filter(campaign=campaign).first()
    if state is None:
        EloState.objects.get_or_create(campaign=campaign)
        state = EloState.objects.select_for_update().get(campaign=campaign)
    return state


def _save_aggregates(campaign: Campaign, counts: dict[Key, PairCounts], *, add: bool) -> None:
    """Write these aggregates, added to the stored ones (``add``) or replacing them."""
    if not counts:
        return
    dimensions = {dimension for dimension, _ in counts}
    categories = {category for _, category in counts}
    stored = {
        (a.dimension, a.category): a
        for a in PairAggregate.objects.filter(campaign=campaign, dimension__in=dimensions, category__in=categories)
    }
    for key, delta in counts.items():
        aggregate = stored.get(key) or PairAggregate(campaign=campaign, dimension=key[0], category=key[1])
        aggregate.set_counts(aggregate.pair_counts() + delta if add and aggregate.pk else delta)
        if aggregate.pk:
            aggregate.save(update_fields=["model_names", "cells", "n_votes", "updated_at"])
        else:
            aggregate.save()


def _mark_folded(ids: np.ndarray) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_MARK_FOLDED_POSTGRES, [ids.tolist()])
        return
    for start in range(0, len(ids), 500):  # SQLite limits the number of query parameters
        Vote.objects.filter(id__in=ids[start : start + 500].tolist()).update(folded=True)


def fold_new_votes(campaign: Campaign, *, batch: int = FOLD_BATCH) -> int:
    """Add the campaign's unfolded votes to its aggregates. Returns how many votes were folded
    (counted or not); each batch is one transaction."""
    names: dict[int, str] = {}
    folded = 0
    while True:
        with transaction.atomic():
            state = _locked_state(campaign)
            votes = _Votes.read(_UNFOLDED, [campaign.pk, batch])
            if votes is None:
                return folded
            delta = _fold_batch(votes, _with_names(names, votes))
            _save_aggregates(campaign, delta.counts, add=True)
            _add_to_state(state, delta)
            state.save(update_fields=["ratings", "tallies", "n_votes"])
            _mark_folded(votes.ids)
            folded += len(votes.ids)
        if len(votes.ids) < batch:  # that was the last of them
            return folded


def rebuild_aggregates(campaign: Campaign, *, batch: int = FOLD_BATCH) -> int:
    """Recount the campaign's folded votes into fresh aggregates (today's exclusions apply), then
    fold the unfolded ones. Returns the number of votes read. The vote rows are not rewritten."""
    names: dict[int, str] = {}
    read = 0
    with transaction.atomic():
        state = _locked_state(campaign)
        state.ratings, state.tallies, state.n_votes = {}, {}, 0
        totals: dict[Key, PairCounts] = {}
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # sort a million votes in memory, not on disk
                cursor.execute("SET LOCAL work_mem = '256MB'")
        for votes in _Votes.stream(_FOLDED, [campaign.pk], batch):
            delta = _fold_batch(votes, _with_names(names, votes))
            for key, counts in delta.counts.items():
                totals[key] = totals[key] + counts if key in totals else counts
            _add_to_state(state, delta)
            read += len(votes.ids)
        keys = PairAggregate.objects.filter(campaign=campaign).values_list("pk", "dimension", "category")
        PairAggregate.objects.filter(pk__in=[pk for pk, *key in keys if tuple(key) not in totals]).delete()
        _save_aggregates(campaign, totals, add=False)
        state.save(update_fields=["ratings", "tallies", "n_votes"])
    return read + fold_new_votes(campaign, batch=batch)
