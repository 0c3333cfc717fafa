"""Pause, resume or close a campaign from the command line."""

from django.core.management.base import BaseCommand, CommandError

from arena.core.errors import ArenaError
from arena.models import Campaign
from arena.services.campaigns import set_status


class Command(BaseCommand):
    help = "Set a campaign's status: active, paused or closed."

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("status", choices=["active", "paused", "closed"])

    def handle(self, *args, campaign: str, status: str, **options):
        target = Campaign.objects.filter(slug=campaign).first()
        if target is None:
            raise CommandError(f"No campaign with slug {campaign!r}.")
        try:
            set_status(target, status)
        except ArenaError as error:
            raise CommandError(error.message) from None
        self.stdout.write(self.style.SUCCESS(f"{campaign}: {status}."))
