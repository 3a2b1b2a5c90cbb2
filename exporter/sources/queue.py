"""Read the broker queues: size, leases and the enqueue time of each head task.

``read_own()`` reads the watched cluster's own queue (the probe path: one
round trip); ``read()`` reads every queue of the site (the scrape path: two
round trips on Redis, two queries on the ORM, whatever the number of queues).

django-q2 routes a task to queue ``q`` (``async_task(..., cluster=q)``, a
cluster started with ``Q_CLUSTER['cluster_name']`` or ``Q_CLUSTER_NAME``):
the Redis broker keeps it in the list ``django_q:{q}:q``, the ORM broker in
``OrmQ`` rows with ``key = q``. A queue that another site (another
``Q_CLUSTER['name']`` or ``SECRET_KEY``) shares the server with is left out:
its head task does not pass our signature check.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from djq_contract import keys
from exporter.djangoenv import QSetup
from exporter.model import QueueReading
from exporter.sources import decode
from exporter.sources.keyspace import KeyspaceDiscovery

log = logging.getLogger("exporter.sources.queue")

#: Queues read per scrape at most (the label cap folds most of them into "other").
MAX_QUEUES = 1000
#: Seconds a queue name stays in the index after its last Stat or enqueue (as
#: rsr_tasks.broker.INDEX_RETENTION, which prunes it).
QUEUE_MEMORY = 3600.0


class QueueSource(Protocol):
    def read_own(self) -> QueueReading: ...

    def read(self) -> tuple[QueueReading, ...]: ...


class _Foreign(Exception):
    """The head task was signed by another site."""


def _enqueued_at(payload, setup: QSetup, fallback: float | None = None) -> float | None:
    if payload is None:
        return None
    try:
        return decode.task_enqueued_at(payload, setup.secret_key, setup.cluster_name)
    except decode.BadSignature:
        raise _Foreign() from None
    except Exception as exc:
        log.debug("undecodable queue head: %s", exc)
        return fallback


class RedisQueueSource:
    """LLEN + LINDEX 0 per queue in one pipelined round trip: O(1) whatever the backlog.

    Queue names: our own, those in the index the workers keep (every queue a
    cluster consumes or a task was enqueued to in the last hour) and those the
    keyspace discovery found (lists ``django_q:*:q``, for workers without the index).
    """

    def __init__(self, client, setup: QSetup,
                 discovery: KeyspaceDiscovery | None = None) -> None:
        self.client = client
        self.setup = setup
        self.discovery = discovery
        self.names_key = keys.queues_key(keys.stat_prefix(setup.cluster_name))

    def read_own(self) -> QueueReading:
        return self._read((self.setup.queue_name,), round_trips=0)[0]

    def read(self) -> tuple[QueueReading, ...]:
        names = [self.setup.queue_name]
        names += [n.decode("utf-8", "replace") for n in self.client.zrangebyscore(
            self.names_key, time.time() - QUEUE_MEMORY, "+inf")]
        if self.discovery is not None:
            names += self.discovery.queue_names()
        names = list(dict.fromkeys(names))
        if len(names) > MAX_QUEUES:
            log.debug("%d queues: reading the first %d", len(names), MAX_QUEUES)
            names = names[:1] + sorted(names[1:])[:MAX_QUEUES - 1]
        return self._read(names, round_trips=1)

    def _read(self, names, round_trips: int) -> tuple[QueueReading, ...]:
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            key = keys.queue_key(name)
            pipe.llen(key)
            pipe.lindex(key, 0)
        replies = pipe.execute(raise_on_error=False)
        out = []
        for i, name in enumerate(names):
            size, head = replies[2 * i], replies[2 * i + 1]
            if isinstance(size, Exception) or isinstance(head, Exception):
                if name == self.setup.queue_name:
                    raise size if isinstance(size, Exception) else head
                continue  # a key of that name that is not a list: not a queue
            try:
                enqueued = _enqueued_at(head, self.setup)
            except _Foreign:
                if name != self.setup.queue_name:
                    continue
                enqueued = None
            out.append(QueueReading(name, int(size), None, enqueued,
                                    round_trips=round_trips + 1))
        return tuple(out)


class OrmQueueSource:
    """OrmQ rows grouped by queue (one query), then the head rows' payloads (one query)."""

    def __init__(self, setup: QSetup) -> None:
        self.setup = setup

    def read_own(self) -> QueueReading:
        return self._read(own_only=True)[0]

    def read(self) -> tuple[QueueReading, ...]:
        return self._read(own_only=False)

    def _read(self, own_only: bool) -> tuple[QueueReading, ...]:
        from django.db.models import Count, Min, Q
        from django.utils import timezone
        from django_q.models import OrmQ

        from exporter.sources.dbconn import read_db

        alias = self.setup.orm_alias or "default"
        own = self.setup.queue_name
        now = timezone.now()
        rows = OrmQ.objects.using(alias)
        if own_only:
            rows = rows.filter(key=own)

        def fetch() -> tuple[list, dict]:
            groups = list(rows.values("key").order_by("key").annotate(
                ready=Count("id", filter=Q(lock__lte=now)),
                leased=Count("id", filter=Q(lock__gt=now)),
                head=Min("id", filter=Q(lock__lte=now)),
                first=Min("id"))[:MAX_QUEUES])
            ids = [g["head"] or g["first"] for g in groups]
            heads = {}
            if ids:
                heads = {i: (payload, lock) for i, payload, lock in OrmQ.objects.using(alias)
                         .filter(id__in=ids).values_list("id", "payload", "lock")}
            return groups, heads

        groups, heads = read_db(fetch)  # dead connections dropped, one reconnect
        trips = 2 if groups else 1
        out, seen_own = [], False
        for g in groups:
            name = g["key"]
            payload, lock = heads.get(g["head"] or g["first"], (None, None))
            try:
                enqueued = _enqueued_at(payload, self.setup, decode.epoch(lock) if lock else None)
            except _Foreign:
                if name != own:
                    continue
                enqueued = None
            seen_own = seen_own or name == own
            out.append(QueueReading(name, int(g["ready"] or 0), int(g["leased"] or 0),
                                    enqueued if g["head"] else None, round_trips=trips))
        if not seen_own:
            out.insert(0, QueueReading(own, 0, 0, None, round_trips=trips))
        return tuple(out)
