"""Django admin for every model, with campaign actions and a prompt import page."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, F, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html

from arena.models import (
    Admission,
    Battle,
    Campaign,
    Dimension,
    GoldBattle,
    Invite,
    Item,
    ModelEntry,
    Prompt,
    Ranking,
    Response,
    Vote,
    Voter,
)
from arena.services import campaigns as campaign_service
from arena.services import model_trials
from arena.services.errors import ArenaError
from arena.services.gold import check_gold, gold_from_votes
from arena.services.imports import DEFAULT_CHOSEN_MODEL, DEFAULT_REJECTED_MODEL, ImportOptions, import_file
from arena.services.imports import FORMATS as IMPORT_FORMATS
from arena.services.items import sync_campaign_items
from backends.registry import KIND_INFO, kind_choices, settings_help

admin.site.site_header = "Arena administration"
admin.site.site_title = "Arena admin"
admin.site.index_title = "Campaigns, models and votes"


def backend_docs() -> list[dict[str, str]]:
    """Each backend kind with its settings as documented in its module, and example settings."""
    return [
        {
            "kind": kind,
            "label": label,
            "settings": settings_help(kind),
            "example": json.dumps(KIND_INFO[kind].example if kind in KIND_INFO else {}, indent=1),
        }
        for kind, label in kind_choices()
    ]


class ModelTrialForm(forms.Form):
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=model_trials.MAX_PROMPT_CHARS,
        initial=model_trials.TRIAL_PROMPT,
    )


@admin.register(ModelEntry)
class ModelEntryAdmin(admin.ModelAdmin):
    """Model entries: the backend is chosen from the registered kinds, each kind's settings are listed
    beside the form and checked on save (the backend is built from them: no network), and "Test"
    sends one short prompt through the backend and shows the answer or the error."""

    list_display = ["name", "backend", "is_active", "weight", "created_at", "test_link"]
    list_filter = ["backend", "is_active"]
    list_editable = ["is_active", "weight"]
    search_fields = ["name"]
    actions = ["test_models"]
    change_form_template = "admin/arena/modelentry/change_form.html"

    class Media:
        js = ["arena/admin_backend_docs.js"]

    @admin.display(description="")
    def test_link(self, obj: ModelEntry) -> str:
        return format_html('<a href="{}">test</a>', reverse("admin:arena_modelentry_test", args=[obj.pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["backend_docs"] = backend_docs()
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description="Test: send one short prompt to each and show the answer", permissions=["change"])
    def test_models(self, request, queryset):
        for entry in queryset[:10]:
            trial = model_trials.try_model(entry)
            level = messages.SUCCESS if trial.ok else messages.ERROR
            self.message_user(request, f"{entry}: {'answered' if trial.ok else 'failed'}: {trial.text[:500]}", level)
        if queryset.count() > 10:
            self.message_user(request, "Only the first 10 models were tested.", messages.WARNING)

    def get_urls(self):
        extra = [path("<int:model_id>/test/", self.admin_site.admin_view(self.test_view), name="arena_modelentry_test")]
        return extra + super().get_urls()

    def test_view(self, request: HttpRequest, model_id: int) -> HttpResponse:
        entry = get_object_or_404(ModelEntry, pk=model_id)
        if not self.has_change_permission(request, entry):
            raise PermissionDenied
        form = ModelTrialForm(request.POST or None)
        trial = None
        if request.method == "POST" and form.is_valid():
            trial = model_trials.try_model(entry, form.cleaned_data["prompt"])
        context = {
            **self.admin_site.each_context(request),
            "title": f"Test {entry}",
            "entry": entry,
            "form": form,
            "trial": trial,
            "opts": self.model._meta,
        }
        return render(request, "admin/arena/modelentry/test.html", context)


class DimensionInline(admin.TabularInline):
    model = Dimension
    extra = 0
    fields = ["order", "key", "label", "help_text", "scale_min", "scale_max"]


class InviteInline(admin.TabularInline):
    model = Invite
    extra = 0
    fields = ["label", "token", "uses", "max_uses", "revoked"]
    readonly_fields = ["token", "uses"]


class PromptImportForm(forms.Form):
    file = forms.FileField(help_text="See docs/imports.md for the formats.")
    format = forms.ChoiceField(choices=list(IMPORT_FORMATS.items()), initial="auto")
    chosen_model = forms.CharField(
        max_length=100,
        initial=DEFAULT_CHOSEN_MODEL,
        help_text="TRL records without chosen_model: the model of the chosen answers.",
    )
    rejected_model = forms.CharField(
        max_length=100,
        initial=DEFAULT_REJECTED_MODEL,
        help_text="TRL records without rejected_model: the model of the rejected answers.",
    )
    add_models = forms.BooleanField(
        required=False, help_text="Add the models the file names to this campaign (new names get a static backend)."
    )

    def options(self) -> ImportOptions:
        data = self.cleaned_data
        return ImportOptions(
            format=data["format"],
            chosen_model=data["chosen_model"],
            rejected_model=data["rejected_model"],
            add_models=data["add_models"],
        )


def _set_status(status: str):
    def action(modeladmin, request, queryset):
        changed, unchanged = [], []
        for campaign in queryset:
            before = campaign.status
            try:
                campaign_service.set_status(campaign, status)
            except ArenaError as error:
                modeladmin.message_user(request, f"{campaign}: {error.message}", messages.ERROR)
            else:
                (unchanged if before == status else changed).append(str(campaign))
        if changed:
            modeladmin.message_user(
                request, f"{len(changed)} campaign(s) now {status}: {', '.join(changed)}.", messages.SUCCESS
            )
        if unchanged:
            modeladmin.message_user(request, f"Already {status}: {', '.join(unchanged)}.", messages.INFO)

    action.__name__ = f"make_{status}"
    return admin.action(description=f"Set status: {status}", permissions=["change"])(action)


def campaign_links(campaign: Campaign) -> list[tuple[str, str]]:
    """(label, URL) of every page about one campaign, for its admin change page."""
    links = [
        ("Import prompts", reverse("admin:arena_campaign_import", args=[campaign.pk])),
        ("Dashboard", reverse("arena:dashboard", args=[campaign.slug])),
        ("Public page", reverse("arena:campaign", args=[campaign.slug])),
        ("Leaderboard", reverse("ratings:leaderboard", args=[campaign.slug])),
        ("Exports", reverse("admin:exports_campaign_export", args=[campaign.pk])),
    ]
    if campaign.mode == Campaign.Mode.PROMPT_SET:
        links.append(("Generation progress", reverse("admin:arena_campaign_generation", args=[campaign.pk])))
    return links


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "status", "mode", "access", "n_prompts", "n_votes", "links"]
    list_filter = ["status", "mode", "access"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}
    filter_horizontal = ["contenders"]
    inlines = [DimensionInline, InviteInline]
    actions = [_set_status("active"), _set_status("paused"), _set_status("closed")]
    readonly_fields = ["closed_at", "created_at"]
    fieldsets = [
        (None, {"fields": ["title", "slug", "status", "mode", "instructions"]}),
        ("Models", {"fields": ["contenders"]}),
        ("Voting", {"fields": ["allow_tie", "allow_both_bad", "sampling", "votes_per_item", "one_battle_per_prompt"]}),
        ("Task", {"fields": ["task", "ranking_size"]}),
        ("Gold battles", {"fields": ["gold_rate"]}),
        ("Live prompts: moderation", {"fields": ["moderator", "moderator_settings", "moderation_fail_open"]}),
        ("Live prompts: budgets", {"fields": ["live_battles_per_hour", "live_tokens_per_day", "live_cost_per_day"]}),
        ("Access", {"fields": ["access", "private", "vote_limit", "daily_vote_limit"]}),
        ("Dates", {"fields": ["created_at", "closed_at"]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(_prompts=Count("prompts", distinct=True), _votes=Count("votes", distinct=True))
        )

    @admin.display(description="prompts", ordering="_prompts")
    def n_prompts(self, obj: Campaign) -> int:
        return obj._prompts

    @admin.display(description="votes", ordering="_votes")
    def n_votes(self, obj: Campaign) -> int:
        return obj._votes

    @admin.display(description="")
    def links(self, obj: Campaign) -> str:
        return format_html(
            '<a href="{}">dashboard</a> · <a href="{}">export</a> · '
            '<a href="{}">import prompts</a> · <a href="{}">page</a>',
            reverse("arena:dashboard", args=[obj.slug]),
            reverse("admin:exports_campaign_export", args=[obj.pk]),
            reverse("admin:arena_campaign_import", args=[obj.pk]),
            reverse("arena:campaign", args=[obj.slug]),
        )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        sync_campaign_items(form.instance)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        campaign = self.get_object(request, object_id)
        extra = {"campaign_links": campaign_links(campaign)} if campaign is not None else {}
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def get_urls(self):
        extra = [
            path(
                "<int:campaign_id>/import/",
                self.admin_site.admin_view(self.import_view),
                name="arena_campaign_import",
            )
        ]
        return extra + super().get_urls()

    def import_view(self, request: HttpRequest, campaign_id: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        form = PromptImportForm(request.POST or None, request.FILES or None)
        errors: list[str] = []
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                summary = import_file(campaign, upload.name, upload.read(), form.options())
            except ArenaError as error:
                errors = getattr(error, "errors", [error.message])
            else:
                self.message_user(request, f"Imported: {summary}.", messages.SUCCESS)
                return redirect("admin:arena_campaign_change", campaign.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import prompts into {campaign}",
            "campaign": campaign,
            "form": form,
            "errors": errors,
            "opts": self.model._meta,
        }
        return render(request, "admin/arena/campaign_import.html", context)


@admin.register(Dimension)
class DimensionAdmin(admin.ModelAdmin):
    list_display = ["label", "key", "campaign", "scale_min", "scale_max"]
    list_filter = ["campaign"]


class ResponseInline(admin.TabularInline):
    model = Response
    extra = 0
    fields = ["model", "status", "source", "content"]
    show_change_link = True


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["__str__", "campaign", "category", "language", "created_at"]
    list_filter = ["campaign", "category", "language"]
    search_fields = ["external_id"]
    inlines = [ResponseInline]
    readonly_fields = ["gold_link"]

    @admin.display(description="gold battle")
    def gold_link(self, obj: Prompt) -> str:
        if obj.pk is None:
            return "-"
        url = reverse("admin:arena_goldbattle_add") + f"?prompt={obj.pk}"
        return format_html('<a href="{}">Make a gold battle from two of its responses</a>', url)


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "source", "checks", "latency_ms", "completion_tokens", "updated_at"]
    list_filter = ["status", "source", "model", "checks"]
    search_fields = ["prompt__external_id", "model__name"]
    readonly_fields = ["html", "attempts", "started_at", "created_at", "updated_at"]
    raw_id_fields = ["prompt"]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["__str__", "campaign", "vote_count"]
    list_filter = ["campaign"]
    raw_id_fields = ["prompt", "response_lo", "response_hi"]


@admin.register(Voter)
class VoterAdmin(admin.ModelAdmin):
    list_display = ["__str__", "user", "excluded", "created_at"]
    list_filter = ["excluded"]
    list_editable = ["excluded"]
    readonly_fields = ["public_id", "ip_hash", "created_at"]


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    list_display = ["__str__", "campaign", "uses", "max_uses", "revoked"]
    list_filter = ["campaign", "revoked"]
    readonly_fields = ["token", "uses"]


@admin.register(Admission)
class AdmissionAdmin(admin.ModelAdmin):
    list_display = ["voter", "campaign", "invite", "created_at"]
    raw_id_fields = ["voter"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Votes and battles are evidence: staff may look and delete, never rewrite."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Battle)
class BattleAdmin(ReadOnlyAdmin):
    list_display = ["id", "campaign", "status", "flagged", "created_at"]
    list_filter = ["campaign", "status", "flagged", ("gold", admin.EmptyFieldListFilter)]


@admin.action(description="Make gold battles from these votes (expected verdict = the vote's)")
def make_gold(modeladmin, request, queryset):
    if not request.user.has_perm("arena.add_goldbattle"):
        modeladmin.message_user(request, "You may not add gold battles.", messages.ERROR)
        return
    result = gold_from_votes(
        queryset.select_related("battle__campaign", "battle__prompt", "battle__left", "battle__right")
    )
    if result.created:
        modeladmin.message_user(request, f"{len(result.created)} gold battle(s) created.", messages.SUCCESS)
    for reason in result.skipped:
        modeladmin.message_user(request, f"Skipped {reason}.", messages.WARNING)


@admin.register(Ranking)
class RankingAdmin(ReadOnlyAdmin):
    """Rankings of N responses; each submitted one is also its N-choose-2 battles (filter battles by ranking)."""

    list_display = ["id", "campaign", "status", "duration_ms", "created_at", "submitted_at"]
    list_filter = ["campaign", "status"]
    raw_id_fields = ["voter", "prompt"]


@admin.register(Vote)
class VoteAdmin(ReadOnlyAdmin):
    actions = [make_gold]
    list_display = [
        "battle_id",
        "campaign",
        "verdict",
        "winner",
        "left_model",
        "right_model",
        "duration_ms",
        "created_at",
    ]
    list_filter = ["campaign", "verdict"]
    list_select_related = ["campaign", "winner", "left_model", "right_model"]


def _response_label(response: Response) -> str:
    text = " ".join(response.content.split())
    return f"{response.model.name}: {text[:80]}{'…' if len(text) > 80 else ''}"


class GoldBattleForm(forms.ModelForm):
    """Pick the prompt, then two of its responses: until a prompt is known the response lists are
    empty, and saving with only the prompt comes back with them filled."""

    class Meta:
        model = GoldBattle
        fields = ["prompt", "first", "second", "expected", "note", "is_active"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        prompt_id = self.data.get("prompt") or self.initial.get("prompt") or self.instance.prompt_id
        try:
            prompt_id = int(prompt_id) if prompt_id else None
        except (TypeError, ValueError):
            prompt_id = None
        shown = Response.objects.filter(prompt_id=prompt_id).select_related("model").order_by("model__name")
        for name in ("first", "second"):
            field = self.fields[name]
            field.required = False  # a missing one is explained in clean()
            field.queryset = Response.objects.all()  # any id validates; clean() says what is wrong with it
            field.widget.choices = [("", "---------")] + [(r.pk, _response_label(r)) for r in shown]
            if prompt_id is None:
                field.help_text = "Choose the prompt and save: this list then shows its responses."

    def clean(self):
        data = super().clean()
        prompt, first, second = data.get("prompt"), data.get("first"), data.get("second")
        if prompt is None:
            return data
        if first is None or second is None:
            raise ValidationError("Now choose two of this prompt's responses and the verdict you expect.")
        try:
            check_gold(prompt.campaign, prompt, first, second)
        except ArenaError as error:
            raise ValidationError(error.message) from None
        self.instance.campaign = prompt.campaign
        return data


@admin.register(GoldBattle)
class GoldBattleAdmin(admin.ModelAdmin):
    """Gold battles of every campaign, with how often voters agreed with each (see docs/gold.md)."""

    form = GoldBattleForm
    list_display = ["__str__", "campaign", "expected", "is_active", "n_votes", "agreement", "note"]
    list_filter = ["campaign", "expected", "is_active"]
    list_editable = ["is_active"]
    raw_id_fields = ["prompt"]
    search_fields = ["prompt__external_id", "note"]
    actions = ["activate", "deactivate"]

    def get_queryset(self, request):
        vote = "battles__vote__verdict"
        first_left, first_right = Q(battles__left_id=F("first_id")), Q(battles__right_id=F("first_id"))
        agrees = (
            Q(expected="tie", **{vote: "tie"})
            | Q(expected="both_bad", **{vote: "both_bad"})
            | Q(first_left, expected="first", **{vote: "left"})
            | Q(first_right, expected="first", **{vote: "right"})
            | Q(first_right, expected="second", **{vote: "left"})
            | Q(first_left, expected="second", **{vote: "right"})
        )
        return (
            super()
            .get_queryset(request)
            .select_related("campaign", "prompt")
            .annotate(_votes=Count("battles__vote"), _agree=Count("battles__vote", filter=agrees))
        )

    @admin.display(description="votes", ordering="_votes")
    def n_votes(self, obj: GoldBattle) -> int:
        return obj._votes

    @admin.display(description="as expected")
    def agreement(self, obj: GoldBattle) -> str:
        return f"{obj._agree / obj._votes:.0%}" if obj._votes else "-"

    @admin.action(description="Hand out again (activate)", permissions=["change"])
    def activate(self, request, queryset):
        self.message_user(request, f"{queryset.update(is_active=True)} gold battle(s) active.", messages.SUCCESS)

    @admin.action(description="Stop handing out (deactivate; votes are kept)", permissions=["change"])
    def deactivate(self, request, queryset):
        self.message_user(request, f"{queryset.update(is_active=False)} gold battle(s) inactive.", messages.SUCCESS)


from arena import admin_generation  # noqa: E402,F401
from arena.guardrails import admin as guardrails_admin  # noqa: E402,F401
