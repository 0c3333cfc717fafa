"""Judges and their verdicts, kept apart from human votes (``arena.Vote``) in tables of their own.

A `Judge` is a model entry (any backend kind) given the task of judging one campaign's battles with a
prompt template. A `JudgeVerdict` is that judge's verdict on one pairing: a prompt and two responses,
judged twice, in both orders. Nothing here is read by the human leaderboards, the voter-quality figures
or the preference exports; the battles export reads it only when asked (``source``).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from arena.judges.prompting import DEFAULT_TEMPLATE, TemplateError, validate_template
from arena.models import Campaign, ModelEntry, Prompt, Response


class Judge(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="judges")
    model = models.ForeignKey(
        ModelEntry,
        on_delete=models.PROTECT,
        related_name="judge_roles",
        help_text="The model entry that judges (any backend kind); use deterministic decoding to reuse verdicts.",
    )
    template = models.TextField(
        default=DEFAULT_TEMPLATE,
        help_text="Needs {conversation}, {answer_a} and {answer_b}; may use {verdict_options} and {rubric}.",
    )
    allow_self_judging = models.BooleanField(
        default=False,
        help_text="Let the judge judge battles where its own model is one of the two (self-preference bias).",
    )
    max_concurrency = models.PositiveSmallIntegerField(
        default=8,
        validators=[MinValueValidator(1), MaxValueValidator(256)],
        help_text="Pairings of this judge being judged at once, across all workers.",
    )
    reference_model = models.ForeignKey(
        ModelEntry,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="AlpacaEval-style win rates: every model's win rate against this one, by this judge.",
    )
    prompt_price = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0)], help_text="Cost per million prompt tokens."
    )
    completion_price = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0)], help_text="Cost per million completion tokens."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["campaign", "model__name"]
        constraints = [models.UniqueConstraint(fields=["campaign", "model"], name="judge_campaign_model_unique")]

    def __str__(self) -> str:
        return f"{self.name} on {self.campaign.slug}" if self.campaign_id else self.name

    def save(self, *args, **kwargs) -> None:
        validate_template(self.template)  # also for code paths that skip full_clean
        super().save(*args, **kwargs)

    def clean(self) -> None:
        try:
            validate_template(self.template)
        except TemplateError as error:
            raise ValidationError({"template": str(error)}) from None

    @property
    def name(self) -> str:
        return self.model.name if self.model_id else "judge"


class JudgeVerdict(models.Model):
    """One judge's verdict on one pairing (``lo``/``hi``: the two responses in model-id order).

    ``lo_first_*`` is the call with the lo model's answer shown as A, ``hi_first_*`` the swapped call.
    ``outcome`` is the combined verdict: the two calls' verdict when they agree, a tie when they
    disagree (``consistent`` False). A reply that cannot be parsed fails the pairing, its text kept.
    """

    class Status(models.TextChoices):
        PENDING = "pending"  # waiting for a slot under the judge's concurrency limit
        QUEUED = "queued"  # a task was sent
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    class Outcome(models.TextChoices):
        NONE = "", "-"
        LO = "lo", "first model wins"
        HI = "hi", "second model wins"
        TIE = "tie", "tie"
        BOTH_BAD = "both_bad", "both bad"

    judge = models.ForeignKey(Judge, on_delete=models.CASCADE, related_name="verdicts")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+", db_index=False)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="+")
    response_lo = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+", db_index=False)
    response_hi = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+", db_index=False)
    model_lo = models.ForeignKey(ModelEntry, on_delete=models.CASCADE, related_name="+", db_index=False)
    model_hi = models.ForeignKey(ModelEntry, on_delete=models.CASCADE, related_name="+", db_index=False)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, blank=True, default="")
    consistent = models.BooleanField(null=True, blank=True)
    lo_first_verdict = models.CharField(max_length=1, blank=True)
    lo_first_raw = models.TextField(blank=True)
    lo_first_key = models.CharField(max_length=64, blank=True)
    hi_first_verdict = models.CharField(max_length=1, blank=True)
    hi_first_raw = models.TextField(blank=True)
    hi_first_key = models.CharField(max_length=64, blank=True)
    scores = models.JSONField(default=dict, blank=True, help_text='{"helpfulness": {"lo": 4.0, "hi": 3.5}}')
    error = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    calls = models.PositiveSmallIntegerField(default=0, help_text="Backend calls made (cache hits are free).")
    cost = models.FloatField(default=0.0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["judge", "response_lo", "response_hi"], name="judgeverdict_pairing_unique"),
            models.CheckConstraint(condition=Q(model_lo__lt=models.F("model_hi")), name="judgeverdict_pair_ordered"),
        ]
        indexes = [
            models.Index(fields=["judge", "status"], name="judgeverdict_status_idx"),
            # The hand-out's "next pending pairings of this judge, oldest first": without it PostgreSQL
            # walks the judge's done rows to reach the pending ones, more of them at every hand-off.
            models.Index(fields=["judge", "id"], condition=Q(status="pending"), name="judgeverdict_pending_idx"),
            models.Index(fields=["campaign", "status"], name="judgeverdict_campaign_idx"),
            models.Index(fields=["lo_first_key"], condition=~Q(lo_first_key=""), name="judgeverdict_lo_key_idx"),
            models.Index(fields=["hi_first_key"], condition=~Q(hi_first_key=""), name="judgeverdict_hi_key_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.judge_id}: {self.outcome or self.status} on prompt {self.prompt_id}"
