"""Schema changes for issue 16 (admin journeys)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("arena", "0007_battle_ids_in_creation_order")]

    operations = []
