"""Unique-task runs in separate OS processes (tests.unique_driver), and their results."""

from __future__ import annotations

import json
import subprocess
import uuid

from tests.procs import PYTHON, ROOT, wait_for


def driver(env, mode, name, *args, **popen):
    cmd = [PYTHON, "-m", "tests.unique_driver", mode, "--name", name, *map(str, args)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def start_holder(env, name, *args):
    """A process that takes the lock and holds it; returns once its run has started."""
    import redis

    ready = f"ready-{uuid.uuid4().hex[:8]}"
    proc = driver(env, "hold", name, *args, "--ready-key", ready)
    client = redis.Redis.from_url(env["REDIS_URL"])
    wait_for(lambda: client.get(ready), 20, what="holder to start its run")
    return proc, client


def result(proc, timeout=60) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def counter(exporter, outcome, task):
    return exporter.value(f"django_q_unique_task_lock_{outcome}_total", task=task)
