"""An export job in the distributed mode: started over the API, run by a Celery worker on the
"default" queue against PostgreSQL, followed and downloaded by a staff user."""

from __future__ import annotations

import json

import httpx
import psycopg

from tests import stack


def staff_login(client: httpx.Client, username: str, password: str) -> None:
    client.get("/admin/login/").raise_for_status()
    response = client.post(
        "/admin/login/?next=/admin/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
    )
    assert response.status_code == 302, response.text[:500]


def export_over_the_api(staff: httpx.Client, url: str, campaign: str, fmt: str, timeout: float) -> dict:
    """Start an export as the logged-in staff client, and wait until the job is done or failed."""
    headers = {"X-CSRFToken": staff.cookies["csrftoken"], "Referer": url}
    started = staff.post("/api/v1/exports", json={"campaign": campaign, "format": fmt}, headers=headers)
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]

    def finished():
        job = staff.get(f"/api/v1/exports/{job_id}").json()
        return job["status"] in ("done", "failed") and job

    return stack.wait_until(finished, timeout=timeout, message="a worker to finish the export")


def test_a_worker_writes_the_export_and_staff_download_it(stack_env, pg_url, processes, tmp_path):
    exports = tmp_path / "exports"
    env = {**stack_env, "ARENA_EXPORT_DIR": str(exports), "ARENA_ADMIN_USER": "staff", "ARENA_ADMIN_PASSWORD": "pw-it"}
    spec = tmp_path / "campaign.json"
    spec.write_text(json.dumps(stack.small_campaign_spec("exp", models=3, prompts=4)))
    stack.manage(env, "load_campaign", str(spec))
    stack.manage(env, "ensure_admin")
    url = processes.web(env)
    worker = processes.worker(env, queues="default")
    for _ in range(3):
        with httpx.Client(base_url=url, timeout=10) as voter:
            for verdict in ("left", "right", "tie"):
                stack.vote_once(voter, "exp", verdict)

    with httpx.Client(base_url=url, timeout=10) as anonymous:
        assert anonymous.post("/api/v1/exports", json={"campaign": "exp", "format": "battles-jsonl"}).status_code == 401

    with httpx.Client(base_url=url, timeout=10) as staff:
        staff_login(staff, "staff", "pw-it")
        job = export_over_the_api(staff, url, "exp", "battles-jsonl", timeout=60)
        job_id = job["id"]
        assert job["status"] == "done", job["error"]
        assert (job["rows_total"], job["rows_written"], job["progress"]) == (9, 9, 1.0)
        download = staff.get(job["download_url"])
        assert download.status_code == 200
        assert download.headers["content-disposition"].startswith('attachment; filename="exp-battles-jsonl-')

    records = [json.loads(line) for line in download.text.splitlines()]
    assert len(records) == 9
    assert sorted(r["winner"] for r in records) == ["model_a"] * 3 + ["model_b"] * 3 + ["tie"] * 3
    assert all(r["conversation_a"][-1]["role"] == "assistant" for r in records)
    # The worker wrote it, into the shared export folder, and recorded the job in PostgreSQL.
    assert "arena.exports.tasks.run_export_job" in worker.log()
    assert [p.name for p in exports.iterdir()] == [f"exp-battles-jsonl-{job_id}-1.jsonl"]
    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT status, attempt FROM exports_exportjob WHERE id = %s", (job_id,)).fetchone()
    status, attempt = row
    assert (status, attempt) == ("done", 1)
