from django.urls import path

from arena.web import export_views as views

app_name = "exports"

urlpatterns = [
    path("staff/exports/<int:job_id>/download", views.download, name="download"),
]
