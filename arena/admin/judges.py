"""Admin for judges: add one (its template validated on save), run it, follow its progress, read its failures.

The actions call `arena.judges.actions.start`, the same code as ``manage.py run_judges`` and the API,
and need the change-judge permission. Verdicts are read-only: failures show their error and the raw
replies, so staff see what the judge said.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, Sum
from django.utils.html import format_html

from arena.core.errors import ArenaError
from arena.judges import actions
from arena.judges.models import Judge, JudgeVerdict


def _run(scope: str, label: str, *, retry_failed: bool = False):
    def action(modeladmin, request, queryset):
        if not request.user.has_perm("judges.change_judge"):
            raise PermissionDenied
        try:
            started = actions.start(
                list(queryset.select_related("model", "campaign")), scope=scope, retry_failed=retry_failed
            )
        except ArenaError as error:
            modeladmin.message_user(request, str(error), messages.ERROR)
            return
        for item in started:
            modeladmin.message_user(request, f"{item.judge}: {item.plan}; {item.dispatched} handed to the workers.")

    action.__name__ = f"run_{scope}{'_retry' if retry_failed else ''}"
    action.short_description = label
    return action


@admin.register(Judge)
class JudgeAdmin(admin.ModelAdmin):
    list_display = ["model", "campaign", "is_active", "allow_self_judging", "max_concurrency", "progress", "usage"]
    list_filter = ["campaign", "is_active"]
    list_select_related = ["model", "campaign"]
    actions = [
        _run("items", "Judge every prompt and model pair"),
        _run("voted", "Judge the pairings humans voted on"),
        _run("items", "Judge failed pairings again", retry_failed=True),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_total=Count("verdicts"),
                n_done=Count("verdicts", filter=Q(verdicts__status="done")),
                n_failed=Count("verdicts", filter=Q(verdicts__status="failed")),
                n_tokens=Sum("verdicts__prompt_tokens") + Sum("verdicts__completion_tokens"),
                total_cost=Sum("verdicts__cost"),
            )
        )

    @admin.display(description="Progress")
    def progress(self, obj: Judge) -> str:
        if not obj.n_total:
            return "not run"
        return f"{obj.n_done} done, {obj.n_failed} failed of {obj.n_total}"

    @admin.display(description="Tokens / cost")
    def usage(self, obj: Judge) -> str:
        return f"{obj.n_tokens or 0:,} / {obj.total_cost or 0:.4f}"


@admin.register(JudgeVerdict)
class JudgeVerdictAdmin(admin.ModelAdmin):
    list_display = ["id", "judge", "model_lo", "model_hi", "status", "outcome", "consistent", "short_error"]
    list_filter = ["status", "outcome", "consistent", "judge"]
    list_select_related = ["judge__model", "judge__campaign", "model_lo", "model_hi"]
    readonly_fields = [f.name for f in JudgeVerdict._meta.fields]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Error")
    def short_error(self, obj: JudgeVerdict) -> str:
        return format_html("{}", obj.error[:120])
