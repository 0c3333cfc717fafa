"""Admin for what voting produced: prompts, responses, items, voters, battles, votes and rankings
(read-only where a change would falsify the record)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from arena.admin.gold import make_gold
from arena.models import (
    Admission,
    Battle,
    Invite,
    Item,
    Prompt,
    Ranking,
    Response,
    Vote,
    Voter,
)


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
