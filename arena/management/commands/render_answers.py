"""Render the stored answers' HTML again (after the Markdown renderer changed)."""

from django.core.management.base import BaseCommand, CommandError

from arena.models import Campaign
from arena.services.answer_html import render_answers


class Command(BaseCommand):
    help = (
        "Render every stored answer (of one campaign, or all) to sanitised HTML again and store it where it "
        "changed, e.g. so that answers imported before single newlines became line breaks show them."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", nargs="?", help="campaign slug (default: every campaign)")

    def handle(self, *args, **options):
        campaign = None
        if options["campaign"]:
            campaign = Campaign.objects.filter(slug=options["campaign"]).first()
            if campaign is None:
                raise CommandError(f"No campaign {options['campaign']!r}.")
        read, changed = render_answers(campaign)
        self.stdout.write(f"{read} answers read, {changed} rendered again.")
