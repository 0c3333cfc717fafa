"""Import prompts and pre-written responses into a campaign from JSONL or CSV."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from arena.models import Campaign
from arena.services.errors import ArenaError
from arena.services.imports import import_prompts, parse_prompt_file


class Command(BaseCommand):
    help = "Import prompts (and responses) from a .jsonl or .csv file; all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("file", type=Path)

    def handle(self, *args, campaign: str, file: Path, **options):
        target = Campaign.objects.filter(slug=campaign).first()
        if target is None:
            raise CommandError(f"No campaign with slug {campaign!r}.")
        try:
            rows = parse_prompt_file(file.name, file.read_bytes())
            summary = import_prompts(target, rows)
        except OSError as error:
            raise CommandError(f"{file}: {error}") from None
        except ArenaError as error:
            raise CommandError(error.message) from None
        self.stdout.write(self.style.SUCCESS(f"{file.name}: {summary}."))
