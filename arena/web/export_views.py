"""Download of a finished export file: staff with the export permission only, streamed from disk."""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET

from arena.exports.downloads import export_file_response
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


@require_GET
@export_permission_required
def download(request: HttpRequest, job_id: int) -> FileResponse:
    return export_file_response(get_object_or_404(ExportJob.objects.select_related("campaign"), pk=job_id))
