"""Readiness and scrapes independent of the keyspace, with django-q2's STOCK Redis
broker class: 10^6 unrelated keys in a private redis-server, real qclusters.

Two projects share that Redis: one whose workers load the ``rsr_tasks`` app (which
makes the stock broker keep the Stat index), one running django-q2 alone (the
exporter finds its Stat key by background SCAN passes, never on a probe's path).
"""

from __future__ import annotations

import shutil
import time
import uuid

import pytest

from tests import procs as P
from tests.procs import run_py

KEYS = 1_000_000
STARTUP_GRACE = 60.0  # the exporter's default --startup-grace


@pytest.fixture(scope="module")
def big_redis(tmp_path_factory):
    server = P.RedisServer(tmp_path_factory.mktemp("bigredis"),
                           extra_args=("--enable-debug-command", "local")).start()
    client = server.client()
    client.execute_command("DEBUG", "POPULATE", KEYS, "unrelated")
    assert client.dbsize() >= KEYS
    yield server
    server.stop()


class Project:
    """A qcluster + exporter pair under its own cluster name (module-scoped)."""

    def __init__(self, workdir, template, redis, **extra: str) -> None:
        self.workdir = workdir
        self.name = f"ks{uuid.uuid4().hex[:8]}"
        data = workdir / "data"
        shutil.copytree(template, data)
        self.env = P.base_env(
            DJANGO_SETTINGS_MODULE="tests.settings_variants", DJANGO_Q_NAME=self.name,
            DJANGO_Q_DATA_DIR=str(data), DJANGO_SECRET_KEY="test-secret-key",
            DJANGO_Q_EXPORTER_POD_STORE=str(workdir / "pod.sqlite3"), REDIS_URL=redis.url,
            TEST_Q_BROKER_CLASS="stock", Q_WORKERS="1", **extra)
        self.redis = redis
        self.procs: list[P.Proc] = []
        self.exporter = P.Exporter(self.env, workdir / "exporter.log")
        self.procs.append(self.exporter)
        self.started = time.monotonic()
        self.exporter.wait_ready_to_serve()
        self.qcluster = self.start_qcluster()

    def start_qcluster(self) -> P.Proc:
        p = P.qcluster(self.env, self.workdir / f"qcluster-{len(self.procs)}.log")
        self.procs.append(p)
        return p

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()

    def wait_ready(self, timeout: float) -> float:
        """Seconds until /healthz answered 200."""
        t0 = time.monotonic()
        P.wait_for(lambda: self.exporter.get("/healthz", timeout=2)[0] == 200, timeout, 0.1,
                   f"/healthz 200 ({self.exporter.get('/healthz?verbose=1')[1]})")
        return time.monotonic() - t0

    def assert_stays_ready(self, seconds: float = 3.0) -> None:
        deadline = time.monotonic() + seconds
        answers = []
        while time.monotonic() < deadline:
            answers.append(self.exporter.get("/healthz", timeout=2)[0])
            time.sleep(0.05)
        assert set(answers) == {200}, answers

    def assert_metrics_complete(self) -> None:
        samples = self.exporter.samples()
        success = {dict(ls)["collector"]: v for (n, ls), v in samples.items()
                   if n == "django_q_exporter_collector_success"}
        assert success and all(v == 1 for v in success.values()), success
        up = [v for (n, ls), v in samples.items()
              if n == "django_q_cluster_up" and dict(ls)["cluster_name"] == self.name]
        assert up == [1.0], up


@pytest.fixture(scope="module")
def projects(big_redis, tmp_path_factory, sqlite_template):
    made = {}
    try:
        made["app"] = Project(tmp_path_factory.mktemp("with-app"), sqlite_template, big_redis)
        made["alone"] = Project(tmp_path_factory.mktemp("alone"), sqlite_template, big_redis,
                                TEST_WITHOUT_RSR_TASKS="1")
        yield made
    finally:
        for p in made.values():
            p.stop()


def test_stock_broker_with_the_app_keeps_the_index(projects, big_redis):
    """The app makes the stock broker class index its Stat: ready within the grace,
    stays ready, /metrics complete."""
    project = projects["app"]
    project.wait_ready(STARTUP_GRACE - (time.monotonic() - project.started))
    index = big_redis.client().zrange(f"django_q:{project.name}:cluster:index", 0, -1)
    assert len(index) == 1 and index[0].startswith(f"django_q:{project.name}:cluster:".encode())
    queues = big_redis.client().zrange(f"django_q:{project.name}:queues", 0, -1)
    assert queues == [project.name.encode()]
    project.assert_stays_ready()
    project.assert_metrics_complete()


def test_stock_broker_alone_found_by_background_discovery(projects, big_redis):
    """No worker keeps the index: the exporter's background pass finds the Stat key,
    probes read it directly. After a qcluster restart (a new cluster_id, a new key)
    the next pass finds the new key and the pod is ready again."""
    project = projects["alone"]
    project.wait_ready(STARTUP_GRACE - (time.monotonic() - project.started))
    client = big_redis.client()
    assert not client.exists(f"django_q:{project.name}:cluster:index")
    assert "keyspace pass:" in project.exporter.output()
    project.assert_stays_ready()
    project.assert_metrics_complete()
    first = client.keys(f"django_q:{project.name}:cluster:*")  # private server: KEYS is fine
    project.qcluster.stop()
    P.wait_for(lambda: project.exporter.get("/healthz")[0] == 503, 30, 0.1,
               "/healthz 503 after the cluster stopped")
    project.qcluster = project.start_qcluster()
    project.wait_ready(STARTUP_GRACE)
    assert client.keys(f"django_q:{project.name}:cluster:*") != first
    project.assert_stays_ready(1.0)


def test_the_app_indexes_any_redis_broker_class(projects):
    """A custom broker class keeps its own behaviour and gains the index writes; the
    non-Redis brokers are left alone."""
    out = run_py(projects["app"].env, """
from django_q.brokers import get_broker
from django_q.conf import Conf
from rsr_tasks.broker import StatIndexMixin, install, queue_name, queues_key
from django_q.brokers.redis_broker import Redis
broker = get_broker()
assert isinstance(broker, StatIndexMixin) and type(broker).__mro__[2] is Redis, type(broker).__mro__
assert queue_name(broker.list_key) == Conf.CLUSTER_NAME
assert queues_key(Conf.Q_STAT) == f"django_q:{Conf.PREFIX}:queues"
assert install() is None  # already indexing
Conf.ORM, Conf.BROKER_CLASS = "default", None
assert install() is None  # the ORM broker keeps its cache key list
Conf.ORM, Conf.BROKER_CLASS = None, "tests.task_funcs.CustomRedis"
print(install())
broker = get_broker()
assert broker.info() == "custom" and isinstance(broker, StatIndexMixin)
""")
    assert out.strip() == "rsr_tasks.broker.Indexed__tests_task_funcs__CustomRedis"
