"""A finished export job's file as an HTTP download: the one answer of the download page and the API."""

from __future__ import annotations

from django.http import FileResponse, Http404

from arena.exports.formats import FORMATS
from arena.exports.models import ExportJob


def export_file_response(job: ExportJob) -> FileResponse:
    """The job's file as an attachment; 404 while it is not ready or once the file is gone."""
    path = job.path
    if job.status != ExportJob.Status.DONE or path is None or not path.is_file():
        raise Http404("This export has no file (not finished, failed, or deleted).")
    return FileResponse(
        open(path, "rb"),  # FileResponse closes it
        as_attachment=True,
        filename=job.download_name,
        content_type=FORMATS[job.format].content_type,
    )
