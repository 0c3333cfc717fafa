"""Schema changes for issue 14, finding 1 (blind hand-out): the strict per-campaign rule and the
index of the hand-out's probe, the voter's battles on one prompt (it replaces the (voter, item) one);
and finding 8: private campaigns, seen only by staff and those who may vote."""

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
        migrations.AddField(
            model_name="campaign",
            name="private",
            field=models.BooleanField(
                default=False,
                help_text="Only staff and those who may vote (admitted by an invitation, or logged in) see this "
                "campaign: its page, leaderboard and API. Others get 'No such campaign'. Not for public campaigns.",
            ),
        ),
        migrations.AddConstraint(
            model_name="campaign",
            constraint=models.CheckConstraint(
                condition=models.Q(("private", False), models.Q(("access", "public"), _negated=True), _connector="OR"),
                name="campaign_private_needs_restricted_access",
                violation_error_message="A private campaign needs access by invitation or login: a public one "
                "is open to everyone.",
            ),
        ),
        migrations.RemoveIndex(model_name="battle", name="battle_voter_item_idx"),
        migrations.AddIndex(
            model_name="battle",
            index=models.Index(fields=["voter", "prompt"], name="battle_voter_prompt_idx"),
        ),
    ]
