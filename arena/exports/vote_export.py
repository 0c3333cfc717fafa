"""Battle and preference-pair exports: one pass over the selected votes, records written as they are built.

Rule: a vote row becomes at most one battle record, or the preference pairs of its ranking of the two
sides; rows that cannot become a record are counted in `Progress.skipped` with the reason. The query
and its texts come from `arena.exports.queries`, the record layouts from `arena.exports.formats`, the
files from `arena.exports.sinks`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from arena.exports import formats
from arena.exports.filters import ExportFilters, battle_sources
from arena.exports.formats import Format, PromptText, ResponseText
from arena.exports.progress import Progress, ProgressCallback
from arena.exports.queries import ITEM, TextCache, vote_chunks, vote_rows
from arena.exports.sinks import open_sink
from arena.models import Campaign, ModelEntry

_VERDICT_TIERS = {"left": [["left"], ["right"]], "right": [["right"], ["left"]]}
_loads = json.loads


@dataclass
class _Pair:
    prompt: PromptText
    chosen: ResponseText
    rejected: ResponseText
    chosen_model: int
    rejected_model: int
    margin: float | None


class VoteExport:
    """Battles or preference pairs, one pass over the selected votes."""

    def __init__(self, campaign: Campaign, spec: Format, filters: ExportFilters) -> None:
        self.campaign, self.spec, self.filters = campaign, spec, filters
        self.names = dict(ModelEntry.objects.values_list("id", "name"))
        self.names_json = {pk: formats.dumps(name) for pk, name in self.names.items()}
        self.scales = {d.key: max(1, d.scale_max - d.scale_min) for d in campaign.dimensions.all()}
        self.key = (settings.ARENA_IP_SALT or settings.SECRET_KEY).encode()
        self.voters: dict[int, str] = {}
        self.texts = TextCache()
        self.agreement = spec.kind == "pairs" and filters.margin == "agreement"
        self.with_margin = spec.kind == "pairs" and filters.margin != "none"
        self.campaign_json = formats.dumps(campaign.slug)
        self.dimension_json = formats.dumps(filters.dimension or None)
        # Votes repeat a few score combinations: decode each distinct text once.
        self._scores: dict[str, tuple[dict, str]] = {"{}": ({}, "{}")}

    def scores(self, text: str) -> tuple[dict, str]:
        """A vote's scores (the stored text) decoded, and encoded for a battle record. Do not mutate."""
        known = self._scores.get(text)
        if known is None:
            if len(self._scores) > 50_000:
                self._scores = {"{}": ({}, "{}")}
            scores = _loads(text)
            known = self._scores[text] = (scores, formats.battle_scores_json(scores))
        return known

    # -- records --

    def voter(self, voter_id: int) -> str:
        hashed = self.voters.get(voter_id)
        if hashed is None:
            if len(self.voters) > 100_000:
                self.voters.clear()
            hashed = self.voters[voter_id] = formats.voter_hash(self.key, voter_id)
        return hashed

    def battle(self, row: tuple, stats: Progress) -> str | None:
        (
            battle_id,
            when,
            verdict,
            scores_text,
            duration_ms,
            voter_id,
            left_model,
            right_model,
            prompt_id,
            left_id,
            right_id,
            flagged,
            conversation_text,
        ) = row[:13]
        scores, scores_json = self.scores(scores_text)
        dimension = self.filters.dimension
        if dimension:
            sides = scores.get(dimension) or {}
            winner = formats.score_winner(sides.get("left"), sides.get("right"))
            if winner is None:
                stats.skip("not scored on the dimension")
                return None
        else:
            winner = formats.WINNER[verdict]
        prompt = self.texts.prompts[prompt_id]
        conversation = _loads(conversation_text) if conversation_text != "{}" else None
        live_a = formats.live_messages(conversation, "left") if conversation else None
        if live_a is not None:
            live_b = formats.live_messages(conversation, "right") or []
            conversation_a = formats.dumps(formats.with_token_counts(live_a))
            conversation_b = formats.dumps(formats.with_token_counts(live_b))
            metadata = None  # battle_line counts the live turns
            turn = sum(1 for m in live_a if m["role"] == "user")
        else:
            answer_a, answer_b = self.texts.responses[left_id], self.texts.responses[right_id]
            conversation_a = formats.conversation_json(prompt, answer_a)
            conversation_b = formats.conversation_json(prompt, answer_b)
            metadata = formats.battle_metadata_json(answer_a, answer_b)
            turn = prompt.turn
        return formats.battle_line(
            prompt=prompt,
            model_a_json=self.names_json[left_model],
            model_b_json=self.names_json[right_model],
            winner=winner,
            voter=self.voter(voter_id),
            turn=turn,
            tstamp=when if isinstance(when, float) else when.timestamp(),
            battle_id=battle_id,
            campaign_json=self.campaign_json,
            verdict=verdict,
            dimension_json=self.dimension_json,
            scores_json=scores_json,
            duration_ms=duration_ms,
            flagged=flagged,
            conversation_a=conversation_a,
            conversation_b=conversation_b,
            conv_metadata_json=metadata,
        )

    def _margin(self, row: tuple, scores: dict, chosen: str, rejected: str) -> float | None:
        margin = self.filters.margin
        if margin == "agreement":
            votes, decided, same = row[ITEM], row[ITEM + 1], row[ITEM + 2]
            return round((same - (decided - same)) / votes, 4) if votes else 0.0
        if margin == "scores":
            keys = [self.filters.dimension] if self.filters.dimension else list(self.scales)
            gaps = []
            for key in keys:
                sides = scores.get(key) or {}
                if sides.get(chosen) is not None and sides.get(rejected) is not None:
                    gaps.append((sides[chosen] - sides[rejected]) / self.scales.get(key, 1))
            return round(sum(gaps) / len(gaps), 4) if gaps else 0.0
        return None

    def pairs(self, row: tuple, stats: Progress) -> Iterator[_Pair]:
        """The preference pairs of one vote: its ranking of the two sides, expanded to pairs."""
        (
            _,
            _,
            verdict,
            scores_text,
            _,
            _,
            left_model,
            right_model,
            prompt_id,
            left_id,
            right_id,
            _,
            conversation_text,
        ) = row[:13]
        scores = self.scores(scores_text)[0]
        if self.filters.dimension:
            sides = scores.get(self.filters.dimension) or {}
            tiers = formats.tiers_from_scores([("left", sides.get("left")), ("right", sides.get("right"))])
        else:
            tiers = _VERDICT_TIERS.get(verdict, [])
        if len(tiers) < 2:
            stats.skip("tie, both bad or unscored")
            return
        prompt = self.texts.prompts[prompt_id]
        answers = {"left": self.texts.responses[left_id], "right": self.texts.responses[right_id]}
        if conversation_text != "{}":
            conversation = _loads(conversation_text)
            live = formats.live_messages(conversation, "left")
            if live is not None:
                if len(conversation["user"]) != 1:
                    stats.skip("multi-turn live battle")  # the two sides' earlier answers differ: no shared prompt
                    return
                prompt = PromptText.build(prompt.question_id, live[:1], prompt.category, prompt.language)
                for side in ("left", "right"):
                    answers[side] = ResponseText.build(formats.message_content((conversation.get(side) or [""])[0]))
        models = {"left": left_model, "right": right_model}
        for better, worse, _distance in formats.ranking_pairs(tiers):
            yield _Pair(
                prompt,
                answers[better],
                answers[worse],
                models[better],
                models[worse],
                self._margin(row, scores, better, worse),
            )

    # -- the pass --

    def write(self, path: Path, progress: ProgressCallback) -> Progress:
        spec = self.spec
        query = vote_rows(self.campaign, self.filters, agreement=self.agreement)
        stats = Progress(rows_total=query.count())
        progress(stats)
        sink = open_sink(spec, path, with_margin=self.with_margin)
        try:
            for chunk in vote_chunks(query):
                self.texts.load_chunk(chunk)
                for row in chunk:
                    if spec.kind == "battles":
                        line = self.battle(row, stats)
                        if line is not None:
                            sink.write(line)
                            stats.rows_written += 1
                        continue
                    for pair in self.pairs(row, stats):
                        self._write_pair(sink, row, pair)
                        stats.rows_written += 1
                stats.rows_done += len(chunk)
                progress(stats)
            if spec.kind == "battles" and self.filters.source != "humans":
                for line in battle_sources[0].lines(self.campaign, self.filters.source, self.filters):
                    sink.write(line)
                    stats.rows_written += 1
        finally:
            sink.close()
        return stats

    def _write_pair(self, sink: Any, row: tuple, pair: _Pair) -> None:
        name = self.spec.name
        if name == "openai-jsonl":
            sink.write(formats.openai_line(pair.prompt.messages_json, pair.chosen, pair.rejected))
        elif name == "trl-jsonl":
            tail = formats.pair_metadata_json(
                battle_id=row[0],
                prompt=pair.prompt,
                chosen_model_json=self.names_json[pair.chosen_model],
                rejected_model_json=self.names_json[pair.rejected_model],
                voter=self.voter(row[5]),
                margin=pair.margin if self.with_margin else formats.NO_MARGIN,
            )
            sink.write(formats.trl_line(pair.prompt.messages_json, pair.chosen, pair.rejected, tail))
        else:
            record = {
                "prompt": pair.prompt.messages,
                "chosen": formats.assistant_messages(pair.chosen),
                "rejected": formats.assistant_messages(pair.rejected),
                "margin": pair.margin,
                "battle_id": row[0],
                "question_id": pair.prompt.question_id,
                "chosen_model": self.names[pair.chosen_model],
                "rejected_model": self.names[pair.rejected_model],
                "category": pair.prompt.category,
                "language": pair.prompt.language,
                "voter_id": self.voter(row[5]),
            }
            sink.write(record, pair.prompt.size + pair.chosen.size + pair.rejected.size)
