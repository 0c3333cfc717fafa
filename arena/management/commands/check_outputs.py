"""Run the output checks (empty, cut, refusal, identity) over a campaign's finished answers again."""

from django.core.management.base import BaseCommand, CommandError

from arena.models import Campaign
from arena.services.guardrails.output_checks import REASONS
from arena.services.guardrails.recheck import recheck_campaign


class Command(BaseCommand):
    help = (
        "Check every finished answer of a campaign again (imported answers, or after its models changed) "
        "and print how many are empty, cut at max_new_tokens, refusals or name a model."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign slug")

    def handle(self, *args, **options):
        campaign = Campaign.objects.filter(slug=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"No campaign {options['campaign']!r}.")
        counts = recheck_campaign(campaign)
        for key, label in REASONS.items():
            self.stdout.write(f"{label}: {counts.get(key, 0)}")
