"""Exports in the JSON API (/api/v1/exports): start a job, follow its progress, download the file.

Staff with the export permission only (``exports.export_data``, "Can create and download exports";
superusers have it), with the Django session (log in through /admin/ first): 401 without a login,
403 for a user who is not staff or lacks the permission. Starting an export is a POST and needs the
CSRF token (cookie ``csrftoken`` echoed in the ``X-CSRFToken`` header).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest
from django.urls import reverse
from ninja import Field, Router, Schema

from arena.api.common import ErrorOut, StaffSession, Status
from arena.core.errors import NotFound
from arena.exports import dispatch
from arena.exports.downloads import export_file_response
from arena.exports.models import ExportJob
from arena.models import Campaign
from arena.permissions import EXPORT_DATA

router = Router(
    auth=StaffSession(
        EXPORT_DATA,
        feature="exports",
        not_staff="Exports are for staff only.",
        missing="Exports need the permission 'Can create and download exports' (exports.export_data).",
    ),
    tags=["exports"],
)

FormatName = Literal[
    "battles-jsonl", "battles-json", "trl-jsonl", "openai-jsonl", "parquet", "leaderboard-csv", "leaderboard-json"
]


class ExportIn(Schema):
    campaign: str = Field(description="Campaign slug.")
    format: FormatName
    since: str | None = Field(None, description="Votes from this date or ISO date-time on (inclusive).")
    until: str | None = Field(None, description="Votes before this ISO date-time; a bare date includes that day.")
    dimension: str = Field("", description="Decide battles and pairs by this dimension's scores.")
    category: str = Field("", description="Prompts of this category only.")
    include_flagged: bool = False
    include_excluded: bool = Field(False, description="Keep votes of voters staff excluded.")
    include_gold: bool = Field(False, description="Keep votes on gold battles (voter checks, left out by default).")
    min_votes: int = Field(0, ge=0, description="Only items (prompt x model pair) with at least this many votes.")
    margin: Literal["none", "scores", "agreement"] = Field("none", description="Pairs only; see docs/exports.md.")
    source: str = Field("humans", description="Battles only: humans, all, or judge:NAME (docs/judges.md).")


class ExportJobOut(Schema):
    id: int
    campaign: str
    format: str
    status: str
    filters: dict[str, Any]
    rows_total: int | None
    rows_done: int
    rows_written: int
    progress: float | None = Field(description="Share of the input read, 0 to 1.")
    file_size: int | None
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    download_url: str | None


def _job_out(job: ExportJob) -> dict[str, Any]:
    ready = job.status == ExportJob.Status.DONE
    return {
        "id": job.pk,
        "campaign": job.campaign.slug,
        "format": job.format,
        "status": job.status,
        "filters": job.filters,
        "rows_total": job.rows_total,
        "rows_done": job.rows_done,
        "rows_written": job.rows_written,
        "progress": job.progress,
        "file_size": job.file_size,
        "error": job.error,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "download_url": reverse("api:export_download", kwargs={"job_id": job.pk}) if ready else None,
    }


def _job(job_id: int) -> ExportJob:
    job = ExportJob.objects.select_related("campaign").filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such export.")
    return job


_ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut}


@router.post("", response={202: ExportJobOut, **_ERRORS})
def start_export(request: HttpRequest, payload: ExportIn):
    """Start an export; a worker writes the file. Poll the job, then fetch ``download_url``."""
    campaign = Campaign.objects.filter(slug=payload.campaign).first()
    if campaign is None:
        raise NotFound("No such campaign.")
    filters = payload.model_dump(exclude={"campaign", "format"})
    job = dispatch.start_export(campaign, payload.format, filters, user=request.user)
    job.campaign = campaign
    return Status(202, _job_out(job))


@router.get("", response={200: list[ExportJobOut], **_ERRORS})
def list_exports(request: HttpRequest, campaign: str | None = None, limit: int = 50):
    """The latest exports, newest first (optionally of one campaign)."""
    jobs = ExportJob.objects.select_related("campaign")
    if campaign:
        jobs = jobs.filter(campaign__slug=campaign)
    return [_job_out(job) for job in jobs[: max(1, min(limit, 500))]]


@router.get("/{job_id}", response={200: ExportJobOut, **_ERRORS})
def get_export(request: HttpRequest, job_id: int):
    return _job_out(_job(job_id))


@router.get("/{job_id}/download", response={200: None, **_ERRORS}, url_name="export_download")
def download_export(request: HttpRequest, job_id: int):
    """The finished file (404 until the job is done)."""
    job = _job(job_id)
    if job.status != ExportJob.Status.DONE:
        raise NotFound(f"This export is {job.status}; the file is there once it is done.")
    return export_file_response(job)
