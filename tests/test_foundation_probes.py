"""Probes, exposition and the worker probe script against a real cluster (Redis broker).

One cluster serves several assertions; each test starts its own processes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.procs import PYTHON, ROOT, free_port, wait_for

HOST = socket.gethostname()
WORKER_SH = ROOT / "k8s" / "worker.sh"


def _run_worker_sh(port: int, path: str = "/healthz") -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(WORKER_SH)], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "PROBE_PORT": str(port),
                               "PROBE_PATH": path, "PROBE_TIMEOUT": "2"})


def _check(url: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "exporter", "check", url, "--timeout", "2"],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)


@pytest.fixture
def running(make_env, procs):
    env = make_env("redis", Q_WORKERS="2")
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    cluster = procs.qcluster(env)
    wait_for(lambda: exporter.value("django_q_cluster_up", host=HOST) == 1, 30,
             what="cluster_up 1")
    wait_for(lambda: exporter.get("/healthz")[:2] == (200, "true"), 10, what="/healthz 200")
    return env, exporter, cluster


def test_healthy_cluster_probes_and_metrics(running, tmp_path):
    env, exporter, cluster = running
    assert exporter.value("django_q_cluster_workers", host=HOST) == 2
    assert exporter.value("django_q_cluster_status", host=HOST, status="idle") == 1
    assert exporter.get("/livez")[:2] == (200, "true")
    assert exporter.get("/readyz")[:2] == (200, "true")
    status, body, headers = exporter.get("/healthz?verbose=1")
    report = json.loads(body)
    assert status == 200 and report["ok"] is True
    assert {c["name"] for c in report["checks"]} >= {"broker", "cluster_seen", "status",
                                                     "workers", "sentinel_process"}
    assert all(c["ok"] for c in report["checks"])

    # The whole exposition passes promtool's linter.
    text = exporter.metrics_text()
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    # OpenMetrics when asked for it.
    status, om, headers = exporter.get("/metrics", headers={
        "Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"})
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert om.rstrip().endswith("# EOF")
    assert "django_q_cluster_up" in om

    # Landing page lists the cluster.
    status, page, headers = exporter.get("/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert f"<td>{HOST}</td>" in page and "<td>up</td>" in page

    # worker.sh and `python -m exporter check` agree with the server.
    ok = _run_worker_sh(exporter.port)
    assert ok.returncode == 0, ok.stderr
    assert _check(exporter.url + "/healthz").returncode == 0
    missing = _run_worker_sh(exporter.port, "/nope")
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr


def test_sigkill_of_whole_cluster_turns_probes_red(running):
    env, exporter, cluster = running
    t0 = time.monotonic()
    cluster.signal_group(signal.SIGKILL)
    # The local sentinel pid vanishing fails readiness at once (no Stat expiry wait);
    # metrics read down once the Stat expired (3 s) and the grace (5 s) passed.
    wait_for(lambda: exporter.get("/healthz")[:2] == (503, "false"), 3, 0.05,
             what="/healthz 503 after SIGKILL")
    assert exporter.get("/livez")[0] == 503
    wait_for(lambda: exporter.value("django_q_cluster_up", host=HOST) == 0, 12,
             what="cluster_up 0 after SIGKILL")
    assert time.monotonic() - t0 < 15
    assert exporter.value("django_q_cluster_workers", host=HOST) == 0
    failed = _run_worker_sh(exporter.port)
    assert failed.returncode == 1 and "HTTP 503" in failed.stderr
    assert _check(exporter.url + "/healthz").returncode == 1


def test_sigkill_of_sentinel_only_fails_liveness(running):
    """A SIGKILLed sentinel leaves orphaned workers: liveness must still fail."""
    env, exporter, cluster = running
    # qcluster's main process has exactly one child: the sentinel.
    children = Path(f"/proc/{cluster.pid}/task/{cluster.pid}/children").read_text().split()
    assert len(children) == 1, children
    sentinel = int(children[0])
    os.kill(sentinel, signal.SIGKILL)
    wait_for(lambda: exporter.get("/livez")[0] == 503, 5, 0.05, what="/livez 503")
    _, body, _ = exporter.get("/livez?verbose=1")
    reasons = {c["name"]: c["reason"] for c in json.loads(body)["checks"]}
    assert f"sentinel process {sentinel}" in reasons["sentinel_process"]
    assert exporter.get("/healthz")[0] == 503


def test_worker_sh_fails_fast_when_nothing_listens():
    lint = subprocess.run(["shellcheck", str(WORKER_SH), str(ROOT / "k8s" / "entrypoint.sh")],
                          capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout
    port = free_port()
    t0 = time.monotonic()
    result = _run_worker_sh(port)
    elapsed = time.monotonic() - t0
    assert result.returncode == 1
    assert "connection refused" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert elapsed < 5, f"worker.sh took {elapsed:.1f}s against a closed port"
    check = _check(f"http://127.0.0.1:{port}/healthz")
    assert check.returncode == 1 and "unreachable" in check.stderr
