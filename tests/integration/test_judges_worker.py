"""Judges on real Celery workers (Redis broker, PostgreSQL) against a real judge server: every pairing
judged once in both orders, never more than the judge's concurrency limit in flight."""

from __future__ import annotations

import psycopg

from tests import stack
from tests.protocol_server import ProtocolServer


def test_workers_judge_every_pairing_within_the_judges_concurrency_limit(stack_env, pg_url, processes):
    with ProtocolServer() as server:
        model = "judge?prefer=Answer number 0&delay=0.15"
        stack.manage(
            stack_env,
            "shell",
            "-c",
            (
                "from tests.factories import make_campaign\n"
                "from arena.models import ModelEntry\n"
                "from arena.judges.models import Judge\n"
                "c = make_campaign(slug='jw', models=('Alpha', 'Beta', 'Gamma', 'Delta'), prompts=4)\n"
                f"e = ModelEntry.objects.create(name='Referee', backend='openai', backend_settings="
                f"{{'base_url': '{server.base_url}', 'model': '{model}', 'max_retries': 0}})\n"
                "Judge.objects.create(campaign=c, model=e, max_concurrency=3)\n"
            ),
        )
        processes.worker(stack_env, queues="generate_api,default", concurrency=8)

        out = stack.manage(stack_env, "run_judges", "jw", "--wait", "--timeout", "90")

        assert "24 new pairings to judge of 24" in out and "24 done" in out
        assert len(server.requests_for(model)) == 48  # 24 pairings x 2 orders, none twice
        assert 2 <= server.max_in_flight(model) <= 3
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute("SELECT status, consistent, attempts FROM judges_judgeverdict").fetchall()
        assert {r[0] for r in rows} == {"done"} and all(r[1] for r in rows) and {r[2] for r in rows} == {1}
