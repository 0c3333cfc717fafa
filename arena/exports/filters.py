"""Export filters: which votes an export reads, parsed from plain values and checked against the format.

Rule: every filter value from a form, JSON or command options goes through `ExportFilters.parse`, which
raises ArenaError with a message naming the filter; `ExportFilters.check` refuses filters that do not
apply to the chosen format or campaign. Nothing here touches files or jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from arena.core.errors import ArenaError
from arena.exports import formats
from arena.exports.formats import FORMATS, Format
from arena.models import Campaign


def _moment(value: Any, name: str, *, end: bool) -> datetime | None:
    """A datetime from ISO text, a date or a datetime. A bare date means the whole day: its start for
    ``since``, the start of the next day for ``until`` (which is exclusive). Naive times are UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:  # a bare date first: parse_datetime would read it as midnight
            parsed: date | datetime | None = parse_date(text) if len(text) == 10 else parse_datetime(text)
        except ValueError:
            parsed = None
        if parsed is None:
            raise ArenaError(f"{name}: {value!r} is not a date (YYYY-MM-DD) or an ISO 8601 date and time.")
        value = parsed
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value, UTC)
    if isinstance(value, date):
        day = value + timedelta(days=1) if end else value
        return datetime.combine(day, dtime.min, tzinfo=UTC)
    raise ArenaError(f"{name}: expected a date or a date and time.")


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "on", "yes", "0", "false", "off", "no", ""}:
        return value.strip().lower() in {"1", "true", "on", "yes"}
    raise ArenaError(f"{name}: expected true or false.")


@dataclass(frozen=True)
class BattleSource:
    """Battle records besides the human votes, for the ``source`` filter: registered by the app that
    owns them (arena.judges, in its AppConfig.ready), so the exports import no such app."""

    parse: Callable[[Any], str]  # the filter's value, normalised; raises ArenaError
    check: Callable[[Campaign, str], None]  # raises ArenaError when the campaign lacks the source
    lines: Callable[[Campaign, str, Any], Iterator[str]]  # battle records under the export's filters


battle_sources: list[BattleSource] = []


def _parse_source(value: Any) -> str:
    if value in (None, "", "humans"):
        return "humans"
    if not battle_sources:
        raise ArenaError("source: only human votes can be exported here.")
    return battle_sources[0].parse(value)


@dataclass(frozen=True)
class ExportFilters:
    """Which votes an export reads, and how pairs are scored. Defaults: every counted vote.

    since / until: vote time, ``since`` inclusive, ``until`` exclusive (a bare date includes that day).
    dimension: battles and pairs are decided by this dimension's scores instead of the verdict.
    category: prompts of this category only.
    include_flagged / include_excluded: keep flagged battles / voters staff excluded (default: drop).
    include_gold: keep votes on gold battles, which check voters, not models (default: drop).
    min_votes: only items (prompt x model pair) with at least this many of the selected votes.
    margin: pairs only: "none", "scores" or "agreement" (see docs/exports.md).
    source: battles only: "humans" (default), "judge:NAME" or "all" (human votes and every judge's
    verdicts; see arena.judges.export and docs/judges.md).
    """

    since: datetime | None = None
    until: datetime | None = None
    dimension: str = ""
    category: str = ""
    include_flagged: bool = False
    include_excluded: bool = False
    include_gold: bool = False
    min_votes: int = 0
    margin: str = "none"
    source: str = "humans"

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None) -> ExportFilters:
        """From a dict of plain values (JSON, a form, command options); raises ArenaError."""
        data = {k: v for k, v in (data or {}).items() if v is not None}
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ArenaError(f"Unknown export filters: {', '.join(sorted(unknown))}.")
        try:
            min_votes = int(data.get("min_votes") or 0)
        except (TypeError, ValueError):
            raise ArenaError("min_votes: expected a whole number.") from None
        margin = str(data.get("margin") or "none")
        result = cls(
            since=_moment(data.get("since"), "since", end=False),
            until=_moment(data.get("until"), "until", end=True),
            dimension=str(data.get("dimension") or "").strip(),
            category=str(data.get("category") or "").strip(),
            include_flagged=_flag(data.get("include_flagged", False), "include_flagged"),
            include_excluded=_flag(data.get("include_excluded", False), "include_excluded"),
            include_gold=_flag(data.get("include_gold", False), "include_gold"),
            min_votes=min_votes,
            margin=margin,
            source=_parse_source(data.get("source")),
        )
        if min_votes < 0:
            raise ArenaError("min_votes cannot be negative.")
        if margin not in formats.MARGINS:
            raise ArenaError(f"margin: use one of {', '.join(formats.MARGINS)}.")
        if result.since and result.until and result.since >= result.until:
            raise ArenaError("since must be before until.")
        return result

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, and `parse` gives back the same filters."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    def describe(self) -> str:
        default = ExportFilters().to_dict()
        parts = [f"{name}={value}" for name, value in self.to_dict().items() if value != default[name]]
        return ", ".join(parts) or "all counted votes"

    def check(self, campaign: Campaign, spec: Format) -> None:
        """Refuse filters that do not apply to the format or the campaign."""
        if self.dimension and not campaign.dimensions.filter(key=self.dimension).exists():
            raise ArenaError(f"Campaign {campaign.slug!r} has no dimension {self.dimension!r}.")
        if spec.kind == "leaderboard":
            vote_level = (
                self.since or self.until or self.include_flagged or self.include_excluded or self.include_gold
            ) or self.min_votes > 1
            if vote_level or self.margin != "none":
                raise ArenaError(
                    "Leaderboard exports read the stored snapshots (every counted vote): date, flag, voter, "
                    "min-votes and margin filters apply to battle and pair exports only."
                )
        if spec.kind == "battles" and self.margin != "none":
            raise ArenaError("margin applies to preference pairs only.")
        if self.source != "humans":
            if spec.kind != "battles":
                raise ArenaError("source: judge verdicts are exported as battles only (pairs and boards are human).")
            battle_sources[0].check(campaign, self.source)


def get_format(name: str) -> Format:
    """The format called ``name``; raises ArenaError naming the known ones."""
    spec = FORMATS.get(name)
    if spec is None:
        raise ArenaError(f"Unknown export format {name!r}; use one of {', '.join(FORMATS)}.")
    return spec
