"""Rate limits: fixed-window counters in the Django cache (Redis in the distributed mode).

``hits(rules)`` counts one event under each rule and says which are still within their limit; it is
the one counter for every limit of the site (votes, new battles, live prompts, live budgets, logins).
A limit on failures (the staff login) reads its count first (``count``), counts only failures
(``hits``) and ``forget``s it on success.

Limits fail OPEN: if the cache cannot be reached, the event is allowed. A vote must never be lost
because Redis is down; abuse is then only caught afterwards (``flag_suspicious_voters``). After a
cache error the counters are skipped for ``BREAKER_SECONDS``, so an outage does not cost every
request a connection timeout.

Counters are keyed by the voter's public id (from the signed cookie, or the user id when logged in)
and by the HMAC of the client IP (never the raw address, as everywhere else). The per-IP limits are
high because many voters may share an address (a university, a company NAT).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest

from arena.core.errors import LimitReached
from arena.services.voters import client_ip, cookie_public_id, cookie_value, hash_ip

log = logging.getLogger(__name__)

BREAKER_SECONDS = 5.0
_cache_down_until = 0.0


class RateLimited(LimitReached):
    """Too many requests in a short time; ``retry_after`` says in how many seconds to try again."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Rule:
    key: str
    limit: int  # events per window; 0 or less: no limit
    window: int = 60  # seconds
    message: str = "Too many requests. Please wait a moment and try again."


def hit(key: str, limit: int, window: int = 60) -> bool:
    """Count one event under ``key``; True while at most ``limit`` happened in the current window."""
    return hits([Rule(key, limit, window)])[0]


def hits(rules: Sequence[Rule]) -> list[bool]:
    """Count one event under each rule (one round trip to Redis); True for each rule still within its limit."""
    global _cache_down_until
    active = [rule for rule in rules if rule.limit > 0]
    if not active or time.monotonic() < _cache_down_until:
        return [True] * len(rules)
    now = time.time()
    keys = [_window_key(rule, now) for rule in active]
    try:
        counts = _increment(keys, [rule.window for rule in active])
    except Exception as error:  # the cache is down: let the request through (fail open)
        _trip_breaker(error)
        return [True] * len(rules)
    by_rule = dict(zip(map(id, active), counts, strict=True))
    return [rule.limit <= 0 or by_rule[id(rule)] <= rule.limit for rule in rules]


def count(rule: Rule) -> int:
    """The events counted under ``rule`` in the current window, without counting one (0 while the
    cache is down)."""
    if time.monotonic() < _cache_down_until:
        return 0
    try:
        return int(cache.get(_window_key(rule, time.time())) or 0)
    except Exception as error:
        _trip_breaker(error)
        return 0


def forget(rule: Rule) -> None:
    """Drop the current window's count of ``rule`` (if the cache is down, it expires by itself)."""
    try:
        cache.delete(_window_key(rule, time.time()))
    except Exception as error:
        _trip_breaker(error)


def seconds_left(rule: Rule) -> int:
    """Seconds until ``rule``'s current window ends: the Retry-After of a refusal."""
    return max(1, int(rule.window - time.time() % rule.window) + 1)


def _window_key(rule: Rule, now: float) -> str:
    return f"rl:{rule.key}:{rule.window}:{int(now // rule.window)}"


def _trip_breaker(error: Exception) -> None:
    global _cache_down_until
    _cache_down_until = time.monotonic() + BREAKER_SECONDS
    log.warning("rate limits skipped for %ss: the cache is unavailable (%s)", BREAKER_SECONDS, type(error).__name__)


def _refusal(rule: Rule) -> RateLimited:
    return RateLimited(rule.message, seconds_left(rule))


def enforce(rules: Sequence[Rule]) -> None:
    """Count the event under every rule; raise RateLimited with the first exceeded rule's message."""
    for rule, allowed in zip(rules, hits(rules), strict=True):
        if not allowed:
            raise _refusal(rule)


# Every counter of a request in one command: INCR each key, and give it its expiry on the first hit.
_INCREMENT_LUA = """
local counts = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ARGV[i]) end
  counts[i] = n
end
return counts
"""


def _increment(keys: list[str], windows: list[int]) -> list[int]:
    backend = caches["default"]
    script = _redis_script(backend)
    if script is not None:
        # Redis: one round trip and one command (EVALSHA) for every counter; the keys are ours, so
        # Django's per-character key validation is skipped.
        return [int(n) for n in script(keys=[backend.make_key(k) for k in keys], args=[w + 1 for w in windows])]
    counts = []
    for key, window in zip(keys, windows, strict=True):
        cache.add(key, 0, timeout=window + 1)
        try:
            counts.append(cache.incr(key))
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window + 1)
            counts.append(1)
    return counts


_script: tuple[tuple, object] | None = None


def _redis_script(backend):
    """The counting script on a redis-py client for the RedisCache's servers (None for other
    backends), kept per process.

    Django builds a new client object on every cache call, which costs more than the round trip,
    and under ASGI even a new backend (and connection pool) per request; this client is made once
    for the backend's settings and reused, with its own connection pool.
    """
    global _script
    if not isinstance(backend, RedisCache):
        return None
    signature = (tuple(backend._servers), repr(sorted(backend._options.items())))
    if _script is None or _script[0] != signature:
        client = backend._cache.get_client(write=True)
        _script = (signature, client.register_script(_INCREMENT_LUA))
    return _script[1]


def reset() -> None:
    """Forget that the cache was down (tests)."""
    global _cache_down_until
    _cache_down_until = 0.0


# --- The site's limits ----------------------------------------------------------------------------


def voter_key(request: HttpRequest) -> str | None:
    """Who is asking, without a database query: the logged-in user, else the signed voter cookie."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"u{user.pk}"
    value = cookie_value(request)
    return f"v{cookie_public_id(value)}" if value else None


def ip_key(request: HttpRequest) -> str:
    """The client address as its HMAC (ARENA_IP_SALT), shortened: what every per-IP counter is keyed on."""
    return hash_ip(client_ip(request))[:32] or "unknown"


def _rules(request: HttpRequest, action: str, per_voter: int, per_ip: int, what: str) -> list[Rule]:
    rules = [
        Rule(
            f"{action}:ip:{ip_key(request)}",
            per_ip,
            message=f"Too many {what} from your network in the last minute. Please wait a minute and try again.",
        )
    ]
    voter = voter_key(request)
    if voter is not None:
        rules.append(
            Rule(
                f"{action}:voter:{voter}",
                per_voter,
                message=f"You have reached the limit of {per_voter} {what} a minute. "
                "Please take a short break and try again.",
            )
        )
    return rules


def _vote_rules(request: HttpRequest) -> list[Rule]:
    return _rules(request, "vote", settings.ARENA_VOTE_RATE_PER_MINUTE, settings.ARENA_IP_VOTE_RATE_PER_MINUTE, "votes")


def _battle_rules(request: HttpRequest) -> list[Rule]:
    return _rules(
        request,
        "battle",
        settings.ARENA_BATTLE_RATE_PER_MINUTE,
        settings.ARENA_IP_BATTLE_RATE_PER_MINUTE,
        "battle requests",
    )


def check_vote(request: HttpRequest) -> None:
    """Per-voter and per-IP limits on votes (ARENA_VOTE_RATE_PER_MINUTE, ARENA_IP_VOTE_RATE_PER_MINUTE)."""
    enforce(_vote_rules(request))


def check_battle(request: HttpRequest) -> None:
    """Per-voter and per-IP limits on battle requests (ARENA_BATTLE_RATE_PER_MINUTE, ..._IP_...)."""
    enforce(_battle_rules(request))


def check_vote_and_battle(request: HttpRequest) -> RateLimited | None:
    """A vote whose reply carries the next battle: ``check_vote`` and ``check_battle`` counted in one
    round trip. Raises for the vote's limits; returns the battle limits' refusal (None within them),
    which holds back only the next battle, not the vote."""
    vote_rules, battle_rules = _vote_rules(request), _battle_rules(request)
    rules = [*vote_rules, *battle_rules]
    refused = [rule for rule, ok in zip(rules, hits(rules), strict=True) if not ok]
    if refused and refused[0] in vote_rules:
        raise _refusal(refused[0])
    return _refusal(refused[0]) if refused else None
