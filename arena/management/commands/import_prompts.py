"""Import prompts and pre-written responses into a campaign from JSONL, CSV, TRL or battles files."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from arena.core.errors import ArenaError
from arena.models import Campaign
from arena.services.imports import DEFAULT_CHOSEN_MODEL, DEFAULT_REJECTED_MODEL, FORMATS, ImportOptions, import_file


class Command(BaseCommand):
    help = (
        "Import prompts (and responses) from a file, all or nothing: Arena's JSONL or CSV, TRL preference "
        "pairs or arena battle records (docs/imports.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--format",
            choices=list(FORMATS),
            default="auto",
            help="file format (default: auto, from the extension and the first record's fields)",
        )
        parser.add_argument(
            "--chosen-model",
            default=DEFAULT_CHOSEN_MODEL,
            help=f"TRL: model of the chosen answers of records without chosen_model (default: {DEFAULT_CHOSEN_MODEL})",
        )
        parser.add_argument(
            "--rejected-model",
            default=DEFAULT_REJECTED_MODEL,
            help=f"TRL: model of the rejected answers of records without rejected_model "
            f"(default: {DEFAULT_REJECTED_MODEL})",
        )
        parser.add_argument(
            "--add-models",
            action="store_true",
            help="add the models the file names to the campaign (new names get a static backend); "
            "without it an unknown model is an error",
        )

    def handle(self, *args, campaign: str, file: Path, **options):
        target = Campaign.objects.filter(slug=campaign).first()
        if target is None:
            raise CommandError(f"No campaign with slug {campaign!r}.")
        import_options = ImportOptions(
            format=options["format"],
            chosen_model=options["chosen_model"],
            rejected_model=options["rejected_model"],
            add_models=options["add_models"],
        )
        try:
            summary = import_file(target, file.name, file.read_bytes(), import_options)
        except OSError as error:
            raise CommandError(f"{file}: {error}") from None
        except ArenaError as error:
            raise CommandError(error.message) from None
        self.stdout.write(self.style.SUCCESS(f"{file.name}: {summary}."))
