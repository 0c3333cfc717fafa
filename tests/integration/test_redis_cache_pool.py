"""The Redis cache reuses one connection pool per process, whatever thread a request runs on."""

from __future__ import annotations

import threading

import redis

from arena.cache import SharedPoolRedisCache
from tests.stack import REDIS_URL


def test_requests_on_new_threads_reuse_the_process_pool():
    server = redis.Redis.from_url(REDIS_URL)
    before = len(server.client_list())

    def request():  # what Django does per thread / async context: a fresh cache object
        SharedPoolRedisCache(REDIS_URL, {}).set("arena-test-pool", 1)

    for _ in range(10):
        thread = threading.Thread(target=request)
        thread.start()
        thread.join()
    assert len(server.client_list()) - before <= 1
