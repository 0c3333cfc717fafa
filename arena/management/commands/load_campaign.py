"""Create or update a campaign (models, dimensions, prompts, responses) from a JSON file."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from arena.core.errors import ArenaError
from arena.services.imports import load_campaign


class Command(BaseCommand):
    help = "Create or update a campaign from a JSON file (the format of arena/demo/demo_campaign.json)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)

    def handle(self, *args, file: Path, **options):
        try:
            spec = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise CommandError(f"{file}: {error}") from None
        try:
            campaign, summary = load_campaign(spec)
        except ArenaError as error:
            raise CommandError(error.message) from None
        self.stdout.write(self.style.SUCCESS(f"Campaign {campaign.slug!r}: {summary}."))
