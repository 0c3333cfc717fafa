"""Admin for campaigns: settings, dimensions, invitations, status actions, imports and links.

Generation actions and the progress page come from ``arena.admin.generation``'s mixin."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html

from arena.admin.generation import GENERATION_ACTIONS, GenerationAdminMixin
from arena.core.errors import ArenaError
from arena.models import (
    Campaign,
    Dimension,
    Invite,
)
from arena.services import campaigns as campaign_service
from arena.services.imports import DEFAULT_CHOSEN_MODEL, DEFAULT_REJECTED_MODEL, ImportOptions, import_file
from arena.services.imports import FORMATS as IMPORT_FORMATS
from arena.services.items import sync_campaign_items


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
class CampaignAdmin(GenerationAdminMixin, admin.ModelAdmin):
    list_display = ["title", "slug", "status", "mode", "access", "n_prompts", "n_votes", "links", "generation_link"]
    list_filter = ["status", "mode", "access"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}
    filter_horizontal = ["contenders"]
    inlines = [DimensionInline, InviteInline]
    actions = [_set_status("active"), _set_status("paused"), _set_status("closed"), *GENERATION_ACTIONS]
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
