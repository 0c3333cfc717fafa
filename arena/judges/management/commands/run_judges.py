"""Judge a campaign's pairings with its judges (the same code as the admin action and the API)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from arena.core.errors import ArenaError
from arena.judges import actions


class Command(BaseCommand):
    help = (
        "Judge a campaign's pairings (every prompt x model pair, a sample of N, or every human-voted pairing) "
        "with its active judges, or one named judge. See docs/judges.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("--judge", help="the judge's model name (default: every active judge)")
        parser.add_argument("--limit", type=int, metavar="N", help="judge a random sample of N new pairings")
        parser.add_argument("--voted", action="store_true", help="judge the pairings humans voted on")
        parser.add_argument("--retry-failed", action="store_true", help="judge failed pairings again")
        parser.add_argument("--seed", type=int, help="seed of the sample (default: random)")
        parser.add_argument("--wait", action="store_true", help="wait until every pairing is done or failed")
        parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait at most (with --wait)")

    def handle(
        self,
        *args,
        campaign: str,
        judge: str | None,
        limit: int | None,
        voted: bool,
        retry_failed: bool,
        seed: int | None,
        wait: bool,
        timeout: float,
        **options,
    ):
        try:
            judges = actions.judges_of(campaign, judge)
            started = actions.start(
                judges, scope="voted" if voted else "items", limit=limit, retry_failed=retry_failed, seed=seed
            )
        except ArenaError as error:
            raise CommandError(str(error)) from None
        for item in started:
            self.stdout.write(f"{item.judge}: {item.plan}")
        if wait and not actions.wait(judges, timeout):
            raise CommandError(f"Still judging after {timeout:.0f} s.")
        for judge_row in judges:
            p = actions.progress(judge_row)
            counts = ", ".join(f"{n} {status}" for status, n in p.counts.items() if n)
            self.stdout.write(
                f"{p.judge}: {counts or 'nothing to judge'}; {p.calls} calls, "
                f"{p.prompt_tokens} + {p.completion_tokens} tokens, cost {p.cost:.4f}"
            )
