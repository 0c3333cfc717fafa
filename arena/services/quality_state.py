"""Voter-quality figures kept up to date from the new votes only.

The dashboard's figures (``dashboard.voter_quality``: Krippendorff's alpha on the verdicts and on each
dimension, each voter's agreement with the majority and with gold, and the voter flags of
arena.services.abuse) are sums over units and over each voter's votes in time order, so a small
state of integer counts holds them:

- alpha: for each unit (a prompt and a pair of models for verdicts; a prompt and a model for one
  dimension's scores) the coincidences n_a * n_b - [a = b] * n_a of its values, summed per unit size
  m (the coincidence matrix is their sum divided by m - 1);
- majority: per voter, the votes judged against the others' majority and those that agree; a unit's
  share depends only on its own votes;
- gold: per voter, gold votes and expected ones;
- flags: per voter, the task count, the runs of equal verdicts, and the reported durations and the
  gaps between votes below twice the speed threshold (enough for the exact median below it).

``refresh(campaign)`` reads the votes after the last ones folded, re-reads only the units they touch
(to take each unit's old contribution out and put its new one in), and carries each voter's record
on. Where this could not be exact it starts over from every vote (``full``, one streamed query): a
vote committed below the recent window after later ones were folded, a deleted vote, a changed
exclusion or gold battle, a vote older than its voter's last. Both paths give the same integer state,
so the same figures (tests/arena/services/test_quality_state.py).
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Max

from arena.core.hot_sql import columns, sql
from arena.models import Battle, Campaign, GoldBattle, Vote, Voter
from arena.services import abuse
from arena.services.gold import as_gold_verdict
from arena.services.quality import GoldScore, agreement_figures, agreement_share, alpha_from_coincidence, majority_parts

STATE_KEY = "arena:quality:state:{}"
KEEP_SECONDS = 30 * 24 * 3600
VERSION = 1
SAVE_SECONDS = 30.0
COUNT_SECONDS = 60.0  # how often the votes below the recent window are counted (a deletion shows then)
RECENT = 1000  # the highest folded ids, remembered so that a vote committed late just below them is still read
THRESHOLDS = abuse.Thresholds()  # the dashboard's
_COLUMNS = (
    "id",
    "voter_id",
    "prompt_id",
    "left_model_id",
    "right_model_id",
    "winner_id",
    "verdict",
    "scores",
    "duration_ms",
    "created_at",
    "battle__ranking_id",
    "battle__gold_id",
    "battle__left_id",
    "battle__gold__first_id",
    "battle__gold__expected",
)
_CHUNK = 500  # units per query (three parameters each), voters per query

Parts = Counter  # (m, a, b) -> sum over units of size m of n_a * n_b - [a = b] * n_a


# --- per unit -------------------------------------------------------------------------------------------


def alpha_parts(values: list) -> Counter:
    """One unit's coincidence counts by unit size (nothing below two values: not pairable)."""
    return counted_parts(Counter(values))


def counted_parts(counts: dict) -> Counter:
    """alpha_parts from the unit's value counts."""
    m = sum(counts.values())
    if m < 2:
        return Counter()
    return Counter({(m, a, b): na * nb - (na if a == b else 0) for a, na in counts.items() for b, nb in counts.items()})


def alpha(parts: Counter, level: str = "nominal") -> float | None:
    """Krippendorff's alpha from the summed coincidence counts (in a fixed order: equal states give
    equal floats)."""
    import numpy as np

    if not parts:
        return None
    values = sorted({a for _, a, _ in parts}, key=repr)
    index = {v: i for i, v in enumerate(values)}
    coincidence = np.zeros((len(values), len(values)))
    for (m, a, b), count in sorted(parts.items(), key=lambda item: (item[0][0], index[item[0][1]], index[item[0][2]])):
        coincidence[index[a], index[b]] += count / (m - 1)
    return alpha_from_coincidence(coincidence, values, level)


# --- per voter ------------------------------------------------------------------------------------------


def _longer(best: tuple[int, str], run: tuple[int, str] | None) -> tuple[int, str]:
    """The longer run; the earlier one (``best``) on a tie, as abuse.longest_streak."""
    return run if run is not None and run[0] > best[0] else best


@dataclass
class CappedValues:
    """Values below ``cap`` counted exactly, the others only counted: the exact median when it is
    under cap / 2 (the speed threshold), infinity otherwise (a median at or above the threshold)."""

    cap: float
    below: Counter = field(default_factory=Counter)
    above: int = 0

    def add(self, value: float) -> None:
        if value < self.cap:
            self.below[value] += 1
        else:
            self.above += 1

    def __len__(self) -> int:
        return sum(self.below.values()) + self.above

    def median(self) -> float:
        n = len(self)
        wanted = [n // 2] if n % 2 else [n // 2 - 1, n // 2]
        found: list[float] = []
        seen = 0
        for value in sorted(self.below):
            seen += self.below[value]
            while wanted and wanted[0] < seen:
                found.append(value)
                wanted.pop(0)
            if not wanted:
                break
        if wanted:  # a middle value is at or above the cap
            return math.inf
        return found[0] if len(found) == 1 else (found[0] + found[1]) / 2


@dataclass
class VoterRecord:
    """abuse._per_voter and abuse.reasons_for, carried on one vote at a time."""

    tasks: int = 0
    best: tuple[int, str] = (0, "")  # the longest completed run of one verdict (length, verdict), the first such
    run: tuple[int, str] | None = None  # the current run (length, verdict)
    before: tuple[int, str] | None = None  # the completed run just before it
    ranking: int | None = None
    last: tuple[datetime, int] | None = None  # (created_at, id) of the last vote
    previous_at: datetime | None = None
    durations: CappedValues = field(default_factory=lambda: CappedValues(2 * THRESHOLDS.min_seconds * 1000))
    gaps: CappedValues = field(default_factory=lambda: CappedValues(2 * THRESHOLDS.min_seconds))
    own_reasons: list[str] | None = None

    def add(self, vote_id: int, verdict: str, duration_ms: int | None, created_at: datetime, ranking: int | None):
        self.last, self.own_reasons = (created_at, vote_id), None
        if ranking is not None and ranking == self.ranking:  # another pair of the same ranking: one task
            if self.run is not None and verdict != self.run[1]:
                self._replace_last("ranking")
            return
        self.ranking = ranking
        self.tasks += 1
        self._append(verdict)
        if duration_ms is not None:
            self.durations.add(duration_ms)
        if self.previous_at is not None:
            self.gaps.add((created_at - self.previous_at).total_seconds())
        self.previous_at = created_at

    def _append(self, verdict: str) -> None:
        if self.run is not None and self.run[1] == verdict:
            self.run = (self.run[0] + 1, verdict)
            return
        if self.run is not None:
            self.best, self.before = _longer(self.best, self.run), self.run
        self.run = (1, verdict)

    def _replace_last(self, verdict: str) -> None:
        """The last task's verdict becomes ``verdict`` (a ranking whose pairs disagree)."""
        length, old = self.run
        if length > 1:
            self.before = (length - 1, old)
            self.best, self.run = _longer(self.best, self.before), (1, verdict)
        elif self.before is not None and self.before[1] == verdict:  # joins the run before it
            self.run, self.before = (self.before[0] + 1, verdict), None
        else:
            self.run = (1, verdict)

    def streak(self) -> tuple[int, str]:
        return _longer(self.best, self.run)

    def reasons(self, median_votes: float, gold: GoldScore | None) -> list[str]:
        """abuse's reasons, in its order: volume (against the median voter, so checked each time),
        then the voter's own ones (streak, speed, gold), kept until the voter votes again."""
        t = THRESHOLDS
        if self.own_reasons is None:
            durations = self.durations.median() if len(self.durations) >= t.min_samples else None
            gaps = self.gaps.median() if len(self.gaps) >= t.min_samples else None
            self.own_reasons = abuse.task_reasons(self.tasks, self.streak(), durations, gaps, math.inf, t)
            self.own_reasons += abuse.gold_reasons(gold, t)
        if self.tasks < t.min_volume:  # the volume reason needs at least this many (a shortcut)
            return self.own_reasons
        return abuse.task_reasons(self.tasks, (0, ""), None, None, median_votes, t) + self.own_reasons


# --- the state ------------------------------------------------------------------------------------------


@dataclass
class QualityState:
    """Everything the figures need, as counts; ``low``/``recent``/``folded_low`` say which votes are in."""

    campaign_id: int
    excluded: frozenset[int]
    gold_battles: tuple
    version: int = VERSION
    low: int = 0  # every vote of the campaign with an id up to low is folded ...
    folded_low: int = 0  # ... and there were this many
    recent: set[int] = field(default_factory=set)  # folded ids above low
    verdicts: Counter = field(default_factory=Counter)
    dimensions: dict[str, Counter] = field(default_factory=dict)
    scores: dict[tuple, dict] = field(default_factory=dict)  # (key, prompt, model) -> {score: count}
    majority: dict[int, tuple[int, int]] = field(default_factory=dict)
    gold: dict[int, tuple[int, int]] = field(default_factory=dict)
    voters: dict[int, VoterRecord] = field(default_factory=dict)
    public_ids: dict[int, str] = field(default_factory=dict)
    full_runs: int = 0  # how many times it started over (figures for the benchmark and the tests)
    counted_at: float = -math.inf  # time.time() when the votes up to low were last counted
    serial: int = 0  # folds so far: a stored state with a higher serial is newer than this process's
    saved_at: float = -math.inf  # time.time() of the last save to the cache

    def is_folded(self, vote_id: int) -> bool:
        return vote_id <= self.low or vote_id in self.recent

    def note_folded(self, ids: Iterable[int]) -> None:
        self.recent.update(ids)
        if len(self.recent) > RECENT:
            ordered = sorted(self.recent)
            moved = ordered[: len(ordered) - RECENT]
            self.low, self.folded_low = moved[-1], self.folded_low + len(moved)
            self.recent = set(ordered[len(ordered) - RECENT :])


def _campaign_facts(campaign: Campaign) -> tuple[frozenset[int], tuple]:
    """What, when it changes, changes figures of votes already folded: exclusions and gold battles."""
    excluded = frozenset(Voter.objects.filter(excluded=True).values_list("id", flat=True))
    gold = tuple(GoldBattle.objects.filter(campaign=campaign).order_by("id").values_list("id", "first_id", "expected"))
    return excluded, gold


_LOCAL: dict[int, QualityState] = {}  # this process's latest state per campaign
_LOCK = threading.Lock()


def refresh(campaign: Campaign) -> dict[str, Any]:
    """The campaign's figures after folding its new votes into the state (or all votes when it must
    start over).

    The worker keeps its latest state in memory and stores it in the cache (for the other processes
    and after a restart) when it was rebuilt and at most every SAVE_SECONDS otherwise: any stored
    state is a valid start, one that is older only has more votes to fold.
    """
    key = STATE_KEY.format(campaign.pk)
    with _LOCK:  # one fold at a time per process (the embedded mode runs tasks in request threads)
        state = _LOCAL.pop(campaign.pk, None)  # folding changes it in place: kept only once it succeeded
        stored_serial = cache.get(key + ":serial")
        if state is None or (stored_serial is not None and stored_serial > state.serial):
            state = cache.get(key) or state
        before = None if state is None else state.full_runs
        state = update(campaign, state)
        state.serial += 1
        _LOCAL[campaign.pk] = state
        if state.full_runs != before or abs(time.time() - state.saved_at) > SAVE_SECONDS:
            state.saved_at = time.time()
            cache.set_many({key: state, key + ":serial": state.serial}, timeout=KEEP_SECONDS)
        return figures(campaign, state)


def forget() -> None:
    """Drop this process's states (tests: a rolled-back database reuses campaign and vote ids)."""
    _LOCAL.clear()


def current(campaign_id: int) -> QualityState | None:
    """This process's latest state of the campaign (tests, benchmarks)."""
    return _LOCAL.get(campaign_id)


def update(campaign: Campaign, state: QualityState | None) -> QualityState:
    """``state`` with the campaign's new votes folded in, or a new state from all votes."""
    excluded, gold = _campaign_facts(campaign)
    if (
        state is None
        or state.version != VERSION
        or state.campaign_id != campaign.pk
        or state.excluded != excluded
        or state.gold_battles != gold
    ):
        return full(campaign, excluded, gold, runs=0 if state is None else state.full_runs)
    votes = Vote.objects.filter(campaign=campaign)
    if abs(time.time() - state.counted_at) > COUNT_SECONDS:  # a count of every vote: not on each refresh
        if votes.filter(id__lte=state.low).count() != state.folded_low:  # deleted, or committed very late
            return full(campaign, excluded, gold, runs=state.full_runs)
        state.counted_at = time.time()
    top = max(state.recent, default=state.low)
    rows = list(votes.filter(id__gt=top).order_by("id").values_list(*_COLUMNS))
    if votes.filter(id__gt=state.low, id__lte=top).count() != len(state.recent):
        window = set(votes.filter(id__gt=state.low, id__lte=top).values_list("id", flat=True))
        if not state.recent <= window:
            return full(campaign, excluded, gold, runs=state.full_runs)  # a folded vote was deleted
        late = votes.filter(id__in=sorted(window - state.recent)).values_list(*_COLUMNS)
        rows = sorted([*late, *rows])  # committed after later ones were folded: folded now
    if not rows:
        return state
    by_voter: dict[int, list[tuple]] = defaultdict(list)
    for row in rows:
        by_voter[row[1]].append(row)
    for voter_id, votes in by_voter.items():
        votes.sort(key=lambda row: (row[9], row[0]))
        record = state.voters.get(voter_id)
        if record is not None and record.last is not None and (votes[0][9], votes[0][0]) < record.last:
            return full(campaign, excluded, gold, runs=state.full_runs)  # a vote older than the voter's last
        if record is not None and votes[0][10] is not None and votes[0][10] == record.ranking:
            return full(campaign, excluded, gold, runs=state.full_runs)  # a ranking's pairs across two folds
    _fold_units(state, campaign, [row for row in rows if _in_units(row, state.excluded)])
    for voter_id, votes in by_voter.items():
        record = state.voters.setdefault(voter_id, VoterRecord())
        for row in votes:
            record.add(row[0], row[6], row[8], row[9], row[10])
    _fold_gold(state, rows)
    _note_public_ids(state, by_voter)
    state.note_folded(row[0] for row in rows)
    return state


def full(campaign: Campaign, excluded: frozenset[int] | None = None, gold: tuple | None = None, runs: int = 0):
    """A new state from every vote of the campaign, in one streamed query (one snapshot)."""
    if excluded is None or gold is None:
        excluded, gold = _campaign_facts(campaign)
    state = QualityState(campaign.pk, excluded, gold, full_runs=runs + 1, counted_at=time.time())
    verdict_units: dict[tuple, list] = defaultdict(list)
    score_units: dict[tuple, list] = defaultdict(list)
    top = Vote.objects.filter(campaign=campaign).aggregate(top=Max("id"))["top"] or 0
    rows = (
        Vote.objects.filter(campaign=campaign, id__lte=top)
        .order_by("voter_id", "created_at", "id")
        .values_list(*_COLUMNS)
        .iterator(chunk_size=10_000)
    )
    ids: list[int] = []
    gold_rows: list[tuple] = []
    for row in rows:  # voter by voter, each in time order
        ids.append(row[0])
        record = state.voters.get(row[1]) or state.voters.setdefault(row[1], VoterRecord())
        record.add(row[0], row[6], row[8], row[9], row[10])
        if row[11] is not None:
            gold_rows.append(row)
        elif row[1] not in excluded:
            _add_to_units(row, verdict_units, score_units)
    for values in verdict_units.values():
        state.verdicts.update(alpha_parts([value for _, value in values]))
        _add_majority(state.majority, majority_parts(values), 1)
    for unit, values in score_units.items():
        state.scores[unit] = counts = dict(Counter(values))
        state.dimensions.setdefault(unit[0], Counter()).update(counted_parts(counts))
    _fold_gold(state, gold_rows)
    _note_public_ids(state, state.voters)
    ids.sort()
    state.low, state.folded_low = (ids[-RECENT - 1], len(ids) - RECENT) if len(ids) > RECENT else (0, 0)
    state.recent = set(ids[-RECENT:])
    return state


def _in_units(row: tuple, excluded: frozenset[int]) -> bool:
    """Alpha and the majority count votes on regular battles by voters not excluded."""
    return row[11] is None and row[1] not in excluded


def _add_to_units(row: tuple, verdict_units: dict, score_units: dict) -> None:
    _, voter_id, prompt_id, left, right, winner, verdict, dims = row[:8]
    lo, hi = sorted((left, right))
    verdict_units[(prompt_id, lo, hi)].append((voter_id, winner if winner else verdict))
    for key, sides in (dims or {}).items():
        for side, model in (("left", left), ("right", right)):
            if side in sides:
                score_units[(key, prompt_id, model)].append(sides[side])


def _add_majority(majority: dict[int, tuple[int, int]], parts: dict[int, tuple[int, int]], sign: int) -> None:
    for voter, (agree, judged) in parts.items():
        old_agree, old_judged = majority.get(voter, (0, 0))
        new = (old_agree + sign * agree, old_judged + sign * judged)
        if new[1]:
            majority[voter] = new
        else:
            majority.pop(voter, None)


def _fold_units(state: QualityState, campaign: Campaign, rows: list[tuple]) -> None:
    """Take the touched units' old contributions out and put their new ones in: a verdict unit's
    votes are read again (the majority needs who voted what), a score unit's counts are in the state."""
    if not rows:
        return
    new_ids = {row[0] for row in rows}
    touched: set[tuple] = set()
    added_scores: dict[tuple, list] = defaultdict(list)
    for row in rows:
        _, _, prompt_id, left, right = row[:5]
        touched.add((prompt_id, *sorted((left, right))))
        for key, sides in (row[7] or {}).items():
            for side, model in (("left", left), ("right", right)):
                if side in sides:
                    added_scores[(key, prompt_id, model)].append(sides[side])
    old_units: dict[tuple, list] = defaultdict(list)
    new_units: dict[tuple, list] = defaultdict(list)
    for vote_id, voter_id, prompt_id, left, right, winner, verdict in _unit_votes(campaign, sorted(touched)):
        if voter_id in state.excluded:
            continue
        unit, value = (prompt_id, *sorted((left, right))), (voter_id, winner if winner else verdict)
        if state.is_folded(vote_id):
            old_units[unit].append(value)
            new_units[unit].append(value)
        elif vote_id in new_ids:
            new_units[unit].append(value)
        # else: committed since the new votes were read; the next refresh folds it
    for unit in touched:
        old, new = old_units.get(unit, []), new_units[unit]
        state.verdicts.update(alpha_parts([value for _, value in new]))
        state.verdicts.subtract(alpha_parts([value for _, value in old]))
        _add_majority(state.majority, majority_parts(old), -1)
        _add_majority(state.majority, majority_parts(new), 1)
    state.verdicts = +state.verdicts  # drop the zeros: a value no unit holds is no value
    for unit, values in added_scores.items():
        counts = state.scores.setdefault(unit, {})
        parts = state.dimensions.setdefault(unit[0], Counter())
        parts.subtract(counted_parts(counts))
        for value in values:
            counts[value] = counts.get(value, 0) + 1
        parts.update(counted_parts(counts))
    # A dimension stays listed (its alpha None) once a score was given, as in quality.campaign_agreement.
    state.dimensions = {key: +parts for key, parts in state.dimensions.items()}


# The votes on regular battles in these units (prompt, model shown left, model shown right).
_UNIT_VOTES = sql(
    """
    WITH units (p, l, r) AS (VALUES {values})
    SELECT v.{id}, v.{voter}, v.{prompt}, v.{left}, v.{right}, v.{winner}, v.{verdict}
    FROM units
    JOIN {vote} v ON v.{prompt} = units.p AND v.{left} = units.l AND v.{right} = units.r
    JOIN {battle} b ON b.{battle_id} = v.{battle_fk}
    WHERE v.{campaign} = %s AND b.{gold} IS NULL
    """,
    Vote,
    Battle,
    id=columns(Vote, "id"),
    voter=columns(Vote, "voter"),
    prompt=columns(Vote, "prompt"),
    left=columns(Vote, "left_model"),
    right=columns(Vote, "right_model"),
    winner=columns(Vote, "winner"),
    verdict=columns(Vote, "verdict"),
    battle_fk=columns(Vote, "battle"),
    campaign=columns(Vote, "campaign"),
    battle_id=columns(Battle, "id"),
    gold=columns(Battle, "gold"),
)
_UNIT_VALUE = "(CAST(%s AS BIGINT), CAST(%s AS BIGINT), CAST(%s AS BIGINT))"


def _unit_votes(campaign: Campaign, units: list[tuple]) -> Iterator[tuple]:
    """Each unit as (prompt, left, right) both ways round: plain equalities, which an index on the
    vote's (prompt, left model, right model) would answer without reading the prompt's other votes."""
    units = [side for p, lo, hi in units for side in ((p, lo, hi), (p, hi, lo))]
    for start in range(0, len(units), _CHUNK):
        chunk = units[start : start + _CHUNK]
        statement = _UNIT_VOTES.replace("{values}", ", ".join([_UNIT_VALUE] * len(chunk)))
        with connection.cursor() as cursor:
            cursor.execute(statement, [*(n for unit in chunk for n in unit), campaign.pk])
            yield from cursor.fetchall()


def _fold_gold(state: QualityState, rows: Iterable[tuple]) -> None:
    for row in rows:
        if row[11] is None:
            continue
        agree, n = state.gold.get(row[1], (0, 0))
        state.gold[row[1]] = (agree + (as_gold_verdict(row[6], row[12], row[13]) == row[14]), n + 1)


def _note_public_ids(state: QualityState, voter_ids: Iterable[int]) -> None:
    missing = [voter_id for voter_id in voter_ids if voter_id not in state.public_ids]
    for start in range(0, len(missing), _CHUNK):
        state.public_ids.update(
            Voter.objects.filter(id__in=missing[start : start + _CHUNK]).values_list("id", "public_id")
        )


# --- the figures ----------------------------------------------------------------------------------------


def figures(campaign: Campaign, state: QualityState) -> dict[str, Any]:
    """dashboard.voter_quality's figures, from the state."""
    public = state.public_ids
    excluded = frozenset(Voter.objects.filter(excluded=True).values_list("id", flat=True))
    majority = {public[voter]: agreement_share(agree, n) for voter, (agree, n) in state.majority.items()}
    gold_scores = {
        voter: GoldScore(voter, public[voter], agree, n, voter in excluded) for voter, (agree, n) in state.gold.items()
    }
    gold = {score.public_id: score.as_dict() for score in gold_scores.values()}
    flags = []
    if state.voters:
        median_votes = statistics.median(record.tasks for record in state.voters.values())
        for voter, record in state.voters.items():
            reasons = record.reasons(median_votes, gold_scores.get(voter))
            if reasons:
                flags.append((voter, record.tasks, reasons))
    flags.sort(key=lambda flag: (-flag[1], flag[0]))
    dimension_alpha = {key: alpha(parts, "interval") for key, parts in state.dimensions.items()}
    return {
        **agreement_figures(campaign, alpha(state.verdicts), dimension_alpha, majority, gold),
        "flags": [
            {"voter": public[voter], "votes": votes, "reasons": reasons, "excluded": voter in excluded}
            for voter, votes, reasons in flags
        ],
    }
