"""Generate a prompt-set campaign's missing responses on the workers, and follow the progress."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from arena.core.errors import ArenaError
from arena.models import Campaign
from arena.services import generation

BAR_WIDTH = 30


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    filled = width if total <= 0 else min(width, round(width * done / total))
    return "[" + "#" * filled + "." * (width - filled) + "]"


class Command(BaseCommand):
    help = (
        "Queue a generation for every (prompt, active model) of a prompt-set campaign that has no "
        "response yet; with --retry-failed also queue the failed ones again; with --wait follow the "
        "progress until nothing is queued or running."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("--retry-failed", action="store_true", help="queue failed responses again")
        parser.add_argument("--wait", action="store_true", help="show progress until the work is finished")
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between progress lines")
        parser.add_argument("--timeout", type=float, default=0, help="give up waiting after this many seconds")

    def handle(self, *args, campaign: str, retry_failed: bool, wait: bool, interval: float, timeout: float, **options):
        target = Campaign.objects.filter(slug=campaign).first()
        if target is None:
            raise CommandError(f"No campaign with slug {campaign!r}.")
        try:
            if retry_failed:
                n = generation.retry_failed(target)
                self.stdout.write(f"{n} failed responses queued again.")
            summary = generation.queue_missing_responses(target)
        except ArenaError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"{summary}.")
        progress = generation.campaign_progress(target)
        started = time.monotonic()
        last_line = ""
        while wait and progress.pending:
            line = self._line(progress)
            if line != last_line:
                self.stdout.write(line)
                self.stdout.flush()
                last_line = line
            if timeout and time.monotonic() - started > timeout:
                raise CommandError(f"Still {progress.pending} responses pending after {timeout:g} s.")
            time.sleep(interval)
            progress = generation.campaign_progress(target)
        self.stdout.write(self._line(progress))
        self._table(progress)
        if progress.failed:
            hint = "see the admin's generation page, or run again with --retry-failed"
            self.stdout.write(self.style.WARNING(f"{progress.failed} responses failed; {hint}."))

    def _line(self, progress: generation.GenerationProgress) -> str:
        total = progress.expected
        return (
            f"{progress_bar(progress.done, total)} {progress.done}/{total} done, "
            f"{progress.pending} pending, {progress.failed} failed"
        )

    def _table(self, progress: generation.GenerationProgress) -> None:
        statuses = ["queued", "running", "done", "failed"]
        width = max([len(m.name) for m in progress.models] + [5])
        self.stdout.write("model".ljust(width) + "".join(s.rjust(9) for s in statuses))
        for model in progress.models:
            self.stdout.write(model.name.ljust(width) + "".join(str(model.counts.get(s, 0)).rjust(9) for s in statuses))
