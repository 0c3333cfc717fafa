"""The hot path's SQL helper: prepared statements on PostgreSQL, Django's exceptions everywhere."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from arena.core import hot_sql
from tests.modes import postgres_only

pytestmark = pytest.mark.django_db


@postgres_only("prepared statements are PostgreSQL's")
def test_hand_out_and_vote_statements_are_prepared_once_per_connection(alice, campaign):
    from tests.arena.services.test_votes import open_battle

    with transaction.atomic():  # one connection for the whole test
        for _ in range(3):
            battle = open_battle(alice, campaign)
            assert alice.post(f"/b/{battle.pk}/vote", {"verdict": "left"}).status_code == 302
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
            prepared = dict(cursor.fetchall())
    statements = " ".join(prepared)
    for table in ("arena_item", "arena_battle", "arena_vote"):
        assert table in statements
    assert max(prepared.values()) >= 3  # planned once, run three times


@postgres_only("plan caching is PostgreSQL's")
def test_no_hot_statement_is_planned_again_on_every_run():
    """A prepared statement whose generic plan PostgreSQL costs above the plans for the actual values
    is planned afresh on every run: more CPU than running it (the candidates' query did, for its
    ``LIMIT $n``). After its first five runs, each statement of the hand-out and the vote must run on
    its cached generic plan."""
    from django.test import Client

    from tests.arena.services.test_votes import open_battle
    from tests.factories import make_campaign

    campaign = make_campaign(models=tuple(f"Model {n}" for n in range(12)), prompts=12)
    with transaction.atomic():  # one connection for the whole test
        with connection.cursor() as cursor:  # the plans of a large campaign: its tables are read by index
            cursor.execute("ANALYZE arena_item")
            cursor.execute("SET LOCAL enable_seqscan = off")
        for _ in range(12):
            voter = Client()
            battle = open_battle(voter, campaign)
            assert voter.post(f"/b/{battle.pk}/vote", {"verdict": "left"}).status_code == 302
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
            plans = {statement: (generic, custom) for statement, generic, custom in cursor.fetchall()}
    assert any("arena_item" in statement and generic + custom >= 12 for statement, (generic, custom) in plans.items())
    replanned = [statement for statement, (_, custom) in plans.items() if custom > 5]
    assert not replanned, replanned


@postgres_only("the kept cursors are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_threads_running_statements_at_once_each_read_their_own_rows():
    """hot_sql keeps one cursor per connection: threads (each on its own connection) never see
    each other's rows."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def run(worker: int) -> list[tuple]:
        try:
            return [hot_sql.fetchone("SELECT %s::int, %s::int", [worker, n]) for n in range(200)]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(4)))
    for worker, rows in enumerate(results):
        assert rows == [(worker, n) for n in range(200)]


@postgres_only("the kept cursors are PostgreSQL's")
def test_a_dropped_connection_takes_its_kept_cursor_along():
    """The cursor kept for hot statements goes with its connection: nothing may hold on to a
    connection the pool has let go (a map keyed by connections did, through its cursors)."""
    import gc
    import weakref

    import psycopg

    db = connection.settings_dict
    raw = psycopg.connect(
        dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"] or 5432, password=db["PASSWORD"] or None
    )
    cursor = hot_sql._cursor(raw)
    assert hot_sql._cursor(raw) is cursor  # kept for the next statement
    dropped = weakref.ref(raw)
    raw.close()
    del raw, cursor
    gc.collect()
    assert dropped() is None


def test_errors_are_djangos_and_leave_the_transaction_usable(campaign):
    from django.utils import timezone

    now = timezone.now()
    with transaction.atomic():
        with pytest.raises(IntegrityError), transaction.atomic():
            sql = "INSERT INTO arena_voter (public_id, ip_hash, excluded, created_at) VALUES (%s, '', false, %s)"
            hot_sql.fetchone(sql + ", (%s, '', false, %s) RETURNING id", ["twin", now, "twin", now])
        assert hot_sql.fetchone("SELECT count(*) FROM arena_campaign WHERE id = %s", [campaign.pk]) == (1,)


@postgres_only("the query plan is PostgreSQL's")
def test_the_candidates_query_probes_the_voters_battles_per_candidate(campaign):
    """Never an anti-join that reads every battle the voter ever had: its cost would grow with each vote."""
    from arena.models import Voter
    from arena.services import battles
    from arena.services.profiles import campaign_profile

    voter = Voter.objects.create()
    profile = campaign_profile(campaign.slug)
    sql, params = battles._fewest_votes_query(profile, voter.pk, *battles.active_pairs_clause(profile))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the tiny test table would be scanned whole
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "SubPlan" in plan and "Anti Join" not in plan, plan
    assert "battle_voter_prompt_idx" in plan, plan  # the probe reads the voter's battles on one prompt
