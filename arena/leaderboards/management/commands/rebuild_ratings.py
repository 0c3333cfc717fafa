"""Rebuild a campaign's rating aggregates from every vote, then refresh its snapshots."""

from django.core.management.base import BaseCommand, CommandError

from arena.leaderboards.aggregation import rebuild_aggregates
from arena.leaderboards.snapshots import compute_snapshots
from arena.models import Campaign


class Command(BaseCommand):
    help = "Recount every vote of a campaign (or all campaigns) and recompute the leaderboards."

    def add_arguments(self, parser):
        parser.add_argument("campaign", nargs="?", help="campaign slug (default: every campaign)")

    def handle(self, *args, campaign: str | None = None, **options):
        campaigns = Campaign.objects.all() if campaign is None else Campaign.objects.filter(slug=campaign)
        if campaign is not None and not campaigns.exists():
            raise CommandError(f"No campaign with slug {campaign!r}.")
        for target in campaigns:
            votes = rebuild_aggregates(target)
            written = compute_snapshots(target, force=True)
            message = f"{target.slug}: {votes} votes recounted, {written} snapshots rebuilt."
            self.stdout.write(self.style.SUCCESS(message))
