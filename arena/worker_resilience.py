"""Keep Celery workers alive, and consuming again at once, when Redis restarts.

Two parts: :func:`install`, a guard for kombu's Redis transport (below), and :class:`Consumer`, Celery's
consumer with a short reconnection interval (``CELERY_WORKER_CONSUMER`` in arena/settings.py).

The failure (celery 5.7.0, kombu 5.7.0, redis-py 8.2.0; docs/reliability.md, "A Redis restart under a
busy worker"): Redis goes away while a worker holds an unacknowledged message (acks_late: a task
running in the pool). The consumer's connection-loss handler,
``celery.worker.consumer.Consumer.on_connection_error_after_connected``, then

1. calls ``Connection.collect()``: closing the consumer's channel fails on the dead socket (a
   ``redis.ConnectionError``, swallowed), so the channel stays open with the message still in its
   QoS, and ``collect()`` goes on to detach the transport from its connection
   (``Connection._do_close_transport()`` sets ``transport.client = None``);
2. calls ``Connection.close()`` ("close the broken connection so the old socket is released", added
   by celery PR #10242 for celery/celery#9705, a worker hanging after a connection loss), which
   closes that channel again. This time the channel gets as far as
   ``QoS.restore_unacked_once()`` ("Restoring 1 unacknowledged message(s)"), which asks for a fresh
   Redis client: ``Channel._connparams()`` reads ``self.connection.client.hostname`` on the detached
   transport and raises ``AttributeError("'NoneType' object has no attribute 'hostname'")``.

``close()`` runs under ``kombu.common.ignore_errors``, which ignores connection errors only; the
AttributeError escapes the consumer, ``celery.worker.WorkController.start`` logs "Unrecoverable
error" and the worker process exits. A worker with nothing unacknowledged (nothing to restore) and
beat reconnect normally, which is why only the busy worker died. The same AttributeError also comes
from the late ack of the task that was running during the outage: its message still points at the
detached channel, and ``Message.ack_log_error`` only absorbs connection errors.

No released version fixes it (kombu 5.7.0 and celery 5.7.0 are the latest on PyPI; celery's main
branch has the same collect-then-close sequence), and no upstream report of this combination was
found. Older reports of the same AttributeError, celery/kombu#582 (closing a gossip channel) and
celery/kombu#970 (restoring unacked messages at shutdown), are the same pattern: a Redis channel
used after its connection detached the transport. No setting avoids it: ``ack_emulation=False``
restores through the same client, and ``worker_cancel_long_running_tasks_on_connection_loss`` acts
only after the close.

The guard: a channel whose transport was detached is a channel of a connection that is gone, so any
Redis I/O on it raises :class:`DetachedChannelError`, a ``redis.ConnectionError``, instead of the
AttributeError. kombu and celery already treat connection errors on a dead channel as expected:
the close is ignored and the consumer reconnects, and a failed late ack is logged ("Couldn't ack")
instead of killing the worker. Nothing else changes: the guard only replaces an AttributeError that
kombu would have raised anyway. The unacknowledged message is not lost: it is in Redis's unacked
hash (if Redis kept its data) and kombu requeues it after ``visibility_timeout``; a generation task
that finished in the meantime is then skipped (arena.services.generation.claim).

Remove the guard when kombu's Redis channel survives a detached transport (check with
tests/integration/test_faults.py::test_a_worker_holding_an_unacknowledged_task_survives_a_redis_restart
after removing the ``install()`` call in arena/celery.py: it fails without the guard).

The reconnection interval: Celery's consumer reconnects through kombu's ``Connection.ensure_connection``
with its defaults, 2 s after the first failure, then 4, 6, ... up to 30 s between attempts, and no
setting changes them. After a 20 s outage the next attempt can come up to 10 s after Redis is back,
after a minute's outage up to 30 s. :class:`Consumer` tries every 1-2 s instead, so a worker consumes
again within about 2 s of Redis being back; an attempt costs one refused TCP connection (or at most
``socket_connect_timeout``, CELERY_BROKER_TRANSPORT_OPTIONS).
"""

from __future__ import annotations

import functools

import redis
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.transport import redis as kombu_redis

_MARK = "_arena_detached_transport_guard"


class DetachedChannelError(redis.exceptions.ConnectionError):
    """Redis I/O on a channel whose broker connection was closed (its transport has no client)."""


def install() -> None:
    """Guard ``kombu.transport.redis.Channel`` (and so the Sentinel channel, its subclass). Idempotent."""
    channel_cls = kombu_redis.Channel
    original = channel_cls._connparams
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def _connparams(self, *args, **kwargs):
        if self.connection is None or self.connection.client is None:
            raise DetachedChannelError("this broker channel's connection was closed (Redis restarted or unreachable)")
        return original(self, *args, **kwargs)

    setattr(_connparams, _MARK, True)
    channel_cls._connparams = _connparams


# Seconds between two attempts to reach the broker after the connection was lost: 1, then 2, 2, ...
RECONNECT_INTERVAL_START = 1.0
RECONNECT_INTERVAL_MAX = 2.0


class Consumer(CeleryConsumer):
    """Celery's consumer, reconnecting to the broker every 1-2 s instead of backing off up to 30 s."""

    def ensure_connected(self, conn):
        # Celery calls conn.ensure_connection(errback, max_retries, callback=...) and leaves kombu's
        # intervals at their defaults; these keyword arguments fill them in.
        conn.ensure_connection = functools.partial(
            conn.ensure_connection,
            interval_start=RECONNECT_INTERVAL_START,
            interval_step=RECONNECT_INTERVAL_MAX - RECONNECT_INTERVAL_START,
            interval_max=RECONNECT_INTERVAL_MAX,
        )
        return super().ensure_connected(conn)
