"""Admin for model entries: backend settings documented per kind, and a page to try a model."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html

from arena.models import (
    ModelEntry,
)
from arena.services import model_trials
from backends.registry import KIND_INFO, kind_choices, settings_help


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
