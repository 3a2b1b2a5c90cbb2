"""Per-run overhead of @unique_task against the bare function, on a real Redis.

python -m bench.bench_unique [--runs N]

Prints a Markdown table: the bare call, the decorated call, and the parts
of the overhead (lock round trips, heartbeat thread start/stop, the
pod-store counter write), each per run, with the overhead against the bare
call. Target: < 1 ms per run on loopback.

Two more rows, measured in the same run: the acquire as it was before every
run re-registered its task (the same script without the registry write), so
the cost of healing a lost registry reads as a difference; and the registry
prune a worker runs once when it starts (``forget_stale``), over 500 tasks
(the label cap), which blocks Redis for its duration. The Redis round trips
of one decorated run are counted at the client.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def per_call(fn, runs: int, repeats: int = 5) -> float:
    """Median over ``repeats`` of the mean seconds per call."""
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(runs):
            fn()
        samples.append((time.perf_counter() - t0) / runs)
    return statistics.median(samples)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.procs import RedisServer

    work = Path(tempfile.mkdtemp(prefix="bench-unique-"))
    server = RedisServer(work / "redis").start()
    try:
        os.environ.update(REDIS_URL=server.url, DJANGO_SETTINGS_MODULE="rsr_tasks.demo.settings",
                          DJANGO_Q_DATA_DIR=str(work / "data"), DJANGO_Q_NAME="bench",
                          DJANGO_Q_EXPORTER_POD_STORE=str(work / "pod.sqlite3"))
        import django

        django.setup()
        from rsr_tasks.heartbeat import CacheHeartbeat
        from rsr_tasks.unique import counters, unique_task
        from rsr_tasks.unique.decorator import _store

        def bare():
            return 1

        decorated = unique_task("bench", expiry=30)(bare)
        decorated()  # registration, script loading, store creation
        store = _store()

        def lock_only(on=store):
            on.acquire("bench-lock", "tok", 30, "h", 1)
            on.finish("bench-lock", "tok", "success")

        before = without_registry_write(store)
        round_trips = count_round_trips(store.client, decorated)

        def beat_only():
            with CacheHeartbeat(store, "bench-beat", "tok", 30):
                pass

        def count_only():
            counters.count("bench-count", "acquired")

        rows = [("bare function", per_call(bare, args.runs))]
        rows.append(("@unique_task (whole run)", per_call(decorated, args.runs)))
        if before is None:
            rows.append(("  lock acquire + finish (2 Lua calls)", per_call(lock_only, args.runs)))
        else:
            now, then = interleaved(lock_only, lambda: lock_only(before), args.runs)
            rows.append(("  lock acquire + finish (2 Lua calls)", now))
            rows.append(("  the same before runs re-registered (no registry write)", then))
        rows.append(("  heartbeat thread start + stop", per_call(beat_only, args.runs)))
        rows.append(("  pod-store counter write", per_call(count_only, args.runs)))
        ping = per_call(store.client.ping, args.runs)
        prune = prune_cost(store.client, 500)
        base = rows[0][1]
        overhead = rows[1][1] - base
        print(f"# @unique_task overhead ({args.runs} runs x 5, median; Redis on loopback)\n")
        print("| measurement | µs per run | in Redis round trips |")
        print("|---|---:|---:|")
        for label, secs in rows:
            print(f"| {label} | {secs * 1e6:.1f} | {secs / ping:.2f} |")
        print(f"| Redis PING round trip (baseline) | {ping * 1e6:.1f} | 1.00 |")
        print(f"| registry prune, 500 tasks (once per worker start) | {prune * 1e6:.1f} | "
              f"{prune / ping:.2f} |")
        print(f"\nRedis round trips per decorated run, counted at the client: {round_trips}")
        verdict = "meets" if overhead < 0.001 else "MISSES"
        print(f"\noverhead per run: {overhead * 1e3:.3f} ms ({verdict} the < 1 ms target; "
              f"{overhead / ping:.1f} Redis round trips' worth; "
              f"{overhead / base if base else float('inf'):,.0f}x the bare call; "
              f"{overhead / 0.010:.1%} of a 10 ms task, {overhead / 1.0:.2%} of a 1 s task)")
        return 0
    finally:
        server.stop()


def interleaved(a, b, runs: int, repeats: int = 9) -> tuple[float, float]:
    """Medians of the mean seconds per call of ``a`` and ``b``, their repeats alternated,
    so a change in the machine's load weighs on both alike."""
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, into in ((a, samples[0]), (b, samples[1])):
            t0 = time.perf_counter()
            for _ in range(runs):
                fn()
            into.append((time.perf_counter() - t0) / runs)
    return statistics.median(samples[0]), statistics.median(samples[1])


def without_registry_write(store):
    """A store whose acquire script lacks the per-run registry write (the acquire before
    runs re-registered their task), or None when the script has no such write."""
    import re

    from rsr_tasks.unique import redis_store

    script = re.sub(r"if redis\.call\('hexists', KEYS\[3\].*?\nend\n", "", redis_store._ACQUIRE,
                    flags=re.S)
    if script == redis_store._ACQUIRE:
        return None
    other = redis_store.RedisUniqueStore(store.client, store.prefix)
    other._acquire = store.client.register_script(script)
    return other


def count_round_trips(client, fn) -> int:
    """Commands ``fn`` sends through ``client`` (each one round trip)."""
    sent = []
    original = client.execute_command

    def counting(*args, **kwargs):
        sent.append(args[0])
        return original(*args, **kwargs)

    client.execute_command = counting
    try:
        fn()
    finally:
        del client.execute_command
    return len(sent)


def prune_cost(client, tasks: int) -> float:
    """Seconds of one ``forget_stale`` over ``tasks`` registered tasks with records (none
    stale, so every entry and record is read and kept: the usual case)."""
    from djq_contract import keys
    from rsr_tasks.unique.redis_store import RedisUniqueStore

    prefix = keys.unique_prefix("bench-prune")
    store = RedisUniqueStore(client, prefix)
    pipe = client.pipeline(transaction=False)
    for i in range(tasks):
        pipe.hset(keys.registry_key(prefix), f"task-{i}", json.dumps({"expiry": 30}))
        pipe.set(keys.state_key(prefix, f"task-{i}"), json.dumps({"last_end": time.time()}))
    pipe.execute()
    store.forget_stale(86400)  # loads the script
    return per_call(lambda: store.forget_stale(86400), 20)


if __name__ == "__main__":
    sys.exit(main())
