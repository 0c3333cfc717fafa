"""The embedded default that `make run` uses: SQLite, in-process tasks, the demo campaign."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.stack import ROOT

SCRIPT = r"""
import re, django
django.setup()
from django.test import Client
from arena.models import Vote
from arena.leaderboards.models import LeaderboardSnapshot
client = Client()
for verdict in ("left", "right", "tie"):
    page = client.get("/c/demo/vote/")
    assert page.status_code == 200, page.status_code
    battle = re.search(r'action="/b/([^/]+)/vote"', page.content.decode()).group(1)
    assert client.post(f"/b/{battle}/vote", {"verdict": verdict}).status_code == 302
assert Vote.objects.count() == 3
snapshot = LeaderboardSnapshot.objects.get(campaign__slug="demo", dimension="", category="", method="davidson")
print("votes", snapshot.n_votes)
"""


def test_demo_runs_on_sqlite_with_tasks_in_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "SECURE_"))}
    env.update(
        DEBUG="true",
        ARENA_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="arena.settings",
        ARENA_RECOMPUTE_DEBOUNCE="0",
        ARENA_ADMIN_PASSWORD="pw-for-test",
        ALLOWED_HOSTS="testserver",
    )
    for args in (["migrate", "-v", "0"], ["load_demo"], ["ensure_admin"]):
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "arena.sqlite3").exists()
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "votes 3" in done.stdout
