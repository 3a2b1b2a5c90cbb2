"""Connection slots: one cap, and the order in which connections give way at it.

Kept apart from the server so the rules (who is evicted first, when a
connection is old enough to go) read in one place.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

#: An idle connection younger than this is not evicted: its request bytes may simply
#: not have been read yet (a burst of accepts can delay the first read).
EVICT_MIN_IDLE = 0.05
#: A connection blocked writing for this long may be evicted at the cap (a client
#: reading its answer at loopback speed is never blocked that long).
EVICT_MIN_BLOCKED = 1.0


class Connection(Protocol):
    """What a slot holds: a connection that has sent nothing yet, or a stream."""

    def close(self) -> None: ...

    def abort(self) -> None: ...


class Slots:
    """Connections sharing one cap, with the order in which they may be evicted."""

    __slots__ = ("cap", "conns", "idle", "writing")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.conns: dict[int, Connection] = {}
        #: Waiting for a request (or its TLS handshake), oldest first: id -> since.
        self.idle: OrderedDict[int, float] = OrderedDict()
        #: Blocked writing an answer the client does not read, oldest first.
        self.writing: OrderedDict[int, float] = OrderedDict()

    def full(self) -> bool:
        return len(self.conns) >= self.cap

    def evict(self, now: float, min_idle: float = EVICT_MIN_IDLE) -> bool:
        """Close the connection idle longest (if idle ``min_idle`` s or more), else the one
        blocked writing longest (if blocked EVICT_MIN_BLOCKED s or more)."""
        for waiting, least, abort in ((self.idle, min_idle, False),
                                      (self.writing, EVICT_MIN_BLOCKED, True)):
            if waiting:
                victim, since = next(iter(waiting.items()))
                if now - since >= least:
                    del waiting[victim]
                    conn = self.conns.pop(victim)
                    conn.abort() if abort else conn.close()
                    return True
        return False

    def expire(self, now: float, deadline: float) -> None:
        """Close the connections idle for ``deadline`` s or more, oldest first."""
        while self.idle:
            conn_id, since = next(iter(self.idle.items()))
            if now - since < deadline:
                return
            del self.idle[conn_id]
            conn = self.conns.get(conn_id)
            if conn is not None:
                conn.close()

    def forget(self, conn_id: int) -> None:
        self.idle.pop(conn_id, None)
        self.writing.pop(conn_id, None)
        self.conns.pop(conn_id, None)
