"""Download of a finished export file: staff with the export permission only, streamed from disk."""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from arena.exports.formats import FORMATS
from arena.exports.models import ExportJob
from arena.permissions import EXPORT_DATA, allowed


def export_permission_required(view):
    """Anonymous visitors go to the login page; logged-in non-staff users and staff without the
    export permission (``exports.export_data``) get 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        if not (user.is_active and user.is_staff):
            return HttpResponseForbidden("Exports are for staff only.")
        if not allowed(user, EXPORT_DATA):
            return HttpResponseForbidden("Exports need the permission 'Can create and download exports'.")
        return view(request, *args, **kwargs)

    return wrapper


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


@require_GET
@export_permission_required
def download(request: HttpRequest, job_id: int) -> FileResponse:
    return export_file_response(get_object_or_404(ExportJob.objects.select_related("campaign"), pk=job_id))
