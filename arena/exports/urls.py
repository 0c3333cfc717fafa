from django.urls import path

from arena.exports import views

app_name = "exports"

urlpatterns = [
    path("staff/exports/<int:job_id>/download", views.download, name="download"),
]
