"""Admin for response generation: campaign actions and a progress page per campaign.

``GenerationAdminMixin`` gives the campaign admin (arena.admin.campaigns):

- actions "Generate all missing responses" and "Retry failed responses";
- a "generation" link per campaign leading to ``admin/arena/campaign/<id>/generation/``: counts by
  model and status, a progress bar, the failed responses with their errors, and buttons to generate
  the missing ones or retry the failed ones (staff who may view the campaign; the buttons need the
  change permission).

The same operations exist as ``manage.py generate_responses <slug> [--retry-failed] [--wait]``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html

from arena.core.errors import ArenaError
from arena.models import Campaign
from arena.services import generation

STATUSES = ("queued", "running", "done", "failed")


def _each_campaign(modeladmin, request: HttpRequest, queryset, run: Callable[[Campaign], str]) -> None:
    """Run ``run`` on each selected campaign and report what it did, or why it could not."""
    for campaign in queryset:
        try:
            done = run(campaign)
        except ArenaError as error:
            modeladmin.message_user(request, f"{campaign}: {error.message}", messages.WARNING)
        else:
            modeladmin.message_user(request, f"{campaign}: {done}.", messages.SUCCESS)


@admin.action(description="Generate all missing responses", permissions=["change"])
def generate_missing(modeladmin, request, queryset):
    _each_campaign(modeladmin, request, queryset, lambda campaign: str(generation.queue_missing_responses(campaign)))


@admin.action(description="Retry failed responses", permissions=["change"])
def retry_failed(modeladmin, request, queryset):
    _each_campaign(
        modeladmin,
        request,
        queryset,
        lambda campaign: f"{generation.retry_failed(campaign)} failed responses queued again",
    )


GENERATION_ACTIONS = [generate_missing, retry_failed]


class GenerationAdminMixin:
    """The generation link, page and URLs of a campaign admin; its actions are ``GENERATION_ACTIONS``."""

    @admin.display(description="generation")
    def generation_link(self, obj: Campaign) -> str:
        if obj.mode != Campaign.Mode.PROMPT_SET:
            return "live"
        return format_html('<a href="{}">progress</a>', reverse("admin:arena_campaign_generation", args=[obj.pk]))

    def get_urls(self):
        extra = [
            path(
                "<int:campaign_id>/generation/",
                self.admin_site.admin_view(self.generation_view),
                name="arena_campaign_generation",
            )
        ]
        return extra + super().get_urls()

    def generation_view(self, request: HttpRequest, campaign_id: int) -> HttpResponse:
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        if not self.has_view_permission(request, campaign):
            raise PermissionDenied
        if request.method == "POST":
            if not self.has_change_permission(request, campaign):
                raise PermissionDenied
            action = request.POST.get("action")
            try:
                if action == "generate":
                    summary = generation.queue_missing_responses(campaign)
                    self.message_user(request, f"{summary}.", messages.SUCCESS)
                elif action == "retry":
                    ids = request.POST.getlist("response") or None
                    n = generation.retry_failed(campaign, [int(i) for i in ids if i.isdigit()] if ids else None)
                    self.message_user(request, f"{n} failed responses queued again.", messages.SUCCESS)
            except ArenaError as error:
                self.message_user(request, error.message, messages.ERROR)
            return redirect("admin:arena_campaign_generation", campaign.pk)
        progress = generation.campaign_progress(campaign)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Generation of {campaign}",
            "campaign": campaign,
            "progress": progress,
            "statuses": STATUSES,
            "rows": [(m.name, [m.counts.get(s, 0) for s in STATUSES], m.done) for m in progress.models],
            "failed": generation.failed_responses(campaign),
            "n_prompts": campaign.prompts.count(),
            "working": progress.pending > 0,
            "opts": self.model._meta,
            "can_change": self.has_change_permission(request, campaign),
        }
        return render(request, "admin/arena/generation_progress.html", context)
