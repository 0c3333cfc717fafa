"""Schema changes for issue 14, finding 1 (blind hand-out): the strict per-campaign rule and the
index of the hand-out's probe, the voter's battles on one prompt (it replaces the (voter, item) one)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("arena", "0008_admin_backend_choices")]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="one_battle_per_prompt",
            field=models.BooleanField(
                default=False,
                help_text="Never show a voter the same prompt twice. Without it a voter may meet a prompt again "
                "with other answers, but never an answer whose model was revealed to them.",
            ),
        ),
        migrations.RemoveIndex(model_name="battle", name="battle_voter_item_idx"),
        migrations.AddIndex(
            model_name="battle",
            index=models.Index(fields=["voter", "prompt"], name="battle_voter_prompt_idx"),
        ),
    ]
