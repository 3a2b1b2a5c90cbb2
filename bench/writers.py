"""Synthetic load, written the way the real writers write it.

Each function runs in a child process whose Django settings are one stack's
(``stack.run_child``), writes items ``start`` .. ``end - 1`` and adds to what
is already there, so a curve grows one size at a time.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

#: Stats are kept alive this long (django-q2 writes them with a 3 s expiry and
#: rewrites them every ~0.5 s; a synthetic cluster is not rewritten).
STAT_TTL = 3600


def stats(start: int, end: int) -> None:
    """Clusters: a ``django_q.status.Stat`` each, built from a sentinel-like object as
    the sentinel builds it, signed and pickled by django-q2's SignedPackage and saved
    through the configured broker's ``set_stat`` (IndexedRedisBroker: the key
    ``django_q:{name}:cluster:{id}`` plus its index entry), as ``Stat.save()`` does,
    but with a longer expiry."""
    from types import SimpleNamespace as NS

    from django.utils import timezone
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.signing import SignedPackage
    from django_q.status import Stat

    broker = get_broker()
    empty = NS(qsize=lambda: 0)
    for i in range(start, end):
        pid = 10_000 + 10 * i
        sentinel = NS(parent_pid=pid, pid=pid + 1, cluster_id=uuid.uuid4(), broker=broker,
                      tob=timezone.now(), reincarnations=0, status=lambda: Conf.IDLE,
                      result_queue=empty, task_queue=empty, monitor=NS(pid=pid + 2),
                      pusher=NS(pid=pid + 3), pool=[NS(pid=pid + 4), NS(pid=pid + 5)])
        stat = Stat(sentinel)
        stat.host = f"bench-host-{i}"
        broker.set_stat(stat.key, SignedPackage.dumps(stat, True), STAT_TTL)


def unique(start: int, end: int) -> None:
    """Unique tasks through the public API: each decorated with ``@unique_task`` and
    run once (registry entry, lock, heartbeat record, lock counter)."""
    from rsr_tasks.unique import unique_task

    for i in range(start, end):
        unique_task(f"bench-task-{i}", expiry=60)(lambda: None)()


def funcs(start: int, end: int) -> None:
    """Functions: one execution each, reported through the signal receivers django-q2
    calls (pre_execute and post_execute_in_worker in the worker, post_execute in
    the monitor)."""
    from rsr_tasks import instrumentation as ins

    for i in range(start, end):
        task = {"id": uuid.uuid4().hex, "func": f"bench.funcs.f{i}", "success": True,
                "started": dt.datetime.now(dt.UTC)}
        ins.on_pre_execute("django_q", func=None, task=task)
        time.sleep(0)
        ins.on_post_execute_in_worker("django_q", func=None, task=task)
        ins.on_post_execute("django_q", task=task)


def backlog(start: int, end: int) -> None:
    """Queue backlog: tasks enqueued by ``async_task`` are pushed one by one; a
    million of those take minutes, so the first is enqueued for real and the rest
    are copies of its signed package pushed in batches onto the same list."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.tasks import async_task

    if end <= start:
        return
    broker = get_broker()
    async_task("math.floor", 1.5)
    package = broker.connection.lindex(broker.list_key, -1)
    missing = end - start - 1
    while missing > 0:
        batch = min(missing, 10_000)
        broker.connection.rpush(broker.list_key, *([package] * batch))
        missing -= batch
    assert broker.list_key == f"django_q:{Conf.CLUSTER_NAME}:q", broker.list_key
