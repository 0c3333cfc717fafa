"""Admin for gold battles: made from votes or by hand, checked on save, switched on and off."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, F, Q

from arena.core.errors import ArenaError
from arena.models import (
    GoldBattle,
    Response,
)
from arena.services.gold import check_gold, gold_from_votes


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
