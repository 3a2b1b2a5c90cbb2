"""The per-pod layout: ``--scope local`` on each worker pod, one ``--scope cluster``.

One stack for the module: a private redis-server, real qclusters on two host names
(``unshare --uts``), a registered unique task and an overdue schedule. Exporters
are started by the tests that need them, in file order: the first test measures
the broker commands of the local-scope exporter while no other exporter runs.
"""

from __future__ import annotations

import shutil
import signal
import time
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from djq_contract import catalogue
from tests import procs as P
from tests.procs import run_py, wait_for

HOSTS = ("node-a", "node-b")
#: Commands only a reader of every Stat or of the keyspace sends (the workers never do).
WIDE_READS = ("zrangebyscore", "mget", "scan", "keys")


class Stack:
    def __init__(self, workdir, template) -> None:
        self.workdir = workdir
        self.redis = P.RedisServer(workdir / "redis").start()
        self.name = f"sc{uuid.uuid4().hex[:8]}"
        data = workdir / "data"
        shutil.copytree(template, data)
        self.env = P.base_env(
            DJANGO_Q_NAME=self.name, DJANGO_Q_DATA_DIR=str(data),
            DJANGO_SECRET_KEY="test-secret-key", REDIS_URL=self.redis.url,
            DJANGO_Q_EXPORTER_POD_STORE=str(workdir / "pod.sqlite3"), Q_WORKERS="1")
        self.procs: list[P.Proc] = []
        run_py(self.env, "from rsr_tasks.unique import unique_task\n"
                         "unique_task('scale-job', expiry=60)(lambda: None)()\n"
                         "from django_q.models import Schedule\n"
                         "from django.utils import timezone\n"
                         "import datetime as dt\n"
                         "Schedule.objects.create(name='nightly', func='math.floor', args='1',"
                         " schedule_type=Schedule.DAILY,"
                         " next_run=timezone.now() + dt.timedelta(hours=1))\n")
        self.clusters = {host: self.qcluster(host) for host in HOSTS}

    def qcluster(self, host: str) -> P.Proc:
        p = P.qcluster(self.env, self.workdir / f"qcluster-{host}-{len(self.procs)}.log", host)
        self.procs.append(p)
        return p

    def exporter(self, *flags: str, name: str) -> P.Exporter:
        p = P.Exporter(self.env, self.workdir / f"exporter-{name}.log", *flags)
        self.procs.append(p)
        p.wait_ready_to_serve()
        return p

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        self.redis.stop()

    def commandstats(self) -> dict[str, int]:
        stats = self.redis.client().info("commandstats")
        return {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, sqlite_template):
    s = Stack(tmp_path_factory.mktemp("scale"), sqlite_template)
    try:
        yield s
    finally:
        s.stop()


def families(exporter: P.Exporter) -> dict[str, list]:
    """Family name -> its samples, from one scrape."""
    return {f.name: f.samples for f in text_string_to_metric_families(exporter.metrics_text())}


def wait_ready(exporter: P.Exporter, timeout: float = 60) -> None:
    wait_for(lambda: exporter.get("/healthz", timeout=2)[0] == 200, timeout, 0.2,
             f"/healthz 200 ({exporter.get('/healthz?verbose=1')[1]})")


@pytest.fixture(scope="module")
def local_exporter(stack):
    return stack.exporter("--scope", "local", "--hostname", "node-a", name="local-node-a")


@pytest.fixture(scope="module")
def cluster_exporter(stack):
    return stack.exporter("--scope", "cluster", name="cluster")


def test_local_scope_reads_and_publishes_only_its_own_cluster(stack, local_exporter):
    """Ready from its own cluster; after the first look-up, probes and scrapes read one
    Stat key with GET and never the index, other Stats or the keyspace; /metrics holds
    the per-pod families only, every cluster label naming its own host."""
    wait_ready(local_exporter)
    before = stack.commandstats()
    for i in range(20):
        assert local_exporter.get("/healthz", timeout=2)[:2] == (200, "true")
        time.sleep(0.3)  # past --health-cache: each probe starts a read of the Stat
        if i % 5 == 0:
            local_exporter.metrics_text()
    after = stack.commandstats()
    wide = {c: after.get(c, 0) - before.get(c, 0) for c in WIDE_READS}
    assert wide == dict.fromkeys(WIDE_READS, 0), wide
    assert after.get("get", 0) - before.get("get", 0) >= 10  # it did read, one key each time

    fams = families(local_exporter)
    assert set(fams) <= catalogue.published("local"), set(fams) - catalogue.published("local")
    hosts = {s.labels["host"] for samples in fams.values() for s in samples
             if "host" in s.labels}
    assert hosts == {"node-a"}
    (ready,) = fams["django_q_local_cluster_ready"]
    assert (ready.labels, ready.value) == ({"cluster_name": stack.name, "host": "node-a"}, 1)
    assert {s.labels["check"] for s in fams["django_q_readiness_check"]} >= {
        "cluster_seen", "status", "workers", "progress", "config"}
    rejected = {s.labels["reason"]: s.value for s in fams["django_q_exporter_stats_rejected"]}
    assert rejected == {"bad_signature": 0, "undecodable": 0}
    for wide_family in ("django_q_cluster_up", "django_q_queue_size",
                        "django_q_unique_task_running", "django_q_schedule_next_run_delay_seconds",
                        "django_q_broker_up"):
        assert wide_family not in fams


def test_cluster_scope_publishes_every_host_queue_unique_task_and_schedule(stack,
                                                                            cluster_exporter):
    """No qcluster beside it: ready when it can read the broker (three checks, no local
    cluster judged), and it publishes both hosts' clusters and the cluster-wide series,
    never a local cluster's readiness or a pod's counters."""
    wait_ready(cluster_exporter)
    status, body, _ = cluster_exporter.get("/readyz?verbose=1")
    assert status == 200, body
    import json

    assert [c["name"] for c in json.loads(body)["checks"]] == ["config", "stats", "broker"]
    for host in HOSTS:
        wait_for(lambda h=host: cluster_exporter.value("django_q_cluster_up", host=h) == 1, 30,
                 what=f"cluster exporter to see {host} up")
    fams = families(cluster_exporter)
    assert set(fams) <= catalogue.published("cluster"), (
        set(fams) - catalogue.published("cluster"))
    assert {s.labels["queue"] for s in fams["django_q_queue_size"]} >= {stack.name}
    assert {s.labels["task"] for s in fams["django_q_unique_task_running"]} == {"scale-job"}
    assert [s.labels["task"]
            for s in fams["django_q_unique_task_last_success_timestamp_seconds"]] == ["scale-job"]
    assert {s.labels["schedule"]
            for s in fams["django_q_schedule_next_run_delay_seconds"]} == {"nightly"}
    assert [s.value for s in fams["django_q_broker_up"]] == [1]
    for per_pod in ("django_q_local_cluster_ready", "django_q_readiness_check",
                    "django_q_unique_task_lock_acquired", "django_q_tasks"):
        assert per_pod not in fams
    assert "django_q_exporter_stats_rejected" in fams  # about the exporter itself


def test_both_layouts_publish_the_same_families(stack, local_exporter, cluster_exporter):
    """What the local and the cluster exporter publish together is what one exporter
    with the default scope publishes: the per-pod layout loses no family."""
    everything = stack.exporter("--hostname", "node-b", name="all-node-b")
    wait_ready(everything)
    wait_for(lambda: everything.value("django_q_cluster_up", host="node-a") == 1, 30,
             what="the all-scope exporter to see node-a")
    assert set(families(everything)) == set(families(local_exporter)) | set(
        families(cluster_exporter))


def test_local_scope_finds_its_cluster_again_after_a_restart(stack, local_exporter):
    """A restarted qcluster saves its Stat under a new cluster_id, a new key: the
    remembered key expires, the exporter reads 503, then finds the new key by itself."""
    wait_ready(local_exporter)
    old = local_exporter.value("django_q_local_cluster_ready")
    assert old == 1
    stack.clusters["node-a"].signal_group(signal.SIGKILL)
    wait_for(lambda: local_exporter.get("/healthz", timeout=2)[0] == 503, 20, 0.2,
             "node-a not ready after its cluster was killed")
    assert local_exporter.value("django_q_local_cluster_ready") == 0
    stack.clusters["node-a"] = stack.qcluster("node-a")
    wait_ready(local_exporter)
    assert local_exporter.value("django_q_local_cluster_ready") == 1


def test_local_scope_on_the_orm_broker(make_env, procs):
    """Cache-backed Stats (ORM broker): the local scope finds its key in the cache's key
    list once, then reads that key; ready, publishing its own cluster only."""
    env = make_env("sqlite", Q_WORKERS="1")
    exporter = procs.exporter(env, "--scope", "local")
    procs.qcluster(env)
    exporter.wait_ready_to_serve()
    wait_ready(exporter)
    for _ in range(8):  # later reads go through the remembered key
        time.sleep(0.3)
        assert exporter.get("/healthz", timeout=2)[:2] == (200, "true")
    fams = families(exporter)
    assert set(fams) <= catalogue.published("local")
    assert [s.value for s in fams["django_q_local_cluster_ready"]] == [1]
