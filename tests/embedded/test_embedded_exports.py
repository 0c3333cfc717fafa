"""An export job in the embedded mode: started over the API of `make run`'s server, sent on commit to
the worker thread of the same process (arena.embedded), written to the export folder and downloaded."""

from __future__ import annotations

import json

import httpx

from tests import stack
from tests.integration.test_exports_worker import export_over_the_api, staff_login


def test_the_server_s_worker_thread_writes_an_export_started_over_the_api(embedded_env, load, processes, tmp_path):
    exports = tmp_path / "exports"
    embedded_env.update(ARENA_EXPORT_DIR=str(exports), ARENA_ADMIN_USER="staff", ARENA_ADMIN_PASSWORD="pw-em")
    load(stack.small_campaign_spec("emx", models=3, prompts=4))
    stack.manage(embedded_env, "ensure_admin")
    url = processes.web(embedded_env)
    with httpx.Client(base_url=url, timeout=10) as voter:
        for verdict in ("left", "right", "tie"):
            stack.vote_once(voter, "emx", verdict)

    with httpx.Client(base_url=url, timeout=10) as staff:
        staff_login(staff, "staff", "pw-em")
        job = export_over_the_api(staff, url, "emx", "trl-jsonl", timeout=30)
        assert job["status"] == "done", job["error"]
        download = staff.get(job["download_url"])

    assert download.status_code == 200
    records = [json.loads(line) for line in download.text.splitlines()]
    assert len(records) == 2 == job["rows_written"]  # the tie gives no preference pair
    assert all(r["chosen"][-1]["role"] == "assistant" for r in records)
    assert [p.name for p in exports.iterdir()] == [f"emx-trl-jsonl-{job['id']}-1.jsonl"]
