"""A real qcluster with 2 workers is seen up and healthy on every broker set-up."""

import signal

import pytest

from tests.procs import wait_for


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis"])
def test_cluster_up_then_down_after_sigterm(kind, make_env, procs):
    env = make_env(kind, Q_WORKERS="2")
    exporter = procs.exporter(env)
    exporter.wait_ready_to_serve()
    cluster = procs.qcluster(env)

    import socket

    host = socket.gethostname()
    wait_for(lambda: exporter.value("django_q_cluster_up", host=host) == 1, 30,
             what="cluster_up 1")
    # django-q2 saves its first Stat before spawning the pool (0 workers): poll for the pool.
    wait_for(lambda: exporter.value("django_q_cluster_workers", host=host) == 2, 30,
             what="cluster_workers 2")
    assert exporter.value("django_q_broker_up") == 1
    wait_for(lambda: exporter.get("/healthz")[:2] == (200, "true"), 10, what="/healthz 200")

    cluster.signal(signal.SIGTERM)
    # SIGTERM makes django-q save a Stopping/Stopped Stat, then the key expires (3 s)
    # and the grace (5 s) passes: down within 10 s.
    wait_for(lambda: exporter.get("/healthz")[:2] == (503, "false"), 10, what="/healthz 503")
    wait_for(lambda: exporter.value("django_q_cluster_up", host=host) == 0, 10,
             what="cluster_up 0")
