"""Export jobs: one export of one campaign, run by a worker, with its progress and its file."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from arena.exports.formats import FORMATS
from arena.models import Campaign


class ExportJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="export_jobs")
    format = models.CharField(max_length=32, choices=[(f.name, f.label) for f in FORMATS.values()])
    filters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # Each run that claims the job increments it; a stale run's late writes are ignored by it.
    attempt = models.PositiveIntegerField(default=0)
    rows_total = models.BigIntegerField(null=True, blank=True, help_text="Votes (or leaderboard rows) to read.")
    rows_done = models.BigIntegerField(default=0, help_text="Votes (or leaderboard rows) read so far.")
    rows_written = models.BigIntegerField(default=0, help_text="Records written to the file.")
    file_name = models.CharField(max_length=255, blank=True, help_text="Inside ARENA_EXPORT_DIR.")
    file_size = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["campaign", "created_at"], name="exportjob_campaign_idx")]
        verbose_name = "export"
        # Staff need it (superusers have it) to start, list, read and download exports: the files carry
        # every vote of a campaign, excluded voters included on request (see arena/permissions.py).
        permissions = [("export_data", "Can create and download exports")]

    def __str__(self) -> str:
        return f"export {self.pk}: {self.format}"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def progress(self) -> float | None:
        """Share of the input read, 0 to 1; None before the total is known."""
        if self.status == self.Status.DONE:
            return 1.0
        if not self.rows_total:
            return None
        return min(1.0, self.rows_done / self.rows_total)

    @property
    def path(self) -> Path | None:
        return Path(settings.ARENA_EXPORT_DIR) / self.file_name if self.file_name else None

    @property
    def download_name(self) -> str:
        extension = FORMATS[self.format].extension
        stamp = (self.finished_at or self.created_at).strftime("%Y%m%d-%H%M%S")
        return f"{self.campaign.slug}-{self.format}-{stamp}.{extension}"


@receiver(post_delete, sender=ExportJob)
def _delete_file(sender, instance: ExportJob, **kwargs) -> None:
    """Deleting a job (also in bulk from the admin) deletes its file."""
    if instance.path is not None:
        instance.path.unlink(missing_ok=True)
