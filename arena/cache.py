"""Django's Redis cache with one connection pool per process.

Under ASGI every request may get its own cache object (Django keeps caches per thread and async
context), and Django's client builds its connection pool per object: each request then opened a new
Redis connection. This client keeps its pools in a module-level dict instead, so a process reuses
its connections (redis-py pools are thread-safe and reset themselves after a fork).
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_POOLS: dict[tuple[str, ...], dict[int, Any]] = {}


class SharedPoolRedisCacheClient(RedisCacheClient):
    def __init__(self, servers: list[str], **options: Any) -> None:
        super().__init__(servers, **options)
        self._pools = _POOLS.setdefault(tuple(servers), {})


class SharedPoolRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient
