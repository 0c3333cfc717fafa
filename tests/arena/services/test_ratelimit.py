"""Abuse: rate limits on votes and battles (failing open), staff login throttling, vote stuffing."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from arena.models import Battle, Campaign, Vote, Voter
from arena.services import ratelimit
from arena.services.abuse import Thresholds, longest_streak, suspicious_voters
from arena.services.battles import open_battle
from arena.services.profiles import campaign_profile
from arena.services.votes import record_vote
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db

# A Redis address nothing listens on: every cache call fails at once (connection refused).
DEAD_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()
    ratelimit.reset()
    yield
    ratelimit.reset()


def _battle_id(client: Client, slug: str) -> str:
    return client.post(f"/api/v1/campaigns/{slug}/battles").json()["id"]


# --- the helper -----------------------------------------------------------------------------------


def test_hit_allows_up_to_the_limit_then_refuses():
    assert [ratelimit.hit("k", 3, 60) for _ in range(5)] == [True, True, True, False, False]
    assert ratelimit.hit("other", 3, 60)  # keys are independent
    assert all(ratelimit.hit("unlimited", 0, 60) for _ in range(10))


def test_hit_fails_open_and_quickly_when_the_cache_is_down(settings):
    settings.CACHES = DEAD_REDIS
    started = time.monotonic()
    assert all(ratelimit.hit("k", 1, 60) for _ in range(20))
    assert time.monotonic() - started < 2.0
    # After the first failure the cache is not even asked for a while (no timeout per request).
    assert ratelimit._cache_down_until > time.monotonic()


def test_hit_counts_in_redis_with_one_round_trip(settings):
    from tests.stack import REDIS_URL

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"rl-test-{time.time_ns()}",
        }
    }
    try:
        cache.get("probe")
    except Exception:
        pytest.skip("no Redis at " + REDIS_URL)
    assert [ratelimit.hit("k", 2, 60) for _ in range(3)] == [True, True, False]
    rules = [ratelimit.Rule("a", 1), ratelimit.Rule("b", 5), ratelimit.Rule("c", 0)]
    assert ratelimit.hits(rules) == [True, True, True]
    assert ratelimit.hits(rules) == [False, True, True]
    # Every counter expires with its window (set on the first hit, in the same command).
    client = cache._cache.get_client(write=True)
    keys = client.keys(f"{settings.CACHES['default']['KEY_PREFIX']}*")
    assert len(keys) == 3 and all(0 < client.ttl(key) <= 61 for key in keys)


# --- votes and battles ----------------------------------------------------------------------------


def test_a_voter_voting_too_fast_gets_a_clear_429_and_the_vote_is_not_stored(alice, settings):
    settings.ARENA_VOTE_RATE_PER_MINUTE = 2
    make_campaign(slug="fast", models=("A", "B", "C"), prompts=3)
    for _ in range(2):
        assert alice.post(f"/b/{_battle_id(alice, 'fast')}/vote", {"verdict": "left"}).status_code == 302
    battle_id = _battle_id(alice, "fast")
    refused = alice.post(f"/b/{battle_id}/vote", {"verdict": "left"})
    assert refused.status_code == 429
    assert b"limit of 2 votes a minute" in refused.content
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    assert not Vote.objects.filter(battle_id=battle_id).exists()
    as_json = alice.post(f"/b/{battle_id}/vote", {"verdict": "left"}, HTTP_ACCEPT="application/json")
    assert as_json.status_code == 429 and as_json.json()["error"] == "rate_limited"
    api = alice.post(f"/api/v1/battles/{battle_id}/vote", {"verdict": "left"}, content_type="application/json")
    assert api.status_code == 429 and "votes a minute" in api.json()["message"] and api.headers["Retry-After"]


def test_many_voters_from_one_address_are_limited_per_ip_before_a_voter_is_created(db, settings):
    settings.ARENA_IP_BATTLE_RATE_PER_MINUTE = 3
    make_campaign(slug="nat")
    for _ in range(3):
        assert Client().get("/c/nat/vote/").status_code == 200
    voters = Voter.objects.count()
    refused = Client().get("/c/nat/vote/")
    assert refused.status_code == 429 and b"from your network" in refused.content
    assert Voter.objects.count() == voters  # a cookie-less flood does not fill the voter table
    other_address = Client(REMOTE_ADDR="10.1.2.3").get("/c/nat/vote/")
    assert other_address.status_code == 200
    api = Client().post("/api/v1/campaigns/nat/battles")
    assert api.status_code == 429 and api.json()["error"] == "rate_limited"


def test_battle_requests_are_limited_per_voter(alice, settings):
    settings.ARENA_BATTLE_RATE_PER_MINUTE = 2
    make_campaign(slug="reload")
    alice.get("/c/reload/vote/")  # the first visit gets the voter cookie; from then on each load counts
    assert [alice.get("/c/reload/vote/").status_code for _ in range(3)] == [200, 200, 429]


def test_votes_are_accepted_when_the_cache_is_down(alice, settings):
    """Fail open: a Redis outage must never cost a vote, even with tiny limits."""
    make_campaign(slug="down", models=("A", "B", "C"), prompts=4)  # one blind battle per prompt
    settings.ARENA_VOTE_RATE_PER_MINUTE = settings.ARENA_BATTLE_RATE_PER_MINUTE = 1
    settings.ARENA_IP_VOTE_RATE_PER_MINUTE = settings.ARENA_IP_BATTLE_RATE_PER_MINUTE = 1
    settings.CACHES = DEAD_REDIS
    started = time.monotonic()
    for _ in range(4):
        battle_id = _battle_id(alice, "down")
        assert alice.post(f"/b/{battle_id}/vote", {"verdict": "tie"}).status_code == 302
    assert Vote.objects.count() == 4
    assert time.monotonic() - started < 5


# --- staff login ----------------------------------------------------------------------------------


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_user("boss", password="correct horse", is_staff=True, is_superuser=True)


def _login(client: Client, password: str, username: str = "boss"):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def test_five_failed_logins_lock_the_username_from_that_address(admin_user, settings, monkeypatch):
    settings.ARENA_LOGIN_MAX_FAILURES = 5
    settings.ARENA_LOGIN_LOCKOUT_SECONDS = 900
    # 100 s into a 900 s window of the failure counter: the lock ends 800 s later (and a second).
    now = 1_000_000 * 900 + 100.5
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: now, monotonic=time.monotonic))
    attacker = Client()
    for _ in range(5):
        assert _login(attacker, "guess").status_code == 200  # the form again, with "wrong password"
    locked = _login(attacker, "correct horse")
    assert locked.status_code == 429
    assert "Too many failed login attempts" in locked.content.decode()
    assert locked.headers["Retry-After"] == "800"
    assert "_auth_user_id" not in attacker.session
    # The same username in other case is the same account.
    assert _login(attacker, "correct horse", username="BOSS ").status_code == 429
    # The real admin, elsewhere, is not locked out.
    assert _login(Client(REMOTE_ADDR="192.0.2.7"), "correct horse").status_code == 302


def test_a_successful_login_clears_the_failures(admin_user, settings):
    settings.ARENA_LOGIN_MAX_FAILURES = 3
    client = Client()
    for _ in range(2):
        _login(client, "guess")
    assert _login(client, "correct horse").status_code == 302
    client.logout()
    for _ in range(2):
        _login(client, "guess")
    assert _login(client, "correct horse").status_code == 302


def test_the_login_works_without_a_throttle_when_the_cache_is_down(admin_user, settings):
    settings.CACHES = DEAD_REDIS
    assert _login(Client(), "guess").status_code == 200
    assert _login(Client(), "correct horse").status_code == 302


# --- vote stuffing ------------------------------------------------------------------------------


def _vote_as(voter: Voter, campaign: Campaign, verdict: str, when, duration_ms: int) -> None:
    battle = open_battle(campaign_profile(campaign.slug), voter.pk)
    record_vote(battle.id, voter, verdict, duration_ms=duration_ms)
    Vote.objects.filter(battle_id=battle.id).update(created_at=when)


@pytest.fixture
def stuffed_campaign(db):
    """Ten ordinary voters (5 mixed votes each, ~20 s apart) and one bot (60 fast "left" votes)."""
    # 300 items; a voter can judge two disjoint pairs of a prompt blind, so the bot needs 30 prompts.
    campaign = make_campaign(slug="stuffed", models=("M1", "M2", "M3", "M4", "M5"), prompts=30)
    start = timezone.now() - timedelta(hours=2)
    verdicts = ["left", "right", "tie", "right", "left"]
    for v in range(10):
        voter = Voter.objects.create()
        for k in range(5):
            _vote_as(voter, campaign, verdicts[(v + k) % 5], start + timedelta(seconds=20 * k + v), 9000 + 100 * k)
    bot = Voter.objects.create()
    for k in range(60):
        _vote_as(bot, campaign, "left", start + timedelta(seconds=k * 0.8), 400)
    return campaign, bot


def test_the_streak_of_a_verdict_sequence():
    assert longest_streak(["left", "left", "right", "right", "right", "tie"]) == (3, "right")
    assert longest_streak([]) == (0, "")


def test_the_bot_is_flagged_for_volume_streak_and_speed_and_nobody_else(stuffed_campaign):
    campaign, bot = stuffed_campaign
    flags = suspicious_voters(campaign)
    assert [flag.voter_id for flag in flags] == [bot.pk]
    reasons = " | ".join(flags[0].reasons)
    assert "volume: 60 votes" in reasons
    assert "streak: 60 consecutive 'left'" in reasons
    assert "median reported time per vote 0.4 s" in reasons and "between consecutive votes" in reasons
    # Each rule on its own.
    assert suspicious_voters(campaign, Thresholds(volume_factor=1000, streak=0, min_seconds=0)) == []
    only_streak = suspicious_voters(campaign, Thresholds(volume_factor=1000, min_seconds=0))
    assert [r.split(":")[0] for r in only_streak[0].reasons] == ["streak"]


def test_the_command_lists_then_excludes_and_ratings_leave_them_out(stuffed_campaign, capsys):
    campaign, bot = stuffed_campaign
    call_command("flag_suspicious_voters", "stuffed")
    out = capsys.readouterr().out
    assert bot.public_id in out and "streak: 60" in out and "--exclude" in out
    assert not Voter.objects.get(pk=bot.pk).excluded

    call_command("flag_suspicious_voters", "stuffed", "--exclude")
    assert Voter.objects.get(pk=bot.pk).excluded
    assert Voter.objects.filter(excluded=True).count() == 1
    call_command("rebuild_ratings", "stuffed")
    from arena.leaderboards.models import LeaderboardSnapshot

    board = LeaderboardSnapshot.objects.get(campaign=campaign, dimension="", category="", method="davidson")
    assert board.n_votes == 50  # the bot's 60 votes are left out
    assert Battle.objects.filter(voter=bot).count() == 60  # ... but kept as evidence


def test_the_command_says_when_nobody_is_suspicious(campaign, capsys):
    call_command("flag_suspicious_voters", campaign.slug)
    assert "no suspicious voter" in capsys.readouterr().out
