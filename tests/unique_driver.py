"""Drive @unique_task from a separate OS process (tests only).

python -m tests.unique_driver MODE --name N [options]; prints one JSON line.
Modes:
  contend  run --attempts times (or, with --duration, every --interval s for that
           long); each run records itself in a Redis overlap detector
  hold     one run that marks --ready-key in Redis, then works --seconds, watching
           lock_held() every 10 ms
  poll     attempt every --interval s until one run acquires; print when
The detector and ready key live in $DETECTOR_REDIS_URL (default $REDIS_URL), so
runs on the database-cache backend can use them too. Times printed are this
host's time.time() (all processes of a test share the host and its clock).
Waits use Event.wait, not time.sleep: under libfaketime 0.9.10 with real monotonic
time (the clock-skew test) time.sleep fails with EINVAL (its clock_nanosleep hook).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time

sleep = threading.Event().wait  # see the module docstring


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["contend", "hold", "poll"])
    p.add_argument("--name", required=True)
    p.add_argument("--attempts", type=int, default=1)
    p.add_argument("--duration", type=float, default=0.0)
    p.add_argument("--expiry", type=float, default=5.0)
    p.add_argument("--beat", type=float, default=None)
    p.add_argument("--seconds", type=float, default=0.0)
    p.add_argument("--interval", type=float, default=0.02)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--ready-key", default="")
    p.add_argument("--detector", default="")
    a = p.parse_args()

    import django

    django.setup()
    import redis

    from rsr_tasks.unique import LockLost, Skipped, lock_held, unique_task

    r = redis.Redis.from_url(os.environ.get("DETECTOR_REDIS_URL") or os.environ["REDIS_URL"])
    out = {"acquired": 0, "contended": 0, "lost": 0, "errors": 0, "results": [],
           "attempts_at": [], "started_at": None, "held_false_at": None}

    def work():
        out["started_at"] = time.time()
        if a.detector:
            if r.incr(f"{a.detector}:holders") > 1:
                r.incr(f"{a.detector}:overlaps")
            sleep(random.uniform(0, 0.020))
            r.decr(f"{a.detector}:holders")
        if a.ready_key:
            r.set(a.ready_key, str(os.getpid()))
        deadline = time.monotonic() + a.seconds
        while time.monotonic() < deadline:
            if out["held_false_at"] is None and not lock_held():
                out["held_false_at"] = time.time()
            sleep(min(0.01, max(0.0, deadline - time.monotonic())))
        return "done"

    task = unique_task(a.name, expiry=a.expiry, beat=a.beat)(work)
    if a.mode == "poll":
        deadline = time.monotonic() + a.timeout
        while time.monotonic() < deadline:
            result = task()
            if not isinstance(result, Skipped):
                out["acquired_at"] = out["started_at"]
                out["result"] = repr(result)
                break
            sleep(a.interval)
        print(json.dumps(out))
        return
    end = time.monotonic() + a.duration
    n = 0
    while (n < a.attempts) if not a.duration else (time.monotonic() < end):
        n += 1
        at = time.time()
        result = task()
        if isinstance(result, Skipped):
            out["contended" if result.reason == "contended" else "errors"] += 1
        elif isinstance(result, LockLost):
            out["acquired"] += 1
            out["lost"] += 1
        else:
            out["acquired"] += 1
        out["attempts_at"].append(at)
        out["results"].append(repr(result))
        if a.mode == "contend":
            sleep(a.interval if a.duration else random.uniform(0, 0.003))
    if a.mode == "contend":
        out["results"] = sorted(set(out["results"]))[:5]
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
