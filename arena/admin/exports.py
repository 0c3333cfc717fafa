"""Admin: an Export page per campaign (format, filters, its jobs with progress and downloads) and
the list of every export job. Jobs are started here and run on a worker. The Export pages need the
export permission (``exports.export_data``), which also shows the list of jobs."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils.html import format_html

from arena.core.errors import ArenaError
from arena.exports import dispatch, filters
from arena.exports.formats import FORMATS
from arena.exports.models import ExportJob
from arena.models import Campaign
from arena.permissions import EXPORT_DATA, allowed, check

MARGIN_CHOICES = [
    ("none", "No margin"),
    ("scores", "Score difference (dimension scores)"),
    ("agreement", "Vote agreement on the item"),
]


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=[(f.name, f.label) for f in FORMATS.values()])
    since = forms.CharField(required=False, help_text="Votes from this day on: YYYY-MM-DD or an ISO date-time.")
    until = forms.CharField(required=False, help_text="Votes up to this day (included), or before an ISO date-time.")
    dimension = forms.ChoiceField(required=False, help_text="Decide battles and pairs by this dimension's scores.")
    category = forms.ChoiceField(required=False)
    include_flagged = forms.BooleanField(required=False, label="Include flagged battles")
    include_excluded = forms.BooleanField(required=False, label="Include excluded voters")
    include_gold = forms.BooleanField(required=False, label="Include votes on gold battles")
    min_votes = forms.IntegerField(
        required=False, min_value=0, initial=0, help_text="Only items (prompt x model pair) with this many votes."
    )
    margin = forms.ChoiceField(choices=MARGIN_CHOICES, initial="none", help_text="Preference pairs only.")
    source = forms.CharField(
        required=False,
        initial="humans",
        max_length=120,
        help_text="Battles only: humans, all, or judge:NAME (LLM judge verdicts).",
    )

    def __init__(self, campaign: Campaign, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["dimension"].choices = [("", "Overall verdict")] + [
            (d.key, d.label) for d in campaign.dimensions.all()
        ]
        categories = (
            campaign.prompts.exclude(category="").order_by("category").values_list("category", flat=True).distinct()
        )
        self.fields["category"].choices = [("", "All categories")] + [(c, c) for c in categories]


def _progress(job: ExportJob) -> str:
    if job.status == ExportJob.Status.DONE:
        return f"{job.rows_written:,} records"
    if job.status == ExportJob.Status.FAILED:
        return "failed"
    if job.progress is None:
        return job.status
    return f"{job.progress:.0%} ({job.rows_done:,} of {job.rows_total:,})"


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "campaign",
        "format",
        "status",
        "progress_text",
        "size",
        "created_by",
        "created_at",
        "download",
    ]
    list_filter = ["status", "format", "campaign"]
    list_select_related = ["campaign", "created_by"]
    readonly_fields = [f.name for f in ExportJob._meta.fields]

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # started from a campaign's Export page

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) or allowed(request.user, EXPORT_DATA)

    @admin.display(description="progress")
    def progress_text(self, job: ExportJob) -> str:
        return _progress(job)

    @admin.display(description="size", ordering="file_size")
    def size(self, job: ExportJob) -> str:
        return filesizeformat(job.file_size) if job.file_size is not None else ""

    @admin.display(description="")
    def download(self, job: ExportJob) -> str:
        if job.status != ExportJob.Status.DONE:
            return ""
        return format_html('<a href="{}">download</a>', reverse("exports:download", args=[job.pk]))

    def get_urls(self):
        extra = [
            path("new/", self.admin_site.admin_view(self.choose_view), name="exports_exportjob_choose"),
            path(
                "campaign/<int:campaign_id>/",
                self.admin_site.admin_view(self.campaign_view),
                name="exports_campaign_export",
            ),
        ]
        return extra + super().get_urls()

    def _context(self, request: HttpRequest, title: str, **extra) -> dict:
        return {**self.admin_site.each_context(request), "title": title, "opts": self.model._meta, **extra}

    def choose_view(self, request: HttpRequest) -> HttpResponse:
        check(request.user, EXPORT_DATA)
        campaigns = Campaign.objects.annotate(n_votes=Count("votes")).order_by("-created_at")
        return render(
            request,
            "admin/exports/choose_campaign.html",
            self._context(request, "Export a campaign", campaigns=campaigns),
        )

    def campaign_view(self, request: HttpRequest, campaign_id: int) -> HttpResponse:
        """The Export page of one campaign: the form, then its jobs (refreshing while one runs)."""
        check(request.user, EXPORT_DATA)
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        form = ExportForm(campaign, request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = dict(form.cleaned_data)
            fmt = data.pop("format")
            try:
                job = dispatch.start_export(campaign, fmt, data, user=request.user)
            except ArenaError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(request, f"Export {job.pk} ({fmt}) started; it runs on a worker.", messages.SUCCESS)
                return redirect("admin:exports_campaign_export", campaign.pk)
        jobs = list(ExportJob.objects.filter(campaign=campaign).select_related("created_by")[:30])
        for job in jobs:
            job.progress_text = _progress(job)
            job.describe = filters.ExportFilters.parse(job.filters).describe() if job.filters else ""
        context = self._context(
            request,
            f"Export {campaign}",
            campaign=campaign,
            form=form,
            jobs=jobs,
            refresh=any(job.is_active for job in jobs),
        )
        return render(request, "admin/exports/campaign_export.html", context)
