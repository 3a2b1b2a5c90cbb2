"""Unique tasks run by a real qcluster in tests (importable by the workers)."""

import os
import time

import redis

from rsr_tasks.unique import lock_held, unique_task


@unique_task("dq-overlap", expiry=5)
def overlap_job(detector: str, seconds: float) -> str:
    r = redis.Redis.from_url(os.environ["REDIS_URL"])
    if r.incr(f"{detector}:holders") > 1:
        r.incr(f"{detector}:overlaps")
    time.sleep(seconds)
    r.decr(f"{detector}:holders")
    r.incr(f"{detector}:runs")
    return "worked"


@unique_task("dq-sleeper", expiry=2, beat=0.5)
def sleeper(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


@unique_task("dq-stubborn", expiry=2, beat=0.5)
def stubborn(seconds: float) -> str:
    """Swallows django-q's TimeoutException (a SystemExit), as code with a bare
    ``except:`` would, so only the guard's kill of the worker process ends it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(max(0.0, deadline - time.monotonic()))
        except BaseException:  # noqa: S112 (the point of this task)
            continue
    return "outlasted"


@unique_task("dq-logged", expiry=8, beat=0.5)
def logged_run(log_path: str, seconds: float) -> str:
    """Appends one line when it starts and one when it ends (pid, wall time, whether it
    still held its lock) to a run log, and stops early once its lock is no longer held:
    the log shows whether two holders ever ran at once."""
    pid = os.getpid()
    with open(log_path, "a") as f:
        f.write(f"start {pid} {time.time():.6f}\n")
    deadline = time.monotonic() + seconds
    held = True
    while time.monotonic() < deadline and held:
        time.sleep(0.05)
        held = lock_held()
    with open(log_path, "a") as f:
        f.write(f"end {pid} {time.time():.6f} {int(held)}\n")
    return "logged" if held else "stopped"


@unique_task("dq-page-holder", expiry=2, beat=0.5)
def hold_until(flag: str, limit: float = 120.0) -> str:
    """Holds the lock until ``flag`` exists in Redis (the status page test freezes
    this holder with SIGSTOP, then lets it finish)."""
    r = redis.Redis.from_url(os.environ["REDIS_URL"])
    deadline = time.monotonic() + limit
    while not r.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.05)
    return "released"
