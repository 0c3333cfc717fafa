"""Schema changes for issue 16 (admin journeys): a model's backend is one of the registered kinds."""

import backends.registry
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("arena", "0007_battle_ids_in_creation_order")]

    operations = [
        migrations.AlterField(
            model_name="modelentry",
            name="backend",
            field=models.CharField(
                choices=backends.registry.kind_choices,
                default="static",
                help_text="Backend kind; its settings are listed below.",
                max_length=32,
            ),
        ),
    ]
