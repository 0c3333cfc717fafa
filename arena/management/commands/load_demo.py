"""Load the demo campaigns shipped with Arena: pairwise battles, a ranking task and live battles."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from arena.core.errors import ArenaError
from arena.services.imports import load_campaign

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
DEMO_FILE = DEMO_DIR / "demo_campaign.json"


def demo_specs() -> list[dict]:
    """The demo campaigns' definitions. The ranking demo ranks the pairwise demo's answers: its file
    holds only what differs (slug, title, task, instructions)."""
    battles = json.loads(DEMO_FILE.read_text(encoding="utf-8"))
    ranking = {**battles, **json.loads((DEMO_DIR / "demo_ranking.json").read_text(encoding="utf-8"))}
    ranking.pop("dimensions", None)
    live = json.loads((DEMO_DIR / "demo_live.json").read_text(encoding="utf-8"))
    return [battles, ranking, live]


class Command(BaseCommand):
    help = "Load (or refresh) the demo campaigns: demo (pairwise), demo-rank (ranking) and demo-live (live)."

    def handle(self, *args, **options):
        for spec in demo_specs():
            try:
                campaign, summary = load_campaign(spec)
            except ArenaError as error:
                raise CommandError(f"{spec['slug']}: {error.message}") from None
            self.stdout.write(self.style.SUCCESS(f"Campaign {campaign.slug!r}: {summary}."))
