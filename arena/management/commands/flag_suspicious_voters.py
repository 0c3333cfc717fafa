"""List voters of a campaign whose votes look automated or partisan; optionally exclude them."""

from django.core.management.base import BaseCommand, CommandError

from arena.models import Campaign
from arena.services.abuse import Thresholds, exclude_voters, suspicious_voters


class Command(BaseCommand):
    help = (
        "Flag voters far above the norm in votes, with long identical-verdict streaks, impossible speed or "
        "too little agreement with gold battles. "
        "With --exclude they are left out of ratings and exports (run rebuild_ratings afterwards)."
    )

    def add_arguments(self, parser):
        defaults = Thresholds()
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("--exclude", action="store_true", help="set excluded on every flagged voter")
        parser.add_argument(
            "--volume-factor",
            type=float,
            default=defaults.volume_factor,
            help="flag voters with this many times the median voter's votes (default %(default)s)",
        )
        parser.add_argument(
            "--min-volume",
            type=int,
            default=defaults.min_volume,
            help="... and at least this many votes (default %(default)s)",
        )
        parser.add_argument(
            "--streak",
            type=int,
            default=defaults.streak,
            help="flag this many consecutive identical verdicts (default %(default)s)",
        )
        parser.add_argument(
            "--min-seconds",
            type=float,
            default=defaults.min_seconds,
            help="flag a median time per vote below this (default %(default)s s)",
        )
        parser.add_argument(
            "--min-samples",
            type=int,
            default=defaults.min_samples,
            help="votes needed before speed is judged (default %(default)s)",
        )
        parser.add_argument(
            "--gold-min-share",
            type=float,
            default=defaults.gold_min_share,
            help="flag a share of gold battles answered as expected below this (default %(default)s)",
        )
        parser.add_argument(
            "--gold-min-votes",
            type=int,
            default=defaults.gold_min_votes,
            help="gold battles needed before gold is judged; 0 = ignore gold (default %(default)s)",
        )

    def handle(self, *args, campaign: str, exclude: bool, **options):
        target = Campaign.objects.filter(slug=campaign).first()
        if target is None:
            raise CommandError(f"No campaign with slug {campaign!r}.")
        thresholds = Thresholds(
            volume_factor=options["volume_factor"],
            min_volume=options["min_volume"],
            streak=options["streak"],
            min_seconds=options["min_seconds"],
            min_samples=options["min_samples"],
            gold_min_share=options["gold_min_share"],
            gold_min_votes=options["gold_min_votes"],
        )
        flags = suspicious_voters(target, thresholds)
        if not flags:
            self.stdout.write(self.style.SUCCESS(f"{campaign}: no suspicious voter."))
            return
        for flag in flags:
            state = " (already excluded)" if flag.excluded else ""
            self.stdout.write(f"voter {flag.public_id} (id {flag.voter_id}, {flag.votes} votes){state}")
            for reason in flag.reasons:
                self.stdout.write(f"  - {reason}")
        summary = f"{campaign}: {len(flags)} suspicious voter(s)."
        if exclude:
            changed = exclude_voters(flag.voter_id for flag in flags)
            summary += f" Excluded {changed}; run `manage.py rebuild_ratings {campaign}` to update the leaderboards."
        else:
            summary += " Run again with --exclude to leave them out of ratings and exports."
        self.stdout.write(self.style.WARNING(summary))
