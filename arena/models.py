"""The arena domain: model entries, campaigns, prompts, responses, voters, battles and votes.

Business rules live in arena/services/; these classes hold data, constraints and small derived
properties only.
"""

from __future__ import annotations

import secrets
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from arena.model_validation import validate_model_entry, validate_model_name
from arena.moderators import ModeratorConfigError
from arena.moderators import validate as validate_moderator
from backends.registry import kind_choices


def new_public_id() -> str:
    """An opaque, unguessable id (128 random bits) for anything a voter sees in a URL."""
    return secrets.token_urlsafe(16)


def new_battle_id() -> str:
    """A battle's id: unguessable (96 random bits) and yet in creation order.

    The time in milliseconds leads, in fixed-width hex, so a new battle, and later its vote, goes to
    the end of the id indexes (the battle's primary key, the vote's battle key) instead of to a random
    page of them: with random ids every vote touched two random index pages, each a full-page image
    in the WAL after every checkpoint, and kept the whole index hot. The creation time it shows is
    no secret: the voter sees the battle open.
    """
    return f"{time.time_ns() // 1_000_000:011x}{secrets.token_urlsafe(12)}"


class ModelEntry(models.Model):
    """A language model taking part in campaigns. Settings hold no secret: API keys are named by
    an environment variable (``api_key_env``) and read by the worker at call time."""

    name = models.CharField(max_length=100, unique=True, help_text="Shown to voters after they vote.")
    backend = models.CharField(
        max_length=32, default="static", choices=kind_choices, help_text="Backend kind; its settings are listed below."
    )
    backend_settings = models.JSONField(
        default=dict,
        blank=True,
        help_text='Backend settings, e.g. {"base_url": ..., "model": ..., "api_key_env": "OPENAI_API_KEY"}.',
    )
    params = models.JSONField(default=dict, blank=True, help_text="Decoding parameters.")
    is_active = models.BooleanField(default=True)
    weight = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)], help_text="Relative sampling weight.")
    # Prices for the estimated cost of live generation (arena.services.guardrails.budgets); 0 = free or unknown.
    input_price = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0)], help_text="Price per million prompt tokens (USD)."
    )
    output_price = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0)], help_text="Price per million generated tokens (USD)."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = "model"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict = {}
        others = ModelEntry.objects.exclude(pk=self.pk).values_list("name", flat=True)  # exclude(pk=None): all
        try:
            validate_model_name(self.name, others.iterator())
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        try:
            validate_model_entry(self.backend, self.backend_settings, self.params)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        ACTIVE = "active"
        PAUSED = "paused"
        CLOSED = "closed"

    class Mode(models.TextChoices):
        PROMPT_SET = "prompt_set", "Prompt set (pre-generated responses)"
        LIVE = "live", "Live (voters write the prompt)"

    class Access(models.TextChoices):
        PUBLIC = "public", "Anyone with the link"
        INVITE = "invite", "Invite token"
        LOGIN = "login", "Logged-in users"

    class Sampling(models.TextChoices):
        BALANCED = "balanced", "Balanced (fewest votes first)"
        UNIFORM = "uniform", "Uniform"
        WEIGHTED = "weighted", "Weighted by model"
        ACTIVE = "active", "Active (the pair whose next vote shrinks the intervals most)"

    class Task(models.TextChoices):
        PAIRWISE = "pairwise", "Pairwise (A vs B)"
        RANKING = "ranking", "Ranking of N responses"

    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    instructions = models.TextField(blank=True, help_text="Markdown shown before the first vote.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.PROMPT_SET)
    contenders = models.ManyToManyField(
        ModelEntry, related_name="campaigns", blank=True, help_text="The models compared in this campaign."
    )
    allow_tie = models.BooleanField(default=True)
    allow_both_bad = models.BooleanField(default=True)
    access = models.CharField(max_length=16, choices=Access.choices, default=Access.PUBLIC)
    sampling = models.CharField(max_length=16, choices=Sampling.choices, default=Sampling.BALANCED)
    vote_limit = models.PositiveIntegerField(default=0, help_text="Votes per voter in this campaign; 0 = no limit.")
    daily_vote_limit = models.PositiveIntegerField(default=0, help_text="Votes per voter per day; 0 = no limit.")
    votes_per_item = models.PositiveIntegerField(
        default=0, help_text="Independent votes wanted per prompt and pair; 0 = no limit."
    )
    task = models.CharField(max_length=16, choices=Task.choices, default=Task.PAIRWISE)
    ranking_size = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(3), MaxValueValidator(8)],
        help_text="Responses shown in one ranking task (ranking campaigns only).",
    )
    gold_rate = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text="Share of hand-outs that are gold battles (0 = none, at most 0.5).",
    )
    one_battle_per_prompt = models.BooleanField(
        default=False,
        help_text="Never show a voter the same prompt twice. Without it a voter may meet a prompt again with "
        "other answers, but never an answer whose model was revealed to them.",
    )
    private = models.BooleanField(
        default=False,
        help_text="Only staff and those who may vote (admitted by an invitation, or logged in) see this campaign: "
        "its page, leaderboard and API. Others get 'No such campaign'. Not for public campaigns.",
    )
    # Guardrails of live campaigns (arena.services.guardrails): the moderator of voters' prompts and the budgets.
    moderator = models.CharField(
        max_length=32, default="rules", help_text="Moderator of voters' prompts: rules, openai, transformers or none."
    )
    moderator_settings = models.JSONField(
        default=dict,
        blank=True,
        help_text='Moderator settings, e.g. rules: {"words": [...], "patterns": [...]}; '
        'openai: {"base_url": ..., "model": ..., "api_key_env": ...}.',
    )
    moderation_fail_open = models.BooleanField(
        default=False, help_text="When the moderator fails, let prompts through (default: refuse them)."
    )
    live_battles_per_hour = models.PositiveIntegerField(
        default=0, help_text="Live battles started per clock hour; 0 = no limit."
    )
    live_tokens_per_day = models.PositiveBigIntegerField(
        default=0, help_text="Tokens (prompt and generated) per UTC day of live generation; 0 = no limit."
    )
    live_cost_per_day = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0)],
        help_text="Estimated cost (USD, from the models' prices) per UTC day of live generation; 0 = no limit.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(private=False) | ~Q(access="public"),
                name="campaign_private_needs_restricted_access",
                violation_error_message="A private campaign needs access by invitation or login: a public one "
                "is open to everyone.",
            )
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def accepts_votes(self) -> bool:
        return self.status == self.Status.ACTIVE

    def clean(self) -> None:
        try:
            validate_moderator(self.moderator, self.moderator_settings)
        except ModeratorConfigError as error:
            field = "moderator" if error.field == "moderator" else "moderator_settings"
            raise ValidationError({field: str(error)}) from None


MAX_SCALE_POINTS = 11  # e.g. 0-10: each point is a button per side on every battle page


class Dimension(models.Model):
    """A rating dimension (e.g. helpfulness 1-5) scored for each side of a battle."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="dimensions")
    key = models.SlugField(max_length=40)
    label = models.CharField(max_length=100)
    help_text = models.CharField(max_length=300, blank=True)
    scale_min = models.SmallIntegerField(default=1)
    scale_max = models.SmallIntegerField(default=5)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "key"], name="dimension_key_unique"),
            models.CheckConstraint(condition=Q(scale_max__gt=models.F("scale_min")), name="dimension_scale"),
        ]

    def __str__(self) -> str:
        return self.label

    def clean(self) -> None:
        low, high = self.scale_min, self.scale_max
        if not isinstance(low, int) or not isinstance(high, int):
            return  # the fields say what is wrong
        if high <= low:
            raise ValidationError("The top of the scale must be above its bottom.")
        if high - low + 1 > MAX_SCALE_POINTS:
            raise ValidationError(
                f"A scale has at most {MAX_SCALE_POINTS} points (e.g. 0-10); {low}-{high} has {high - low + 1}."
            )

    @property
    def scale(self) -> range:
        return range(self.scale_min, self.scale_max + 1)


class Prompt(models.Model):
    """A prompt: a list of OpenAI-style messages; the last one is the user's turn to answer."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="prompts")
    external_id = models.CharField(max_length=200, blank=True, help_text="Stable id for re-imports.")
    messages = models.JSONField()
    category = models.CharField(max_length=64, blank=True, db_index=True)
    language = models.CharField(max_length=16, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "external_id"], condition=~Q(external_id=""), name="prompt_external_id_unique"
            )
        ]

    def __str__(self) -> str:
        return self.external_id or f"prompt {self.pk}"

    @property
    def text(self) -> str:
        """The last user message."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return str(message.get("content", ""))
        return ""


class Response(models.Model):
    """One model's answer to one prompt. ``html`` caches the sanitised rendering of ``content``."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    class Source(models.TextChoices):
        IMPORTED = "imported"
        GENERATED = "generated"

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="responses")
    model = models.ForeignKey(ModelEntry, on_delete=models.CASCADE, related_name="responses")
    content = models.TextField(blank=True)
    html = models.TextField(blank=True, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.GENERATED)
    error = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    ttft_ms = models.FloatField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    finish_reason = models.CharField(max_length=32, blank=True)
    # Output checks (arena.services.guardrails.output_checks): comma-separated reasons, e.g. "empty,cut"; a live
    # side keeps the reasons of all its turns.
    checks = models.CharField(max_length=100, blank=True, default="", db_default="", editable=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Same model, settings, decoding parameters and messages -> same key; with deterministic decoding
    # a done response with this key is reused instead of calling the backend again.
    cache_key = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["prompt", "model"], name="response_prompt_model_unique")]
        indexes = [models.Index(fields=["status"], name="response_status_idx")]

    def __str__(self) -> str:
        return f"{self.model} on {self.prompt}"

    def save(self, *args, **kwargs) -> None:
        # The sanitised HTML is rendered once here, not on every page view.
        from arena.rendering import render_markdown

        self.html = render_markdown(self.content)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "content" in update_fields:
            kwargs["update_fields"] = {*update_fields, "html"}
        super().save(*args, **kwargs)


class Item(models.Model):
    """A prompt and an unordered pair of models whose responses are both ready: the unit handed out.

    ``vote_count`` and ``shuffle`` let the next-battle query walk an index in "fewest votes first,
    random among equals" order without counting votes.
    """

    # Every vote rewrites its item's vote_count and shuffle, both indexed, so each vote writes a new
    # entry into every index of this table: it keeps only the indexes that queries use. campaign and
    # prompt lead the two indexes below and the unique constraint; the responses and models are
    # looked up only when one is deleted (a scan of this table: one row per prompt and pair).
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items", db_index=False)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="items", db_index=False)
    response_lo = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+", db_index=False)
    response_hi = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+", db_index=False)
    model_lo = models.ForeignKey(ModelEntry, on_delete=models.CASCADE, related_name="+", db_index=False)
    model_hi = models.ForeignKey(ModelEntry, on_delete=models.CASCADE, related_name="+", db_index=False)
    vote_count = models.PositiveIntegerField(default=0)
    shuffle = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prompt", "model_lo", "model_hi"], name="item_prompt_pair_unique"),
            models.CheckConstraint(condition=Q(model_lo__lt=models.F("model_hi")), name="item_pair_ordered"),
        ]
        indexes = [
            models.Index(fields=["campaign", "vote_count", "shuffle"], name="item_handout_idx"),
            # Active sampling: the items of one drawn pair, fewest votes first.
            models.Index(fields=["campaign", "model_lo", "model_hi", "vote_count", "shuffle"], name="item_pair_idx"),
        ]

    def __str__(self) -> str:
        return f"prompt {self.prompt_id}: models {self.model_lo_id} vs {self.model_hi_id}"


class Voter(models.Model):
    """Someone who votes: an anonymous browser (signed cookie) or a logged-in user.

    Only a salted hash of the IP address is kept, never the address itself.
    """

    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="voter"
    )
    ip_hash = models.CharField(max_length=64, blank=True, db_index=True)
    excluded = models.BooleanField(default=False, help_text="Staff excluded this voter from ratings and exports.")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"voter {self.public_id[:8]}"


class Invite(models.Model):
    """An invite token for a campaign whose access is "invite"."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="invites")
    token = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    label = models.CharField(max_length=100, blank=True)
    uses = models.PositiveIntegerField(default=0, editable=False)
    max_uses = models.PositiveIntegerField(default=0, help_text="0 = unlimited.")
    revoked = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.label or self.token[:8]

    @property
    def usable(self) -> bool:
        return not self.revoked and (self.max_uses == 0 or self.uses < self.max_uses)


class Admission(models.Model):
    """A voter let into an invite-only campaign by a valid invite token."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="admissions")
    voter = models.ForeignKey(Voter, on_delete=models.CASCADE, related_name="admissions")
    invite = models.ForeignKey(Invite, on_delete=models.CASCADE, related_name="admissions")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "voter"], name="admission_unique")]

    def __str__(self) -> str:
        return f"{self.voter} in {self.campaign}"


class GoldBattle(models.Model):
    """A pair of responses with the verdict staff expect, mixed into the hand-out to check voters."""

    class Expected(models.TextChoices):
        FIRST = "first", "The first response is better"
        SECOND = "second", "The second response is better"
        TIE = "tie", "Tie"
        BOTH_BAD = "both_bad", "Both are bad"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="gold_battles")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="gold_battles")
    first = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    second = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    expected = models.CharField(max_length=8, choices=Expected.choices)
    note = models.CharField(max_length=300, blank=True, help_text="Why this verdict is expected (staff only).")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(first=models.F("second")), name="gold_two_responses"),
        ]

    def __str__(self) -> str:
        return f"gold {self.pk}: {self.expected} on {self.prompt}"


class Ranking(models.Model):
    """One voter ordering N responses to one prompt; on submit it expands to N-choose-2 pairwise votes."""

    class Status(models.TextChoices):
        OPEN = "open"
        SUBMITTED = "submitted"

    id = models.CharField(primary_key=True, max_length=32, default=new_public_id, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="rankings")
    voter = models.ForeignKey("Voter", on_delete=models.CASCADE, related_name="rankings")
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="rankings")
    shown = models.JSONField(help_text="Response ids in the order shown (labelled A, B, C, ...).")
    order = models.JSONField(default=list, blank=True, help_text="Submitted: response ids, best first.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["voter", "campaign", "status"], name="ranking_voter_idx")]

    def __str__(self) -> str:
        return f"ranking {self.pk}"


class Battle(models.Model):
    """One voter shown one prompt with two responses. ``left`` was drawn at random on the server."""

    class Status(models.TextChoices):
        OPEN = "open"
        VOTED = "voted"
        VOID = "void"

    id = models.CharField(primary_key=True, max_length=32, default=new_battle_id, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="battles")
    voter = models.ForeignKey(Voter, on_delete=models.CASCADE, related_name="battles", db_index=False)
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="battles")
    item = models.ForeignKey(Item, null=True, blank=True, on_delete=models.SET_NULL, related_name="battles")
    left = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    right = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    flagged = models.BooleanField(default=False, help_text="E.g. a response names its own model.")
    # gold and ranking are empty on most battles: partial indexes (below) hold only the battles that
    # have one, so an ordinary battle writes no entry for them.
    gold = models.ForeignKey(
        "GoldBattle",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="battles",
        db_index=False,
        help_text="Set when this battle is a gold check: its vote scores the voter, not the models.",
    )
    ranking = models.ForeignKey(
        "Ranking",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="pairs",
        db_index=False,
        help_text="Set on the pairwise battles a submitted ranking expands to.",
    )
    # Live battles: the voter's turns and each side's answers, {"user": [...], "left": [...], "right": [...]}.
    conversation = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["voter", "campaign", "status"], name="battle_voter_idx"),
            # The hand-out's "still blind for this voter" probe: the voter's battles on one prompt.
            models.Index(fields=["voter", "prompt"], name="battle_voter_prompt_idx"),
            models.Index(fields=["gold"], condition=Q(gold__isnull=False), name="battle_gold_idx"),
            models.Index(fields=["ranking"], condition=Q(ranking__isnull=False), name="battle_ranking_idx"),
        ]

    def __str__(self) -> str:
        return f"battle {self.pk}"

    @property
    def is_live(self) -> bool:
        return bool(self.conversation)


class Vote(models.Model):
    """The verdict on a battle, stored as seen (left/right) and in model terms (winner)."""

    class Verdict(models.TextChoices):
        LEFT = "left", "A is better"
        RIGHT = "right", "B is better"
        TIE = "tie", "Tie"
        BOTH_BAD = "both_bad", "Both are bad"

    battle = models.OneToOneField(Battle, on_delete=models.CASCADE, related_name="vote")
    # Fewer indexes, cheaper writes: campaign and voter lead the composite indexes below, and the
    # model columns are only ever looked up through them (a model's deletion is refused by PROTECT
    # after a scan, a rare staff action).
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="votes", db_index=False)
    voter = models.ForeignKey(Voter, on_delete=models.CASCADE, related_name="votes", db_index=False)
    # Indexed with the models shown (vote_unit_idx below): the voter-quality figures read a prompt
    # and pair's votes (arena.services.quality_state), and every lookup by prompt uses it too.
    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="votes", db_index=False)
    left_model = models.ForeignKey(ModelEntry, on_delete=models.PROTECT, related_name="+", db_index=False)
    right_model = models.ForeignKey(ModelEntry, on_delete=models.PROTECT, related_name="+", db_index=False)
    winner = models.ForeignKey(
        ModelEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    verdict = models.CharField(max_length=8, choices=Verdict.choices)
    scores = models.JSONField(default=dict, blank=True, help_text='{"helpfulness": {"left": 4, "right": 2}}')
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Set once the rating aggregates include this vote (see arena.leaderboards.aggregation).
    folded = models.BooleanField(default=False, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["campaign"], condition=Q(folded=False), name="vote_unfolded_idx"),
            models.Index(fields=["campaign", "id"], name="vote_campaign_id_idx"),
            models.Index(fields=["campaign", "created_at"], name="vote_campaign_time_idx"),
            models.Index(fields=["voter", "campaign", "created_at"], name="vote_voter_idx"),
            models.Index(fields=["prompt", "left_model", "right_model"], name="vote_unit_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.verdict} on {self.battle_id}"


class RefusedPrompt(models.Model):
    """A voter's live prompt that the campaign's moderator refused (no generation ran), kept for staff."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="refused_prompts")
    voter = models.ForeignKey(Voter, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    text = models.TextField(help_text="The prompt (its first 2,000 characters).")
    reason = models.CharField(max_length=300)
    moderator = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["campaign", "created_at"], name="refused_prompt_time_idx")]

    def __str__(self) -> str:
        return f"refused prompt {self.pk}: {self.reason}"


class GenerationUsage(models.Model):
    """Generations, tokens and estimated cost of one model in one campaign on one UTC day."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="usage")
    model = models.ForeignKey(ModelEntry, on_delete=models.CASCADE, related_name="usage")
    day = models.DateField()
    generations = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.FloatField(default=0.0, help_text="Estimated from the model's prices (USD).")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "day", "model"], name="usage_campaign_day_model")]

    def __str__(self) -> str:
        return f"{self.model} in {self.campaign} on {self.day}"
