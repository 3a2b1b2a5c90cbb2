"""Drive @unique_task from a separate OS process (tests only).

python -m tests.unique_driver MODE --name N [options]; prints one JSON line.
Modes:
  contend  run --attempts times; each run records itself in a Redis overlap detector
  hold     one run that marks --ready-key in Redis, then works --seconds
  poll     attempt every --interval s until one run acquires; print when
--clock-skew S shifts this process's time.time() by S seconds: a stand-in for a
host whose wall clock is wrong (the machine's real clock cannot be changed per
process on a shared test machine).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["contend", "hold", "poll"])
    p.add_argument("--name", required=True)
    p.add_argument("--attempts", type=int, default=1)
    p.add_argument("--expiry", type=float, default=5.0)
    p.add_argument("--beat", type=float, default=None)
    p.add_argument("--seconds", type=float, default=0.0)
    p.add_argument("--interval", type=float, default=0.02)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--ready-key", default="")
    p.add_argument("--detector", default="")
    p.add_argument("--clock-skew", type=float, default=0.0)
    a = p.parse_args()
    if a.clock_skew:
        real = time.time
        time.time = lambda: real() + a.clock_skew  # see module docstring

    import django

    django.setup()
    import redis

    from rsr_tasks.unique import LockLost, Skipped, unique_task

    r = redis.Redis.from_url(os.environ["REDIS_URL"])

    def work():
        if a.detector:
            if r.incr(f"{a.detector}:holders") > 1:
                r.incr(f"{a.detector}:overlaps")
            time.sleep(random.uniform(0, 0.020))
            r.decr(f"{a.detector}:holders")
        if a.ready_key:
            r.set(a.ready_key, str(os.getpid()))
        if a.seconds:
            time.sleep(a.seconds)
        return "done"

    task = unique_task(a.name, expiry=a.expiry, beat=a.beat)(work)
    out = {"acquired": 0, "contended": 0, "lost": 0, "errors": 0, "results": []}
    if a.mode == "poll":
        deadline = time.monotonic() + a.timeout
        while time.monotonic() < deadline:
            result = task()
            if not isinstance(result, Skipped):
                out["acquired_at"] = time.time()
                out["result"] = repr(result)
                break
            time.sleep(a.interval)
        print(json.dumps(out))
        return
    for _ in range(a.attempts):
        result = task()
        if isinstance(result, Skipped):
            out["contended" if result.reason == "contended" else "errors"] += 1
        elif isinstance(result, LockLost):
            out["acquired"] += 1
            out["lost"] += 1
        else:
            out["acquired"] += 1
        out["results"].append(repr(result))
        if a.mode == "contend":
            time.sleep(random.uniform(0, 0.003))
    if a.mode == "contend":
        out["results"] = []
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
