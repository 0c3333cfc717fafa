"""How far a campaign's judges agree with its human voters (the same figures as the dashboard and API)."""

from __future__ import annotations

import json as jsonlib

from django.core.management.base import BaseCommand, CommandError

from arena.core.errors import ArenaError
from arena.judges import actions, boards


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


class Command(BaseCommand):
    help = "Judge-human agreement, position consistency, biases and rank correlation. See docs/judges.md."

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("--judge", help="the judge's model name (default: every active judge)")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, campaign: str, judge: str | None, json: bool, **options):
        try:
            reports = [boards.report(j) for j in actions.judges_of(campaign, judge)]
        except ArenaError as error:
            raise CommandError(str(error)) from None
        if json:
            self.stdout.write(jsonlib.dumps(reports, indent=2))
            return
        for r in reports:
            a, base = r["agreement"], r["human_baseline"]
            consistency = r["position_consistency"]
            kappa = "-" if a["cohen_kappa"] is None else f"{a['cohen_kappa']:.3f}"
            rho = r["rank_correlation"]["rho"]
            self.stdout.write(
                f"{r['judge']} on {r['campaign']}: {r['verdicts']} verdicts, {a['n']} human votes on judged pairings\n"
                f"  agreement with ties {_pct(a['with_ties'])}, without ties {_pct(a['without_ties'])}, "
                f"Cohen's kappa {kappa}\n"
                f"  human baseline (a voter vs the others' majority): with ties {_pct(base['with_ties'])}, "
                f"without ties {_pct(base['without_ties'])} ({base['n']} votes)\n"
                f"  position consistency {_pct(consistency['share'])} of {consistency['n']}; "
                f"first-position wins {_pct((r['position_bias'] or {}).get('share'))}; "
                f"longer-answer wins {_pct((r['length_bias'] or {}).get('share'))}\n"
                f"  Spearman rho with the human leaderboard: {'-' if rho is None else f'{rho:.3f}'}"
            )
            if r["self_judging"]:
                self.stdout.write("  note: this judge also judges battles of its own model (self-preference).")
