"""Export a campaign's battles, preference pairs or leaderboard to a file, here and now."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from arena.core.errors import ArenaError
from arena.exports.filters import ExportFilters
from arena.exports.formats import FORMATS, MARGINS
from arena.exports.progress import Progress
from arena.exports.writer import write_export
from arena.models import Campaign

FILTER_OPTIONS = (
    "since",
    "until",
    "dimension",
    "category",
    "include_flagged",
    "include_excluded",
    "include_gold",
    "min_votes",
    "margin",
    "source",
)


class Command(BaseCommand):
    help = (
        "Write an export of a campaign to a file (the same code as the admin's Export page and the API, "
        "run synchronously). See docs/exports.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("--format", required=True, choices=list(FORMATS))
        parser.add_argument("--output", type=Path, help="file to write (default: <slug>-<format>.<ext> here)")
        parser.add_argument("--since", help="votes from this date (YYYY-MM-DD) or ISO date-time on")
        parser.add_argument("--until", help="votes up to this date (included) or before this ISO date-time")
        parser.add_argument("--dimension", default="", help="decide battles and pairs by this dimension's scores")
        parser.add_argument("--category", default="", help="prompts of this category only")
        parser.add_argument("--include-flagged", action="store_true", help="keep flagged battles")
        parser.add_argument("--include-excluded", action="store_true", help="keep votes of excluded voters")
        parser.add_argument("--include-gold", action="store_true", help="keep votes on gold battles")
        parser.add_argument(
            "--min-votes",
            type=int,
            default=0,
            metavar="N",
            help="only items (prompt x model pair) with at least N selected votes",
        )
        parser.add_argument("--margin", choices=MARGINS, default="none", help="margin of preference pairs")
        parser.add_argument("--source", default="humans", help="battles: humans, all, or judge:NAME (LLM judges)")
        parser.add_argument("--quiet", action="store_true", help="no progress line")

    def handle(self, *args, campaign: str, format: str, output: Path | None, quiet: bool, **options):
        target = Campaign.objects.filter(slug=campaign).first()
        if target is None:
            raise CommandError(f"No campaign with slug {campaign!r}.")
        output = output or Path(f"{target.slug}-{format}.{FORMATS[format].extension}")
        started = time.monotonic()
        last = 0.0
        interactive = sys.stderr.isatty()

        def progress(stats: Progress) -> None:
            nonlocal last
            now = time.monotonic()
            if quiet or (now - last < 1.0 and stats.rows_done < stats.rows_total):
                return
            last = now
            share = f" ({stats.rows_done / stats.rows_total:.0%})" if stats.rows_total else ""
            line = f"{format}: {stats.rows_done:,} of {stats.rows_total:,} read{share}, {stats.rows_written:,} written"
            self.stderr.write(("\r" + line) if interactive else line, ending="" if interactive else "\n")

        try:
            filters = ExportFilters.parse({k: options[k] for k in FILTER_OPTIONS})
            stats = write_export(target, format, filters, output, progress)
        except ArenaError as error:
            raise CommandError(error.message) from None
        except OSError as error:
            raise CommandError(f"{output}: {error}") from None
        if interactive and not quiet:
            self.stderr.write("")
        skipped = ", ".join(f"{n:,} {reason}" for reason, n in stats.skipped.items())
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {stats.rows_written:,} records from {stats.rows_done:,} rows to {output} "
                f"in {time.monotonic() - started:.1f} s" + (f" (left out: {skipped})" if skipped else "") + "."
            )
        )
