"""Read the broker queue: size, leases and the enqueue time of the head task."""

from __future__ import annotations

import logging
from typing import Protocol

from djq_contract import keys
from exporter.djangoenv import QSetup
from exporter.model import QueueReading
from exporter.sources import decode

log = logging.getLogger("exporter.sources.queue")


class QueueSource(Protocol):
    def read(self) -> QueueReading: ...


class RedisQueueSource:
    """LLEN + LINDEX 0 in one pipelined round trip: O(1) whatever the backlog."""

    def __init__(self, client, setup: QSetup) -> None:
        self.client = client
        self.setup = setup
        self.key = keys.queue_key(setup.queue_name)

    def read(self) -> QueueReading:
        pipe = self.client.pipeline(transaction=False)
        pipe.llen(self.key)
        pipe.lindex(self.key, 0)
        size, head = pipe.execute()
        return QueueReading(self.setup.queue_name, int(size), None,
                            self._enqueued_at(head), round_trips=1)

    def _enqueued_at(self, head) -> float | None:
        if head is None:
            return None
        try:
            return decode.task_enqueued_at(head, self.setup.secret_key, self.setup.cluster_name)
        except Exception as exc:
            log.debug("undecodable queue head: %s", exc)
            return None


class OrmQueueSource:
    """Two bounded queries on OrmQ: counts by lease state, then the head row."""

    def __init__(self, setup: QSetup) -> None:
        self.setup = setup

    def read(self) -> QueueReading:
        from django.db.models import Count, Q
        from django.utils import timezone
        from django_q.models import OrmQ

        from exporter.sources.dbconn import read_db

        alias = self.setup.orm_alias or "default"
        now = timezone.now()
        rows = OrmQ.objects.using(alias).filter(key=self.setup.queue_name)

        def fetch() -> tuple[dict, tuple | None]:
            counts = rows.aggregate(ready=Count("id", filter=Q(lock__lte=now)),
                                    leased=Count("id", filter=Q(lock__gt=now)))
            head = None
            if counts["ready"]:
                head = (rows.filter(lock__lte=now).order_by("id")
                        .values_list("payload", "lock").first())
            return counts, head

        counts, head = read_db(fetch)  # dead connections dropped, one reconnect
        return QueueReading(self.setup.queue_name, int(counts["ready"] or 0),
                            int(counts["leased"] or 0), self._enqueued_at(head),
                            round_trips=2 if counts["ready"] else 1)

    def _enqueued_at(self, head) -> float | None:
        if head is None:
            return None
        payload, lock = head
        try:
            return decode.task_enqueued_at(payload, self.setup.secret_key, self.setup.cluster_name)
        except Exception as exc:
            log.debug("undecodable queue head: %s", exc)
            return decode.epoch(lock)
