"""Export formats: the record layouts, with no database access (see docs/exports.md).

Records are written as JSON text built from pieces that are serialised once and reused: a prompt's
messages are encoded once per prompt and an answer once per response, so a million battles over a
few thousand responses cost one small ``json.dumps`` per battle, not a full encode of both
conversations.

Preference pairs come from rankings: a pairwise vote is a ranking of two responses, a vote scored on
a dimension is a ranking by those scores, and a ranking of N responses (best first) expands to its
N-choose-2 (better, worse) pairs with `ranking_pairs`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from arena.exports.text_stats import NO_STYLE, StyleCounts, conv_metadata, count_tokens, language_name, side_metadata

T = TypeVar("T")


@dataclass(frozen=True)
class Format:
    name: str
    kind: str  # "battles", "pairs" or "leaderboard"
    extension: str
    content_type: str
    label: str


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "battles-jsonl",
            "battles",
            "jsonl",
            "application/x-ndjson; charset=utf-8",
            "Battles, JSON lines (Chatbot Arena battle fields)",
        ),
        Format(
            "battles-json",
            "battles",
            "json",
            "application/json; charset=utf-8",
            "Battles, one JSON list (FastChat elo_analysis.py --clean-battle-file)",
        ),
        Format(
            "trl-jsonl",
            "pairs",
            "jsonl",
            "application/x-ndjson; charset=utf-8",
            "Preference pairs, TRL conversational JSON lines",
        ),
        Format(
            "openai-jsonl",
            "pairs",
            "jsonl",
            "application/x-ndjson; charset=utf-8",
            "Preference pairs, OpenAI preference fine-tuning JSON lines",
        ),
        Format(
            "parquet", "pairs", "parquet", "application/vnd.apache.parquet", "Preference pairs, TRL columns in Parquet"
        ),
        Format("leaderboard-csv", "leaderboard", "csv", "text/csv; charset=utf-8", "Leaderboard, CSV"),
        Format("leaderboard-json", "leaderboard", "json", "application/json; charset=utf-8", "Leaderboard, JSON"),
    )
}

MARGINS = ("none", "scores", "agreement")

# Our verdicts in the public arena's words; model_a is always the left model.
WINNER = {"left": "model_a", "right": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 text kept as is."""
    return _encode(value)


# --- voters -----------------------------------------------------------------------------------------


def voter_hash(key: bytes, voter_id: int) -> str:
    """A stable pseudonym for a voter: HMAC-SHA256 of the database id under a server secret.

    Without the secret the id cannot be recovered or checked by guessing; 64 bits keep collisions
    negligible for millions of voters.
    """
    return hmac.new(key, b"arena.exports.voter:%d" % voter_id, hashlib.sha256).hexdigest()[:16]


# --- outcomes -----------------------------------------------------------------------------------------


def score_winner(left: Any, right: Any) -> str | None:
    """The battle winner by one dimension's scores (higher wins, equal ties); None if a side is unscored."""
    if left is None or right is None:
        return None
    return "model_a" if left > right else "model_b" if left < right else "tie"


def ranking_pairs(tiers: Sequence[Sequence[T]]) -> Iterator[tuple[T, T, int]]:
    """Every (better, worse, distance) pair of a ranking given best tier first.

    Each tier holds responses ranked equal; they form no pair with one another. N responses in N
    tiers give N*(N-1)/2 pairs; ``distance`` is how many tiers apart the two are (1 = adjacent).
    A pairwise vote is the ranking ``[[winner], [loser]]``; a tie is ``[[a, b]]`` and gives nothing.
    """
    for i, upper in enumerate(tiers):
        for j in range(i + 1, len(tiers)):
            for better in upper:
                for worse in tiers[j]:
                    yield better, worse, j - i


def tiers_from_scores(scored: Iterable[tuple[T, float | None]]) -> list[list[T]]:
    """A ranking from scores: best first, equal scores in one tier, unscored items left out."""
    by_score: dict[float, list[T]] = {}
    for item, score in scored:
        if score is not None:
            by_score.setdefault(score, []).append(item)
    return [by_score[score] for score in sorted(by_score, reverse=True)]


# --- messages -----------------------------------------------------------------------------------------


def message_content(turn: Any) -> str:
    """The text of a message given as a string or a {"content": ...} object."""
    if isinstance(turn, dict):
        return str(turn.get("content", ""))
    return "" if turn is None else str(turn)


def live_messages(conversation: dict, side: str) -> list[dict[str, str]] | None:
    """One side of a live battle as messages: the voter's turns, each followed by that side's answer.

    ``Battle.conversation`` is ``{"user": [...], "left": [...], "right": [...]}`` with texts or
    ``{"content": ...}`` objects; None when the battle is not a live one.
    """
    users = conversation.get("user") if isinstance(conversation, dict) else None
    if not isinstance(users, list) or not users:
        return None
    answers = conversation.get(side) or []
    messages = []
    for i, turn in enumerate(users):
        messages.append({"role": "user", "content": message_content(turn)})
        if i < len(answers):
            messages.append({"role": "assistant", "content": message_content(answers[i])})
    return messages


@dataclass(frozen=True)
class PromptText:
    """A prompt, with its messages and fields already encoded for the writers."""

    question_id: str
    messages: list[dict[str, str]]
    category: str
    language: str
    turn: int
    messages_json: str  # "[...]"
    open_json: str  # the same list with num_tokens on each message, without its closing bracket
    question_id_json: str
    category_json: str
    language_json: str  # as stored (a code such as "en")
    language_name_json: str  # as FastChat stores it ("English")

    @classmethod
    def build(cls, question_id: str, messages: list, category: str, language: str) -> PromptText:
        messages = [{"role": str(m.get("role", "user")), "content": message_content(m)} for m in messages or []]
        encoded = dumps(messages)
        counted = dumps(with_token_counts(messages))
        category, language = category or "", language or "unknown"
        return cls(
            question_id=question_id,
            messages=messages,
            category=category,
            language=language,
            turn=sum(1 for m in messages if m["role"] == "user"),
            messages_json=encoded,
            open_json=counted[:-1] + ("," if messages else ""),
            question_id_json=dumps(question_id),
            category_json=dumps(category),
            language_json=dumps(language),
            language_name_json=dumps(language_name(language)),
        )

    @property
    def size(self) -> int:
        return 2 * len(self.messages_json)


@dataclass(frozen=True)
class ResponseText:
    content: str
    content_json: str  # the content as a JSON string literal

    @classmethod
    def build(cls, content: str) -> ResponseText:
        return cls(content=content, content_json=dumps(content))

    @property
    def size(self) -> int:
        return len(self.content) + len(self.content_json)

    @cached_property
    def style(self) -> StyleCounts:
        """Length and Markdown counts, computed once per response (battle exports only)."""
        return StyleCounts.of(self.content)

    @cached_property
    def metadata_a_json(self) -> str:
        """This answer's half of a battle's conv_metadata as side a (the object's members), encoded once."""
        return dumps(side_metadata(self.style, "a"))[1:-1]

    @cached_property
    def metadata_b_json(self) -> str:
        return dumps(side_metadata(self.style, "b"))[1:-1]


def with_token_counts(messages: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Messages with FastChat's ``num_tokens`` on each (see arena.exports.text_stats)."""
    return [{**m, "num_tokens": count_tokens(m["content"])} for m in messages]


def conversation_json(prompt: PromptText, answer: ResponseText) -> str:
    """The prompt's messages followed by the answer, as a JSON list (OpenAI-style messages, each with
    FastChat's ``num_tokens``)."""
    tokens = answer.style.tokens
    return f'{prompt.open_json}{{"role":"assistant","content":{answer.content_json},"num_tokens":{tokens}}}]'


def battle_metadata_json(answer_a: ResponseText, answer_b: ResponseText) -> str:
    """FastChat's conv_metadata of a battle with one answer per side, from pieces encoded per response."""
    return f"{{{answer_a.metadata_a_json},{answer_b.metadata_b_json}}}"


def conversation_style(messages: list[dict[str, Any]]) -> StyleCounts:
    """The assistant turns of one side, counted together."""
    total = NO_STYLE
    for message in messages:
        if message.get("role") == "assistant":
            total = total + StyleCounts.of(message_content(message))
    return total


def metadata_from_conversations(conversation_a: str, conversation_b: str) -> str:
    """conv_metadata computed from two encoded conversations (for callers without ResponseText pieces)."""
    return dumps(
        conv_metadata(conversation_style(json.loads(conversation_a)), conversation_style(json.loads(conversation_b)))
    )


def _assistant_json(answer: ResponseText) -> str:
    return f'[{{"role":"assistant","content":{answer.content_json}}}]'


# --- line formats ---------------------------------------------------------------------------------
# Records are assembled from pre-encoded JSON pieces: every text goes through `dumps`, and the rest
# are numbers, booleans and fixed words.

_WINNER_JSON = {w: dumps(w) for w in WINNER.values()}
_VERDICT_JSON = {v: dumps(v) for v in WINNER}
NO_MARGIN = object()


def _number(value: Any) -> str:
    return "null" if value is None else repr(value)


def battle_line(
    *,
    prompt: PromptText,
    model_a_json: str,
    model_b_json: str,
    winner: str,
    voter: str,
    turn: int,
    tstamp: float,
    battle_id: str,
    campaign_json: str,
    verdict: str,
    dimension_json: str,
    scores_json: str,
    duration_ms: int | None,
    flagged: bool,
    conversation_a: str,
    conversation_b: str,
    conv_metadata_json: str | None = None,
) -> str:
    """One battle record (no newline): the public arena's fields (FastChat's analysis reads them all,
    ``conv_metadata`` and ``language`` as a name included), ours, then both conversations.

    ``conv_metadata_json`` comes from `battle_metadata_json`; without it, it is computed from the
    conversations.
    """
    verdict_json = _VERDICT_JSON.get(verdict) or dumps(verdict)
    if conv_metadata_json is None:
        conv_metadata_json = metadata_from_conversations(conversation_a, conversation_b)
    return (
        f'{{"question_id":{prompt.question_id_json},"model_a":{model_a_json},"model_b":{model_b_json},'
        f'"winner":{_WINNER_JSON[winner]},"judge":"{voter}","turn":{turn},"anony":true,'
        f'"language":{prompt.language_name_json},"tstamp":{float(tstamp)!r},"conv_metadata":{conv_metadata_json},'
        f'"battle_id":{dumps(battle_id)},"campaign":{campaign_json},"position_a":"left","verdict":{verdict_json},'
        f'"dimension":{dimension_json},"scores":{scores_json},'
        f'"duration_ms":{_number(duration_ms)},"category":{prompt.category_json},"language_code":{prompt.language_json},'
        f'"voter_id":"{voter}","flagged":{"true" if flagged else "false"},'
        f'"conversation_a":{conversation_a},"conversation_b":{conversation_b}}}'
    )


def battle_scores_json(scores: dict) -> str:
    """Dimension scores of a vote, ``{key: {"left": n, "right": m}}``, in model_a / model_b terms."""
    return dumps({k: {"model_a": v.get("left"), "model_b": v.get("right")} for k, v in scores.items()})


def pair_metadata_json(
    *,
    battle_id: str,
    prompt: PromptText,
    chosen_model_json: str,
    rejected_model_json: str,
    voter: str,
    margin: Any = NO_MARGIN,
) -> str:
    """The fields after prompt / chosen / rejected in a TRL record, from the comma to the closing brace."""
    head = "" if margin is NO_MARGIN else f',"margin":{_number(margin)}'
    return (
        f'{head},"battle_id":{dumps(battle_id)},"question_id":{prompt.question_id_json},'
        f'"chosen_model":{chosen_model_json},"rejected_model":{rejected_model_json},'
        f'"category":{prompt.category_json},"language":{prompt.language_json},"voter_id":"{voter}"}}'
    )


def trl_line(prompt_json: str, chosen: ResponseText, rejected: ResponseText, tail: str = "}") -> str:
    """TRL's conversational preference record: prompt messages, chosen and rejected assistant turns,
    then ``tail`` (see `pair_metadata_json`)."""
    return f'{{"prompt":{prompt_json},"chosen":{_assistant_json(chosen)},"rejected":{_assistant_json(rejected)}{tail}'


def openai_line(prompt_json: str, chosen: ResponseText, rejected: ResponseText) -> str:
    """OpenAI's preference fine-tuning record; nothing else, since the upload validator is strict."""
    return (
        f'{{"input":{{"messages":{prompt_json}}},"preferred_output":{_assistant_json(chosen)},'
        f'"non_preferred_output":{_assistant_json(rejected)}}}'
    )


def assistant_messages(answer: ResponseText) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": answer.content}]


PAIR_METADATA = ("battle_id", "question_id", "chosen_model", "rejected_model", "category", "language", "voter_id")


def parquet_schema(with_margin: bool):
    """prompt / chosen / rejected as lists of {role, content} structs, then metadata columns."""
    import pyarrow as pa

    messages = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    fields = [("prompt", messages), ("chosen", messages), ("rejected", messages)]
    if with_margin:
        fields.append(("margin", pa.float64()))
    fields += [(name, pa.string()) for name in PAIR_METADATA]
    return pa.schema(fields)


# --- leaderboards -----------------------------------------------------------------------------------

LEADERBOARD_COLUMNS = [
    "dimension",
    "category",
    "method",
    "rank",
    "model",
    "rating",
    "ci_low",
    "ci_high",
    "votes",
    "wins",
    "losses",
    "ties",
    "both_bad",
    "win_rate",
    "provisional",
    "n_votes",
    "computed_at",
]
