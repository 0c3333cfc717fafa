"""Schema changes for issue 14, findings 2-4 (flood limits, budgets, moderation, output checks)."""

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("arena", "0009_blind_handout")]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="live_battles_per_hour",
            field=models.PositiveIntegerField(
                default=0, help_text="Live battles started per clock hour; 0 = no limit."
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="live_cost_per_day",
            field=models.FloatField(
                default=0.0,
                help_text="Estimated cost (USD, from the models' prices) per UTC day of live generation; 0 = no limit.",
                validators=[django.core.validators.MinValueValidator(0.0)],
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="live_tokens_per_day",
            field=models.PositiveBigIntegerField(
                default=0, help_text="Tokens (prompt and generated) per UTC day of live generation; 0 = no limit."
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="moderation_fail_open",
            field=models.BooleanField(
                default=False, help_text="When the moderator fails, let prompts through (default: refuse them)."
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="moderator",
            field=models.CharField(
                default="rules",
                help_text="Moderator of voters' prompts: rules, openai, transformers or none.",
                max_length=32,
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="moderator_settings",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text='Moderator settings, e.g. rules: {"words": [...], "patterns": [...]}; openai: {"base_url": ..., "model": ..., "api_key_env": ...}.',
            ),
        ),
        migrations.AddField(
            model_name="modelentry",
            name="input_price",
            field=models.FloatField(
                default=0.0,
                help_text="Price per million prompt tokens (USD).",
                validators=[django.core.validators.MinValueValidator(0.0)],
            ),
        ),
        migrations.AddField(
            model_name="modelentry",
            name="output_price",
            field=models.FloatField(
                default=0.0,
                help_text="Price per million generated tokens (USD).",
                validators=[django.core.validators.MinValueValidator(0.0)],
            ),
        ),
        migrations.AddField(
            model_name="response",
            name="checks",
            field=models.CharField(blank=True, db_default="", default="", editable=False, max_length=100),
        ),
        migrations.CreateModel(
            name="GenerationUsage",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField()),
                ("generations", models.PositiveIntegerField(default=0)),
                ("prompt_tokens", models.PositiveBigIntegerField(default=0)),
                ("completion_tokens", models.PositiveBigIntegerField(default=0)),
                ("cost", models.FloatField(default=0.0, help_text="Estimated from the model's prices (USD).")),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="usage", to="arena.campaign"
                    ),
                ),
                (
                    "model",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="usage", to="arena.modelentry"
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("campaign", "day", "model"), name="usage_campaign_day_model")
                ],
            },
        ),
        migrations.CreateModel(
            name="RefusedPrompt",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("text", models.TextField(help_text="The prompt (its first 2,000 characters).")),
                ("reason", models.CharField(max_length=300)),
                ("moderator", models.CharField(max_length=32)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "campaign",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="refused_prompts", to="arena.campaign"
                    ),
                ),
                (
                    "voter",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="arena.voter",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["campaign", "created_at"], name="refused_prompt_time_idx")],
            },
        ),
    ]
