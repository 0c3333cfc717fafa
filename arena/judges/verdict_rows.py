"""The judge-verdict rows a chunk of pairings reads and writes (arena.judges.judging runs the chunk).

In as few statements as the database allows, each fenced by the run's token (``attempts``):

- ``claim``: queued -> running for a chunk's rows; ``claim_next``: the judge's next pending rows
  straight to running (a freed slot takes them);
- ``load``: the claimed rows with their judge, model, campaign, prompt and answers, as `Run`s;
  ``claim_next_runs``: both in one statement on PostgreSQL;
- ``cached_replies``: the stored replies of deterministic questions (no second call);
- ``store``: each finished run's row, replies and usage; ``store_and_claim``: the write and the next
  pending rows for the slots it freed, in one statement on PostgreSQL.

PostgreSQL gets plain SQL through arena.core.hot_sql (prepared statements, one per statement
whatever the chunk's size); SQLite the same statements with IN lists, or the ORM for the write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import F
from django.utils import timezone

from arena.core import hot_sql
from arena.judges.models import Judge, JudgeVerdict
from arena.models import Campaign, ModelEntry, Prompt, Response
from backends.base import Backend
from backends.params import DecodingParams

MAX_ERROR_CHARS = 2000
ORDERS = ("lo_first", "hi_first")
_S = JudgeVerdict.Status


# -- statements ------------------------------------------------------------------------------------------

# PostgreSQL takes the ids as one array parameter (one prepared statement for every chunk size);
# SQLite gets an IN list of the chunk's size.
_IDS = {"postgresql": "= ANY(%s::bigint[])", "sqlite": "IN ({marks})"}

_CLAIM = (
    "UPDATE {judgeverdict} SET status = 'running', attempts = attempts + 1, started_at = %s, updated_at = %s "
    "WHERE id {ids} AND status = 'queued' RETURNING id, attempts"
)

# What a run reads, in one statement: the ORM's select_related query cost more CPU to build than
# the rest of the run's database work (bench/judges.py).
_LOAD_COLUMNS = (
    "v.id, v.lo_first_raw, v.lo_first_verdict, v.hi_first_raw, v.hi_first_verdict, "
    "j.id, j.template, j.prompt_price, j.completion_price, "
    "m.id, m.name, m.backend, m.backend_settings, m.params, "
    "c.id, c.allow_tie, c.allow_both_bad, c.created_at, p.messages, lo.content, hi.content"
)
_LOAD_JOINS = (
    "JOIN {judge} j ON j.id = v.judge_id JOIN {modelentry} m ON m.id = j.model_id "
    "JOIN {campaign} c ON c.id = j.campaign_id JOIN {prompt} p ON p.id = v.prompt_id "
    "JOIN {response} lo ON lo.id = v.response_lo_id JOIN {response} hi ON hi.id = v.response_hi_id"
)
_LOAD = f"SELECT {_LOAD_COLUMNS} FROM {{judgeverdict}} v {_LOAD_JOINS} WHERE v.id {{ids}} ORDER BY v.id"

# The "<> ''" terms match the partial indexes' condition, so a prepared (generic) plan can use them.
_CACHED = {
    "postgresql": hot_sql.sql(
        "SELECT lo_first_key, lo_first_raw, hi_first_key, hi_first_raw FROM {judgeverdict} "
        "WHERE (lo_first_key = ANY(%s::text[]) AND lo_first_key <> '') "
        "OR (hi_first_key = ANY(%s::text[]) AND hi_first_key <> '')",
        JudgeVerdict,
    ),
    "sqlite": hot_sql.sql(
        "SELECT lo_first_key, lo_first_raw, hi_first_key, hi_first_raw FROM {judgeverdict} "
        "WHERE (lo_first_key IN ({marks}) AND lo_first_key <> '') "
        "OR (hi_first_key IN ({marks}) AND hi_first_key <> '')",
        JudgeVerdict,
    ),
}

# Every row of a chunk in one statement, each fenced on its own token; a reply column is written only
# for the orders asked in this run (their key is set), the usage is added.
_REPLY_COLUMNS = ", ".join(
    f"{order}_{column} = CASE WHEN d.{order}_key = '' THEN v.{order}_{column} ELSE d.{order}_{column} END"
    for order in ORDERS
    for column in ("raw", "verdict", "key")
)
_STORE = hot_sql.sql(
    "UPDATE {judgeverdict} AS v SET status = d.status, outcome = d.outcome, consistent = d.consistent, "
    "scores = d.scores::jsonb, error = d.error, {replies}, "
    "prompt_tokens = v.prompt_tokens + d.prompt_tokens, completion_tokens = v.completion_tokens + "
    "d.completion_tokens, calls = v.calls + d.calls, cost = v.cost + d.cost, updated_at = %s "
    "FROM unnest(%s::bigint[], %s::int[], %s::text[], %s::text[], %s::boolean[], %s::text[], %s::text[], "
    "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
    "%s::bigint[], %s::bigint[], %s::int[], %s::float8[]) "
    "AS d(id, token, status, outcome, consistent, scores, error, lo_first_raw, lo_first_verdict, lo_first_key, "
    "hi_first_raw, hi_first_verdict, hi_first_key, prompt_tokens, completion_tokens, calls, cost) "
    "WHERE v.id = d.id AND v.status = 'running' AND v.attempts = d.token RETURNING v.id",
    JudgeVerdict,
    replies=_REPLY_COLUMNS,
)


def _by_vendor(text: str, ids: list[int], *models) -> tuple[str, list[Any]]:
    """``text`` for this database with its ``{ids}`` condition, and the ids as parameters."""
    if connection.vendor == "postgresql":
        return hot_sql.sql(text, *models, ids=_IDS["postgresql"]), [ids]
    marks = ", ".join(["%s"] * len(ids))
    return hot_sql.sql(text, *models, ids=_IDS["sqlite"].format(marks=marks)), list(ids)


def _now() -> Any:
    return connection.ops.adapt_datetimefield_value(timezone.now())


def claim(verdict_ids: list[int]) -> dict[int, int]:
    """queued -> running for the chunk in one statement, incrementing ``attempts``: each claimed row's
    token by id. Rows another delivery has (or that are finished) are left out."""
    statement, ids = _by_vendor(_CLAIM, verdict_ids, JudgeVerdict)
    now = _now()
    return dict(hot_sql.fetchall(statement, [now, now, *ids]))


def next_pending_update(assignments: str, returning: str) -> dict[str, str]:
    """By database: an UPDATE of ``assignments`` on the judge's next pending pairings (an active
    judge's, oldest first), returning ``returning``. Its parameters: those of ``assignments``, then
    the judge's id and how many. The hand-off (arena.judges.running) queues them; a freed slot of a
    task (`claim_next`) takes them straight to running.

    On PostgreSQL the ids are an array built once (an InitPlan): an ``IN (subquery)`` may be rescanned
    per row, and with SKIP LOCKED each rescan can pick other rows, more than the LIMIT.
    """
    text = (
        f"UPDATE {{judgeverdict}} SET {assignments} WHERE status = 'pending' AND id {{among}}("
        "SELECT v.id FROM {judgeverdict} v JOIN {judge} j ON j.id = v.judge_id "
        "WHERE v.judge_id = %s AND v.status = 'pending' AND j.is_active ORDER BY v.id LIMIT %s{lock}){close} "
        f"RETURNING {returning}"
    )
    return {
        "postgresql": hot_sql.sql(
            text, JudgeVerdict, Judge, among="= ANY(ARRAY", lock=" FOR UPDATE OF v SKIP LOCKED", close=")"
        ),
        "sqlite": hot_sql.sql(text, JudgeVerdict, Judge, among="IN ", lock="", close=""),  # one writer at a time
    }


_CLAIM_NEXT_BY_VENDOR = next_pending_update(
    "status = 'running', attempts = attempts + 1, started_at = %s, updated_at = %s", "id, attempts"
)

# The same with the claimed rows loaded (as `load`), in one statement: PostgreSQL only.
_CLAIM_NEXT_LOAD = hot_sql.sql(
    "WITH claimed AS ({claim}) SELECT {load_columns}, claimed.attempts FROM claimed "
    "JOIN {judgeverdict} v ON v.id = claimed.id {load_joins} ORDER BY v.id",
    JudgeVerdict,
    claim=_CLAIM_NEXT_BY_VENDOR["postgresql"],
    load_columns=_LOAD_COLUMNS,
    load_joins=hot_sql.sql(_LOAD_JOINS, Judge, ModelEntry, Campaign, Prompt, Response),
)

# PostgreSQL, while a task refills: the write, and as many of the judge's next pending pairings as it
# freed (its rows written done or failed) claimed and loaded, in one statement. The first column is
# the ids written (every row has it; one row with NULLs after it when nothing was claimed).
_STORE_AND_CLAIM = hot_sql.sql(
    "WITH stored AS ({store} RETURNING v.id, v.status), claimed AS ({claim}) "
    "SELECT won.ids, x.* FROM (SELECT array_agg(id) AS ids FROM stored) won LEFT JOIN ("
    "SELECT {load_columns}, claimed.attempts FROM claimed JOIN {judgeverdict} v ON v.id = claimed.id {load_joins}"
    ") x ON true",
    JudgeVerdict,
    store=_STORE.removesuffix(" RETURNING v.id"),
    claim=_CLAIM_NEXT_BY_VENDOR["postgresql"].replace(
        "LIMIT %s", "LIMIT (SELECT count(*) FROM stored WHERE stored.status IN ('done', 'failed'))"
    ),
    load_columns=_LOAD_COLUMNS,
    load_joins=hot_sql.sql(_LOAD_JOINS, Judge, ModelEntry, Campaign, Prompt, Response),
)


def claim_next(judge_id: int, count: int) -> dict[int, int]:
    """pending -> running for up to ``count`` of the judge's next pairings (an active judge's), in one
    statement: each row's token by id."""
    now = _now()
    return dict(hot_sql.fetchall(_CLAIM_NEXT_BY_VENDOR[connection.vendor], [now, now, judge_id, count]))


def claim_next_runs(judge_id: int, count: int, known: Known | None = None) -> list[Run]:
    """`claim_next` and `load` in one statement on PostgreSQL (the claim as a data-modifying WITH),
    one after the other elsewhere."""
    if connection.vendor != "postgresql":
        tokens = claim_next(judge_id, count)
        return load(tokens, known) if tokens else []
    now = _now()
    rows = hot_sql.fetchall(_CLAIM_NEXT_LOAD, [now, now, judge_id, count])
    return _runs(rows, {row[0]: row[-1] for row in rows}, known or Known())


# -- loading -------------------------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    """A JSON column as Python data (PostgreSQL's driver decodes jsonb; SQLite gives text)."""
    return json.loads(value) if isinstance(value, str) else value


@dataclass
class Run:
    """A claimed pairing, as the run needs it."""

    verdict_id: int
    token: int
    stored: dict[str, tuple[str, str]]  # order -> (raw, letter) from an earlier run
    judge: Judge
    model: ModelEntry
    campaign: Campaign
    messages: list[dict[str, Any]]
    answers: dict[str, str]
    replies: dict[str, Reply] = field(default_factory=dict)  # this run's, by order
    error: BaseException | None = None
    retries_done: int = 0  # tries of this pairing that ended in a retry (ARENA_GENERATION_MAX_RETRIES)
    calls_left: int = 0  # calls it waits for (the task's thread counts them down)


@dataclass
class Reply:
    text: str
    letter: str
    key: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0


@dataclass
class Known:
    """What a task has built already, reused by its later batches: judges, model entries,
    campaigns, backends and decoding parameters by id."""

    models: dict[int, ModelEntry] = field(default_factory=dict)
    campaigns: dict[int, Campaign] = field(default_factory=dict)
    judges: dict[int, Judge] = field(default_factory=dict)
    backends: dict[int, Backend] = field(default_factory=dict)
    params: dict[int, DecodingParams] = field(default_factory=dict)


def load(tokens: dict[int, int], known: Known | None = None) -> list[Run]:
    """The claimed rows with their judge, model, campaign, prompt and answers: one query."""
    statement, ids = _by_vendor(_LOAD, list(tokens), JudgeVerdict, Judge, ModelEntry, Campaign, Prompt, Response)
    return _runs(hot_sql.fetchall(statement, ids), tokens, known or Known())


def _runs(rows: list[tuple], tokens: dict[int, int], known: Known) -> list[Run]:
    models, campaigns, judges = known.models, known.campaigns, known.judges
    runs = []
    for (
        verdict_id,
        lo_raw,
        lo_letter,
        hi_raw,
        hi_letter,
        judge_id,
        template,
        prompt_price,
        completion_price,
        model_id,
        name,
        backend,
        backend_settings,
        params,
        campaign_id,
        allow_tie,
        allow_both_bad,
        created_at,
        messages,
        lo,
        hi,
        *_,
    ) in rows:
        if (model := models.get(model_id)) is None:
            model = models[model_id] = ModelEntry(
                pk=model_id, name=name, backend=backend, backend_settings=_json(backend_settings), params=_json(params)
            )
        if (campaign := campaigns.get(campaign_id)) is None:
            campaign = campaigns[campaign_id] = Campaign(
                pk=campaign_id, allow_tie=bool(allow_tie), allow_both_bad=bool(allow_both_bad), created_at=created_at
            )
        if (judge := judges.get(judge_id)) is None:
            judge = judges[judge_id] = Judge(
                pk=judge_id,
                model=model,
                campaign=campaign,
                template=template,
                prompt_price=prompt_price,
                completion_price=completion_price,
            )
        runs.append(
            Run(
                verdict_id,
                tokens[verdict_id],
                {"lo_first": (lo_raw, lo_letter), "hi_first": (hi_raw, hi_letter)},
                judge,
                model,
                campaign,
                _json(messages),
                {"lo": lo, "hi": hi},
            )
        )
    return runs


def cached_replies(keys: list[str]) -> dict[str, str]:
    """Stored replies by cache key, for those of ``keys`` any judge run has; one query."""
    if not keys:
        return {}
    if connection.vendor == "postgresql":
        rows = hot_sql.fetchall(_CACHED["postgresql"], [keys, keys])
    else:
        marks = ", ".join(["%s"] * len(keys))
        rows = hot_sql.fetchall(_CACHED["sqlite"].format(marks=marks), [*keys, *keys])
    wanted = set(keys)
    found: dict[str, str] = {}
    for lo_key, lo_raw, hi_key, hi_raw in rows:
        for key, raw in ((lo_key, lo_raw), (hi_key, hi_raw)):
            if key in wanted and raw:
                found.setdefault(key, raw)
    return found


# -- the write -----------------------------------------------------------------------------------------------


def store(runs: list[Run], rows: list[dict[str, Any]]) -> set[int]:
    """Write each run's row (``status``, ``outcome``, ``consistent``, ``scores``, ``error``), its new
    replies and their usage and cost; the ids written (a run that lost its row is left out)."""
    if connection.vendor == "postgresql":
        return _store_bulk(runs, rows)
    return {run.verdict_id for run, row in zip(runs, rows, strict=True) if _store_one(run, row)}


def _usage(run: Run) -> tuple[int, int, int, float]:
    new = [r for r in run.replies.values() if r.key]
    prompt_tokens = sum(r.prompt_tokens for r in new)
    completion_tokens = sum(r.completion_tokens for r in new)
    cost = (prompt_tokens * run.judge.prompt_price + completion_tokens * run.judge.completion_price) / 1e6
    return prompt_tokens, completion_tokens, sum(r.calls for r in new), cost


def _new_reply(run: Run, order: str) -> Reply:
    reply = run.replies.get(order)
    return reply if reply is not None and reply.key else Reply("", "", "")


def store_and_claim(
    runs: list[Run], rows: list[dict[str, Any]], judge_id: int, known: Known
) -> tuple[set[int], list[Run]]:
    """`store`, then as many of the judge's next pending pairings as the rows written done or failed
    freed, claimed and loaded (`claim_next_runs`): one statement on PostgreSQL. Returns the ids
    written and the new runs."""
    if connection.vendor != "postgresql":
        won = store(runs, rows)
        freed = sum(run.verdict_id in won and row["status"] != _S.QUEUED for run, row in zip(runs, rows, strict=True))
        return won, claim_next_runs(judge_id, freed, known) if freed else []
    now = _now()
    result = hot_sql.fetchall(_STORE_AND_CLAIM, [now, *_store_columns(runs, rows), now, now, judge_id])
    won = set(result[0][0] or ())
    claimed = sorted((row[1:] for row in result if row[1] is not None), key=lambda row: row[0])
    return won, _runs(claimed, {row[0]: row[-1] for row in claimed}, known)


def _store_bulk(runs: list[Run], rows: list[dict[str, Any]]) -> set[int]:
    return {row[0] for row in hot_sql.fetchall(_STORE, [_now(), *_store_columns(runs, rows)])}


def _store_columns(runs: list[Run], rows: list[dict[str, Any]]) -> list[list[Any]]:
    """The write's parameters: one array per column of ``_STORE``'s unnest."""
    columns: list[list[Any]] = [[] for _ in range(17)]
    for run, row in zip(runs, rows, strict=True):
        lo, hi = _new_reply(run, "lo_first"), _new_reply(run, "hi_first")
        values = (
            run.verdict_id,
            run.token,
            row["status"],
            row["outcome"],
            row["consistent"],
            json.dumps(row["scores"]),
            row["error"][:MAX_ERROR_CHARS],
            lo.text,
            lo.letter,
            lo.key,
            hi.text,
            hi.letter,
            hi.key,
            *_usage(run),
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    return columns


def _store_one(run: Run, row: dict[str, Any]) -> bool:
    values: dict[str, Any] = {**row, "error": row["error"][:MAX_ERROR_CHARS], "updated_at": timezone.now()}
    for order, reply in run.replies.items():
        if reply.key:
            values.update({f"{order}_raw": reply.text, f"{order}_verdict": reply.letter, f"{order}_key": reply.key})
    prompt_tokens, completion_tokens, calls, cost = _usage(run)
    if run.replies:
        values.update(
            prompt_tokens=F("prompt_tokens") + prompt_tokens,
            completion_tokens=F("completion_tokens") + completion_tokens,
            calls=F("calls") + calls,
            cost=F("cost") + cost,
        )
    owned = JudgeVerdict.objects.filter(pk=run.verdict_id, status=_S.RUNNING, attempts=run.token)
    return owned.update(**values) == 1
