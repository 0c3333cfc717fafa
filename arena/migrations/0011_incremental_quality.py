"""The vote's prompt index also holds the models shown: the voter-quality figures read one prompt and
pair's votes (arena.services.quality_state) without the prompt's other votes. It replaces the plain
prompt index, so a vote writes no more index entries than before."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("arena", "0010_guardrails"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="vote",
            index=models.Index(fields=["prompt", "left_model", "right_model"], name="vote_unit_idx"),
        ),
        migrations.AlterField(
            model_name="vote",
            name="prompt",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="votes",
                to="arena.prompt",
            ),
        ),
    ]
