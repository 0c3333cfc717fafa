"""Admin pages of the guardrails: refused prompts and generation usage, read-only (evidence)."""

from __future__ import annotations

from django.contrib import admin

from arena.models import GenerationUsage, RefusedPrompt


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RefusedPrompt)
class RefusedPromptAdmin(_ReadOnly):
    list_display = ["created_at", "campaign", "moderator", "reason", "short_text"]
    list_filter = ["campaign", "moderator"]
    search_fields = ["text", "reason"]

    @admin.display(description="prompt")
    def short_text(self, obj: RefusedPrompt) -> str:
        return obj.text[:120]


@admin.register(GenerationUsage)
class GenerationUsageAdmin(_ReadOnly):
    list_display = ["day", "campaign", "model", "generations", "prompt_tokens", "completion_tokens", "cost"]
    list_filter = ["campaign", "model", "day"]
    date_hierarchy = "day"
