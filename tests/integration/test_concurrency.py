"""Double submits, replayed POSTs, two tabs: however many votes race for one battle, one counts.

Two ways in, both on the real PostgreSQL:
- over HTTP: two uvicorn processes (two processes, so the requests really run at the same moment;
  one process would run its sync views one after another), many threads released by one barrier
  firing the same vote POST with the same voter cookie, alternating between the two servers;
- directly: threads calling ``record_vote`` at once, each on its own database connection.
Exactly one wins (200, or 302 for the form post), every other gets 409, and one Vote row exists.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import httpx
import psycopg
import pytest
from django.db import connection

from tests import stack

RACERS = 12


def _race(fire, n: int) -> list:
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait(timeout=30)
        return fire(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def _post_vote(tabs, urls, cookies, battle_id, i) -> int:
    headers = {"X-CSRFToken": cookies["csrftoken"], "Referer": urls[i % 2]}
    if i % 2:  # half as the page's form post, half as JSON (the page's script)
        headers["Accept"] = "application/json"
    verdict = ("left", "right", "tie")[i % 3]
    return tabs[i].post(f"/b/{battle_id}/vote", data={"verdict": verdict}, headers=headers).status_code


def test_simultaneous_vote_posts_through_two_servers_store_one_vote(stack_env, pg_url, processes, tmp_path):
    spec = tmp_path / "campaign.json"
    spec.write_text(json.dumps(stack.small_campaign_spec("race", models=3, prompts=4)))
    stack.manage(stack_env, "load_campaign", str(spec))
    urls = [processes.web(stack_env, name="web-1"), processes.web(stack_env, name="web-2")]

    for round_ in range(3):  # three battles, three races
        with httpx.Client(base_url=urls[0], timeout=10) as first_tab:
            page = first_tab.get("/c/race/vote/")
            battle_id = stack.BATTLE_ACTION.search(page.text).group(1)
            cookies = dict(first_tab.cookies)
        tabs = [httpx.Client(base_url=urls[i % 2], timeout=30, cookies=cookies) for i in range(RACERS)]
        try:
            for tab in tabs:  # open the connections first, so the POSTs leave together
                tab.get("/healthz")

            statuses = _race(partial(_post_vote, tabs, urls, cookies, battle_id), RACERS)
        finally:
            for tab in tabs:
                tab.close()
        winners = [s for s in statuses if s in (200, 302)]
        assert len(winners) == 1, (round_, statuses)
        assert sorted(statuses).count(409) == RACERS - 1, statuses

        with psycopg.connect(pg_url) as conn:
            votes = conn.execute("SELECT count(*) FROM arena_vote WHERE battle_id = %s", [battle_id]).fetchone()[0]
            status = conn.execute("SELECT status FROM arena_battle WHERE id = %s", [battle_id]).fetchone()[0]
            item_votes = conn.execute(
                "SELECT i.vote_count FROM arena_item i JOIN arena_battle b ON b.item_id = i.id WHERE b.id = %s",
                [battle_id],
            ).fetchone()[0]
        assert (votes, status, item_votes) == (1, "voted", 1)


@pytest.mark.django_db(transaction=True)
def test_simultaneous_record_vote_calls_store_one_vote():
    if connection.vendor != "postgresql":
        pytest.skip("this race is about PostgreSQL's row locking; run with DATABASE_URL=postgres://...")
    from arena.core.errors import Conflict
    from arena.models import Vote, Voter
    from arena.services.battles import open_battle
    from arena.services.profiles import campaign_profile
    from arena.services.votes import record_vote
    from tests.factories import make_campaign

    campaign = make_campaign(slug="direct", models=("A", "B", "C"), prompts=3)
    voter = Voter.objects.create()
    battle_id = open_battle(campaign_profile(campaign.slug), voter.pk).id

    def fire(i):
        try:
            return record_vote(battle_id, voter, ("left", "right", "tie")[i % 3]).vote.verdict
        except Conflict:
            return "conflict"
        finally:
            connection.close()  # each thread has its own connection; give it back to the pool

    outcomes = _race(fire, RACERS)
    assert sum(o != "conflict" for o in outcomes) == 1, outcomes
    assert Vote.objects.filter(battle_id=battle_id).count() == 1
    assert Vote.objects.get(battle_id=battle_id).verdict == next(o for o in outcomes if o != "conflict")

    # Many voters voting at the same moment on their own battles: every vote counts, none deadlocks.
    voters = [Voter.objects.create() for _ in range(RACERS)]
    own = [open_battle(campaign_profile(campaign.slug), v.pk).id for v in voters]

    def fire_own(i):
        try:
            return record_vote(own[i], voters[i], "left").vote.battle_id
        finally:
            connection.close()

    assert sorted(_race(fire_own, RACERS)) == sorted(own)
    assert Vote.objects.filter(battle_id__in=own).count() == RACERS
    from arena.models import Item

    assert sum(Item.objects.filter(campaign=campaign).values_list("vote_count", flat=True)) == RACERS + 1
