"""Ranking tasks on PostgreSQL: milliseconds per hand-out and per submission.

    .venv/bin/python bench/rankings.py                          # 8 models, N = 4, 1,000 and 10,000 prompts
    .venv/bin/python bench/rankings.py --prompts 2000 --size 8

A fresh PostgreSQL database (tests/stack.py) gets a ranking campaign of --models models and
--prompts prompts with every answer ready. Each of --tasks new voters asks for a task (timed: the
least-ranked eligible prompt, a random N of its answers in a random order) and submits a random
order (timed: validation, the ranking row, N*(N-1)/2 battles and votes in one transaction), then a
page reload of an open task is timed too.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def seed(n_models: int, n_prompts: int, size: int) -> None:
    """The campaign, written in bulk (the import path renders Markdown per answer: minutes at 80,000)."""
    from arena.models import Campaign, ModelEntry, Prompt, Response
    from arena.rendering import render_markdown
    from arena.services.items import create_items

    campaign = Campaign.objects.create(slug="bench", title="Bench", status="active", task="ranking", ranking_size=size)
    models = ModelEntry.objects.bulk_create([ModelEntry(name=f"m{i:02d}") for i in range(n_models)])
    campaign.contenders.set(models)
    prompts = Prompt.objects.bulk_create(
        [
            Prompt(campaign=campaign, external_id=f"p{p}", messages=[{"role": "user", "content": f"Q{p}"}])
            for p in range(n_prompts)
        ],
        batch_size=5000,
    )
    html = render_markdown("An answer of a few words.")
    Response.objects.bulk_create(
        [
            Response(prompt=p, model=m, content="An answer of a few words.", html=html, status="done")
            for p in prompts
            for m in models
        ],
        batch_size=5000,
    )
    create_items(campaign, [p.pk for p in prompts])


def run(n_models: int, n_prompts: int, size: int, n_tasks: int) -> None:
    from django.db import connection

    from arena.models import Voter
    from arena.services import rankings
    from arena.services.profiles import campaign_profile, forget_profiles

    seed(n_models, n_prompts, size)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    forget_profiles()
    profile = campaign_profile("bench")
    voters = Voter.objects.bulk_create([Voter() for _ in range(n_tasks + 1)])
    rng = random.Random(0)
    labels = list(rankings.LABELS[:size])
    warm_up = voters.pop()
    rankings.submit_ranking(rankings.open_ranking(profile, warm_up).id, warm_up, labels)
    handout = submit = reload = 0.0
    for voter in voters:
        start = time.perf_counter()
        view = rankings.open_ranking(profile, voter)
        handout += time.perf_counter() - start
        start = time.perf_counter()
        rankings.open_ranking(profile, voter)
        reload += time.perf_counter() - start
        order = rng.sample(labels, size)
        start = time.perf_counter()
        rankings.submit_ranking(view.id, voter, order, duration_ms=30_000)
        submit += time.perf_counter() - start
    pairs = size * (size - 1) // 2
    print(
        f"{n_models} models, {n_prompts:>6,} prompts, N = {size} ({pairs} pairs): "
        f"hand-out {handout / n_tasks * 1000:6.2f} ms, reload {reload / n_tasks * 1000:5.2f} ms, "
        f"submit {submit / n_tasks * 1000:6.2f} ms  (mean of {n_tasks})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--prompts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--size", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=200)
    args = parser.parse_args()
    if len(args.prompts) > 1:  # one process per database: Django keeps its settings for the process
        for n_prompts in args.prompts:
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--models",
                    str(args.models),
                    "--prompts",
                    str(n_prompts),
                    "--size",
                    str(args.size),
                    "--tasks",
                    str(args.tasks),
                ],
                check=True,
            )
        return
    from tests import stack

    with tempfile.TemporaryDirectory() as tmpdir, stack.postgres_database() as pg_url:
        # The recompute a submission asks for runs in-process here: once (debounced), in the warm-up.
        env = stack.base_env(
            pg_url, redis_url=None, ARENA_VAR_DIR=tmpdir, LOG_LEVEL="ERROR", ARENA_RECOMPUTE_DEBOUNCE="3600"
        )
        stack.manage(env, "migrate", "--noinput", "-v", "0")
        os.environ.update(env)
        import django

        django.setup()
        from django.db import connection

        run(args.models, args.prompts[0], args.size, args.tasks)
        connection.close()


if __name__ == "__main__":
    main()
