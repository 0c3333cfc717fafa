"""Load the demo campaign shipped with Arena."""

from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand

DEMO_FILE = Path(__file__).resolve().parents[2] / "demo" / "demo_campaign.json"


class Command(BaseCommand):
    help = "Load (or refresh) the demo campaign."

    def handle(self, *args, **options):
        call_command("load_campaign", str(DEMO_FILE), stdout=self.stdout)
