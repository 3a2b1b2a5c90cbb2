"""Is the local cluster's sentinel process alive? Judged only where we can see it.

A SIGKILLed sentinel leaves orphaned workers and no Stopping Stat, so liveness
looks at the process itself. The exporter may run where the cluster's
processes are invisible (its own container without a shared PID namespace):
there every pid reads as gone, and failing liveness would restart a healthy
pod forever. So a pid counts as dead only after it was seen alive here.
"""

from __future__ import annotations

import os
import threading


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists in this PID namespace and is not a zombie."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class SentinelWatch:
    """Remembers the last sentinel pid seen alive; thread-safe."""

    def __init__(self) -> None:
        self._seen_alive: int | None = None
        self._lock = threading.Lock()

    def judge(self, pid: int) -> bool | None:
        """True: alive. False: seen alive here before, now gone. None: never seen alive
        from this process (another PID namespace, or already dead): no basis to judge."""
        alive = pid_alive(pid)
        with self._lock:
            if alive:
                self._seen_alive = pid
                return True
            return False if pid == self._seen_alive else None
