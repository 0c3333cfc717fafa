"""`make run`'s server judges on its in-process worker: the API's run request returns at once while a
slow judge works, and every pairing is done within seconds."""

from __future__ import annotations

import re
import time

import httpx

from tests import stack
from tests.protocol_server import ProtocolServer


def staff_session(client: httpx.Client) -> str:
    """Log in through the admin's form; returns the CSRF token for the API's POSTs."""
    page = client.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[1]
    client.post(
        "/admin/login/?next=/admin/",
        data={"username": "boss", "password": "pw-boss-1234", "csrfmiddlewaretoken": token},
        headers={"Referer": f"{client.base_url}/admin/login/"},
    )
    return client.cookies["csrftoken"]


def test_the_embedded_worker_judges_while_the_run_request_returns_at_once(embedded_env, load, processes):
    load(stack.small_campaign_spec("ej", models=3, prompts=2))  # 6 pairings
    with ProtocolServer() as server:
        stack.manage(
            embedded_env,
            "shell",
            "-c",
            (
                "from django.contrib.auth.models import User\n"
                "from arena.models import Campaign, ModelEntry\n"
                "from arena.judges.models import Judge\n"
                "User.objects.create_superuser('boss', 'b@example.com', 'pw-boss-1234')\n"
                f"e = ModelEntry.objects.create(name='Slow judge', backend='openai', backend_settings="
                f"{{'base_url': '{server.base_url}', 'model': 'j?prefer=Answer 0&delay=0.5', 'max_retries': 0}})\n"
                "Judge.objects.create(campaign=Campaign.objects.get(slug='ej'), model=e)\n"
            ),
        )
        url = processes.web(embedded_env)
        with httpx.Client(base_url=url, timeout=10) as client:
            csrf = staff_session(client)
            started = time.monotonic()
            run = client.post("/api/v1/judges/run", json={"campaign": "ej"}, headers={"X-CSRFToken": csrf})
            took = time.monotonic() - started
            assert run.status_code == 202, run.text

            def done() -> bool:
                return client.get("/api/v1/judges/ej/progress").json()[0]["counts"]["done"] == 6

            stack.wait_until(done, timeout=30, message="6 judged pairings")
    assert took < 1.0, f"the run request waited for the judge ({took:.2f} s)"
    assert len(server.requests) == 12
