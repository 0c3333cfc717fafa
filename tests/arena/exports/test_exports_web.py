"""Export jobs through the admin page, the JSON API and the management command; staff only."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from arena.exports.filters import ExportFilters
from arena.exports.jobs import STALE_AFTER, run_job
from arena.exports.models import ExportJob
from arena.models import Voter
from tests.arena.exports.test_exports import add_vote, read_jsonl
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def export_dir(settings, tmp_path):
    settings.ARENA_EXPORT_DIR = tmp_path / "exports"
    return settings.ARENA_EXPORT_DIR


@pytest.fixture
def campaign(db):
    campaign = make_campaign(slug="web")
    p0, p1, _ = campaign.prompts.all()
    alice, bob = Voter.objects.create(), Voter.objects.create()
    add_vote(campaign, alice, p0, "Beta", "Alpha", "left")
    add_vote(campaign, bob, p0, "Alpha", "Gamma", "right")
    add_vote(campaign, bob, p1, "Alpha", "Beta", "tie")
    return campaign


@pytest.fixture
def voter_client(db, django_user_model) -> Client:
    """A logged-in voter who is not staff."""
    user = django_user_model.objects.create_user("voter", password="pw")
    client = Client()
    client.force_login(user)
    return client


def finished_job(campaign, fmt="battles-jsonl", **filters) -> ExportJob:
    job = ExportJob.objects.create(campaign=campaign, format=fmt, filters=ExportFilters.parse(filters).to_dict())
    return run_job(job.pk)


def test_only_staff_may_download_a_file(campaign, client, voter_client, staff_client):
    job = finished_job(campaign)
    url = f"/staff/exports/{job.pk}/download"
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/")
    assert voter_client.get(url).status_code == 403
    response = staff_client.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="web-battles-jsonl-')
    assert response["Content-Type"].startswith("application/x-ndjson")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["model_a"] == "Beta"


def test_the_api_answers_401_and_403_in_json_to_others(campaign, client, voter_client):
    body = {"campaign": "web", "format": "trl-jsonl"}
    for path in ("/api/v1/exports", "/api/v1/exports/1", "/api/v1/exports/1/download"):
        response = client.get(path)
        assert response.status_code == 401 and response.json()["error"] == "unauthorized"
        response = voter_client.get(path)
        assert response.status_code == 403 and response.json()["error"] == "forbidden"
    assert client.post("/api/v1/exports", body, content_type="application/json").status_code == 401
    assert voter_client.post("/api/v1/exports", body, content_type="application/json").status_code == 403
    assert not ExportJob.objects.exists()


def test_staff_start_an_export_follow_it_and_download_it_through_the_api(
    campaign, staff_client, django_capture_on_commit_callbacks
):
    body = {"campaign": "web", "format": "trl-jsonl", "margin": "agreement", "until": "2030-01-01"}
    with django_capture_on_commit_callbacks(execute=True):  # the task runs in-process, as when embedded
        response = staff_client.post("/api/v1/exports", body, content_type="application/json")
    assert response.status_code == 202
    created = response.json()
    assert created["status"] == "queued" and created["filters"]["margin"] == "agreement"
    job = staff_client.get(f"/api/v1/exports/{created['id']}").json()
    assert job["status"] == "done" and job["progress"] == 1.0
    assert (job["rows_total"], job["rows_done"], job["rows_written"]) == (3, 3, 2)
    assert job["file_size"] > 0 and job["download_url"] == f"/api/v1/exports/{job['id']}/download"
    download = staff_client.get(job["download_url"])
    pairs = [json.loads(line) for line in b"".join(download.streaming_content).decode().splitlines()]
    assert [p["chosen_model"] for p in pairs] == ["Beta", "Gamma"]
    listed = staff_client.get("/api/v1/exports?campaign=web").json()
    assert [j["id"] for j in listed] == [job["id"]]
    schema = staff_client.get("/api/v1/openapi.json").json()
    assert "/api/v1/exports" in schema["paths"] and "/api/v1/exports/{job_id}/download" in schema["paths"]


def test_the_api_rejects_bad_requests_with_clear_json(campaign, staff_client, django_user_model):
    def post(**body):
        return staff_client.post("/api/v1/exports", {"campaign": "web", **body}, content_type="application/json")

    assert post(format="battles-jsonl", dimension="nope").json()["message"].startswith("Campaign 'web' has no")
    assert post(format="battles-jsonl", since="soon").status_code == 400
    assert post(format="leaderboard-csv", min_votes=3).status_code == 400
    assert post(format="xml").status_code == 422
    assert (
        staff_client.post(
            "/api/v1/exports", {"campaign": "none", "format": "parquet"}, content_type="application/json"
        ).status_code
        == 404
    )
    job = ExportJob.objects.create(campaign=campaign, format="parquet")
    assert staff_client.get(f"/api/v1/exports/{job.pk}/download").status_code == 404  # not finished
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(django_user_model.objects.get(username="staff"))
    response = strict.post("/api/v1/exports", {"campaign": "web", "format": "parquet"}, content_type="application/json")
    assert response.status_code == 403  # no CSRF token


def test_the_admin_export_page_starts_jobs_and_lists_them_with_progress(
    campaign, client, voter_client, staff_client, django_capture_on_commit_callbacks
):
    url = f"/admin/exports/exportjob/campaign/{campaign.pk}/"
    assert client.get(url).status_code == 302
    assert voter_client.get(url).status_code == 302  # the admin sends non-staff users to its login page
    page = staff_client.get(url)
    assert page.status_code == 200 and b'id="export-form"' in page.content and b"No export yet" in page.content
    assert staff_client.get("/admin/exports/exportjob/new/").status_code == 200
    assert b"/admin/exports/exportjob/new/" in staff_client.get("/admin/exports/exportjob/").content

    form = {
        "format": "openai-jsonl",
        "since": "",
        "until": "",
        "dimension": "",
        "category": "facts",
        "min_votes": "0",
        "margin": "none",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url, form)
    assert response.status_code == 302
    job = ExportJob.objects.get()
    assert job.status == "done" and job.filters["category"] == "facts" and job.created_by.username == "staff"
    page = staff_client.get(url).content.decode()
    assert f"/staff/exports/{job.pk}/download" in page and "category=facts" in page
    assert 'http-equiv="refresh"' not in page  # nothing running

    running = ExportJob.objects.create(
        campaign=campaign, format="parquet", status="running", rows_total=10, rows_done=4
    )
    page = staff_client.get(url).content.decode()
    assert 'http-equiv="refresh"' in page and "40% (4 of 10)" in page
    assert f"/staff/exports/{running.pk}/download" not in page
    refused = staff_client.post(url, {**form, "format": "leaderboard-json", "min_votes": "3"})
    assert refused.status_code == 200 and b"Leaderboard exports read the stored snapshots" in refused.content
    assert ExportJob.objects.count() == 2


def test_a_finished_job_is_not_run_again_and_a_failure_is_recorded(campaign, export_dir):
    job = finished_job(campaign, "parquet")
    assert job.status == "done" and job.attempt == 1 and job.path.is_file()
    assert job.path.parent == export_dir and not list(export_dir.glob(".*.tmp"))
    assert run_job(job.pk) is None
    assert ExportJob.objects.get(pk=job.pk).attempt == 1

    failed = finished_job(campaign, "leaderboard-csv")  # no snapshot yet
    assert failed.status == "failed" and "No leaderboard" in failed.error and not failed.file_name
    assert run_job(failed.pk) is None
    job.delete()
    assert not job.path.exists()


def test_a_job_whose_worker_went_silent_is_taken_over(campaign):
    stale = timezone.now() - STALE_AFTER - timedelta(seconds=1)
    job = ExportJob.objects.create(
        campaign=campaign, format="battles-jsonl", status="running", attempt=1, heartbeat_at=stale
    )
    fresh = ExportJob.objects.create(
        campaign=campaign, format="battles-jsonl", status="running", attempt=1, heartbeat_at=timezone.now()
    )
    assert run_job(fresh.pk) is None
    done = run_job(job.pk)
    assert done.status == "done" and done.attempt == 2 and done.file_name.endswith("-2.jsonl")


def test_a_broker_outage_marks_the_job_failed_instead_of_breaking_the_request(
    campaign, staff_client, monkeypatch, django_capture_on_commit_callbacks
):
    from arena.exports import tasks

    def unreachable(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.run_export_job, "apply_async", unreachable)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/api/v1/exports", {"campaign": "web", "format": "battles-jsonl"}, content_type="application/json"
        )
    assert response.status_code == 202
    job = ExportJob.objects.get()
    assert job.status == "failed" and "task queue" in job.error


def test_the_management_command_writes_the_same_export(campaign, tmp_path):
    output = tmp_path / "pairs.jsonl"
    out, err = StringIO(), StringIO()
    call_command(
        "export_data",
        "web",
        "--format",
        "trl-jsonl",
        "--output",
        str(output),
        "--min-votes",
        "1",
        stdout=out,
        stderr=err,
    )
    assert "Wrote 2 records from 3 rows" in out.getvalue() and "1 tie, both bad or unscored" in out.getvalue()
    assert "trl-jsonl: 3 of 3 read (100%), 2 written" in err.getvalue()
    job = finished_job(campaign, "trl-jsonl")
    assert output.read_bytes() == job.path.read_bytes()

    call_command(
        "export_data",
        "web",
        "--format",
        "battles-jsonl",
        "--output",
        str(output),
        "--include-flagged",
        "--since",
        "2025-01-01",
        "--quiet",
        stdout=StringIO(),
        stderr=StringIO(),
    )
    assert len(read_jsonl(output)) == 3
    with pytest.raises(CommandError, match="No campaign"):
        call_command("export_data", "nope", "--format", "parquet", stdout=StringIO())
    with pytest.raises(CommandError, match="no dimension"):
        call_command("export_data", "web", "--format", "parquet", "--dimension", "x", stdout=StringIO())
