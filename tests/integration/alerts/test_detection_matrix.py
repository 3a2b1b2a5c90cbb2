"""Detection matrix: every situation an operator meets, through a real Prometheus.

One stack for all rows (module scope, tests run in file order): Prometheus 2.42 with
the shipped rules rendered with short ``for:`` durations, scraping exporters on host
names node-a and node-b (later node-c) in front of real qclusters on a private Redis
broker, their database on a private PostgreSQL server; and one more exporter and qcluster
on host orm-a with the ORM broker on a second private PostgreSQL server (a cluster name
of its own). Targets come from a file_sd file. Each row starts from a quiet, healthy
state, applies a fault, asserts the exact set of alerts (expected, plus a documented list
of acceptable consequences), that each expected alert fires within its ``for:`` plus the
row's detection delay, two evaluation intervals, a scrape and a margin for a loaded
machine, and that everything resolves after recovery. Results go to
``prometheus/tests/matrix-results.md`` (and JSON next to it) when
``DJANGO_Q_MATRIX_RESULTS=1``, else into the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid

import pytest

from djq_contract import keys
from exporter.collectors.clusters import ClusterCollector
from exporter.collectors.queues import QueueCollector
from exporter.collectors.schedules import ScheduleCollector
from exporter.collectors.unique_tasks import UniqueTaskCollector
from tests.integration.alerts.stack import (
    FOR,
    SCRAPE,
    AlertRecorder,
    Node,
    Prometheus,
    render_rules,
)
from tests.procs import (
    PYTHON,
    ROOT,
    PostgresServer,
    RedisServer,
    base_env,
    enqueue,
    migrate,
    run_py,
    wait_for,
)

MARGIN = 12.0  # a loaded 2-core machine: scrape jitter, slow subprocesses
SLEEPER = "dq-sleeper"  # tests.unique_jobs.sleeper: @unique_task, expiry 2 s, beat 0.5 s
PRODUCER = """
import django, sys, time
django.setup()
from django_q.tasks import async_task
n = 0
while True:
    try:
        async_task('tests.task_funcs.quick', n)
        if n % 2 == 0:
            async_task('tests.unique_jobs.sleeper', 1.0)
    except Exception as exc:  # the broker is away: keep producing, as a web app would
        print(f'enqueue failed: {exc!r}', file=sys.stderr, flush=True)
    n += 1
    time.sleep(1.0)
"""


class Matrix:
    def __init__(self, workdir, env, redis, prom, recorder, nodes, for_s):
        self.workdir = workdir
        self.env = env
        self.redis = redis
        self.database: PostgresServer | None = None  # the Redis stack's database
        self.orm_db: PostgresServer | None = None  # the ORM stack's broker and database
        self.orm: Node | None = None  # the ORM stack's one host, always in discovery
        self.prom = prom
        self.recorder = recorder
        self.nodes = nodes  # host -> Node, the ones in service discovery
        self.for_s = for_s
        self.name = env["DJANGO_Q_NAME"]
        self.results: list[dict] = []
        self.producer: subprocess.Popen | None = None

    # --- helpers ----------------------------------------------------------------------
    def publish_targets(self) -> None:
        self.prom.write_targets([n.port for n in self.nodes.values()]
                                + ([self.orm.port] if self.orm else []))

    def start_producer(self) -> None:
        self.producer = subprocess.Popen([PYTHON, "-c", PRODUCER], cwd=ROOT, env=self.env,
                                         stdout=subprocess.DEVNULL,
                                         stderr=open(self.workdir / "producer.log", "ab"))

    def pause_producer(self) -> None:
        self.producer.send_signal(signal.SIGSTOP)

    def resume_producer(self) -> None:
        self.producer.send_signal(signal.SIGCONT)

    def key(self, alert: str, **labels: str) -> str:
        inner = ",".join(f"{k}={labels[k]}" for k in sorted(labels))
        return f"{alert}{{{inner}}}"

    def down(self, host: str) -> str:
        return self.key("DjangoQClusterDown", cluster_name=self.name, host=host)

    def wait_quiet(self, timeout: float = 120) -> None:
        try:
            wait_for(lambda: not self.recorder.snapshot(), timeout, 0.25,
                     what="no alert pending or firing")
        except AssertionError as exc:
            exc.add_note(f"still active: {self.recorder.snapshot()}")
            raise

    def monitor_pid(self, host: str) -> int:
        out = run_py(self.env, "import json\nfrom django_q.status import Stat\n"
                               "print(json.dumps({s.host: s.monitor for s in Stat.get_all()}))")
        return int(json.loads(out.strip().splitlines()[-1])[host])

    def freeze_long_run(self) -> int:
        """Starts a 12 s run of the sleeper and SIGSTOPs its worker once that run has held
        the lock for 2 s; returns the pid. Only a long run holds that long (the producer's
        take 1 s), so a producer's run that happens to hold the lock is never the one
        frozen. A long run that meets a producer's run still holding the lock is skipped
        as contended, as it should be: then it is enqueued again."""
        prefix = keys.unique_prefix(self.name)
        client = self.redis.client()

        def long_holder() -> int | None:
            token = client.get(keys.lock_key(prefix, SLEEPER))
            raw = client.get(keys.state_key(prefix, SLEEPER))
            if not token or not raw:
                return None
            record = json.loads(raw)
            if record.get("token") != token.decode() or not record.get("started"):
                return None
            return int(record["pid"]) if time.time() - record["started"] >= 2.0 else None

        for attempt in range(3):
            enqueue(self.env, "tests.unique_jobs.sleeper", [(12,)])
            try:
                pid = wait_for(long_holder, 30, 0.1, what="a long run to hold the lock 2 s")
            except AssertionError as exc:
                if attempt == 2:
                    exc.add_note(self.diagnostics())
                    raise
                continue
            os.kill(pid, signal.SIGSTOP)
            return pid
        raise AssertionError("unreachable")

    def diagnostics(self) -> str:
        """What the broker holds, for a failure message: the queue and the unique-task
        records."""
        client = self.redis.client()
        keys = sorted(k.decode() for k in client.scan_iter(count=1000))
        queues = {k: client.llen(k) for k in keys if client.type(k) == b"list"}
        unique = {k: client.get(k) for k in keys
                  if k.endswith((":lock", ":state")) and client.type(k) == b"string"}
        return f"broker lists {queues}; unique-task keys {unique}"

    def run_row(self, row: str, fault, recover, expected: dict[str, float],
                acceptable: set[str] = frozenset(), extra: float = 0.0,
                pending_only: set[str] = frozenset()) -> dict:
        """``expected``: alert key -> detection delay beyond its for: (seconds).
        ``acceptable``: true consequences that may fire; ``pending_only``: blips that may
        be pending for a moment but must never fire. Detection is timed from the call of
        ``fault``, or from the monotonic time it returns when setting the fault up takes
        a while before the fault exists (a run must first hold a lock)."""
        self.wait_quiet()
        t0 = time.monotonic()
        limit = {k: self.for_s[k.split("{")[0]] + delay + extra + 3 * SCRAPE + MARGIN
                 for k, delay in expected.items()}

        def firing() -> bool:
            states = self.recorder.snapshot()
            return all(states.get(k) == "firing" for k in expected)

        try:
            in_effect = fault()
            wait_for(firing, max(limit.values(), default=0) + 5, 0.25,
                     what=f"{row}: {sorted(expected)} firing")
        except BaseException as exc:
            # Undo the fault so that this row's failure is not every later row's too.
            exc.add_note(f"alerts at failure: {self.recorder.snapshot()}")
            try:
                recover()
            except Exception as undo:  # noqa: BLE001 (reported with the first failure)
                exc.add_note(f"recovery after the failure failed too: {undo!r}")
            raise
        t1 = time.monotonic()
        t_fault = t0 if in_effect is None else in_effect
        recover()
        self.wait_quiet(150)
        t2 = time.monotonic()
        events = self.recorder.since(t0)
        seen = {k for _, k, s in events if s in ("pending", "firing")}
        fired_at = {}
        for t, k, s in events:
            if s == "firing" and k not in fired_at:
                fired_at[k] = t - t_fault
        resolved_at = {k: t - t1 for t, k, s in events if s == "inactive" and t >= t1}
        result = {
            "row": row,
            "fired": sorted(fired_at),
            "time_to_firing_s": {k: round(v, 1) for k, v in fired_at.items()},
            "for_s": {k: self.for_s[k.split("{")[0]] for k in fired_at},
            "time_to_resolve_s": {k: round(v, 1) for k, v in resolved_at.items()},
            "recovered_in_s": round(t2 - t1, 1),
            "fault_set_up_s": round(t_fault - t0, 1),
            "acceptable": sorted(acceptable),
            "pending_only": sorted(pending_only),
        }
        self.results.append(result)
        unexpected = seen - set(expected) - set(acceptable) - set(pending_only)
        timeline = [(round(t - t0, 1), k, s) for t, k, s in events]
        blips_fired = sorted(set(fired_at) & set(pending_only))
        assert not blips_fired, f"{row}: {blips_fired} fired; events {timeline}"
        assert not unexpected, (f"{row}: unexpected alerts {sorted(unexpected)}: {result}; "
                                f"recovery began at {t1 - t0:.1f}s; events {timeline}")
        for k, bound in limit.items():
            assert fired_at[k] <= bound, f"{row}: {k} fired after {fired_at[k]:.1f}s > {bound}"
        return result


@pytest.fixture(scope="module")
def databases():
    """Two private PostgreSQL servers (rows stop them: never the shared one), started and
    migrated at once (initdb and migrate are most of the stack's start-up)."""
    servers: dict[str, PostgresServer] = {}
    errors: list[BaseException] = []

    def make(key: str) -> None:
        try:
            servers[key] = PostgresServer(dbname=key)
            servers[key].start()
            migrate(base_env(DATABASE_URL=servers[key].url))
        except BaseException as exc:  # noqa: BLE001 (re-raised in the test's thread)
            errors.append(exc)

    threads = [threading.Thread(target=make, args=(k,)) for k in ("matrix", "matrix_orm")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    try:
        if errors:
            raise errors[0]
        yield servers["matrix"], servers["matrix_orm"]
    finally:
        for server in servers.values():
            server.remove()


@pytest.fixture(scope="module")
def matrix(tmp_path_factory, databases):
    workdir = tmp_path_factory.mktemp("matrix")
    redis = RedisServer(workdir / "redis").start()
    name = f"mx{uuid.uuid4().hex[:6]}"
    common = {"DJANGO_SECRET_KEY": "matrix-secret", "Q_TIMEOUT": "30", "Q_RETRY": "60"}
    database, orm_db = databases
    env = base_env(DJANGO_Q_NAME=name, DATABASE_URL=database.url, REDIS_URL=redis.url,
                   DJANGO_Q_EXPORTER_POD_STORE=str(workdir / "pod.sqlite3"),
                   Q_WORKERS="2", **common)
    orm_env = base_env(DJANGO_Q_NAME=f"{name}orm", DATABASE_URL=orm_db.url,
                       DJANGO_Q_EXPORTER_POD_STORE=str(workdir / "pod-orm.sqlite3"),
                       Q_WORKERS="1", **common)
    for_s = render_rules(workdir)
    prom = Prometheus(workdir, workdir / "django-q.rules.yml")
    recorder = AlertRecorder(prom)
    nodes = {h: Node(h, env, workdir) for h in ("node-a", "node-b")}
    m = Matrix(workdir, env, redis, prom, recorder, nodes, for_s)
    m.database, m.orm_db = database, orm_db
    m.orm = Node("orm-a", orm_env, workdir)
    every = [*nodes.values(), m.orm]
    try:
        # An hourly schedule, next due in an hour: the schedule panel has data and nothing
        # is overdue (django-q2's scheduler runs every ~30 s, longer than the 5 s limit).
        run_py(env, "from datetime import timedelta\nfrom django.utils import timezone\n"
                    "from django_q.models import Schedule\n"
                    "Schedule.objects.create(name='hourly', func='tests.task_funcs.quick', "
                    "args='1', schedule_type=Schedule.HOURLY, "
                    "next_run=timezone.now() + timedelta(hours=1))\n")
        for node in every:
            node.start_exporter()
            node.start_cluster()
        for node in every:
            node.wait_cluster_ready()
        m.publish_targets()
        m.start_producer()
        wait_for(lambda: len(prom.query("django_q_local_cluster_ready == 1")) == 3, 60, 0.5,
                 what="Prometheus to see the three pods ready")
        m.wait_quiet(90)
        yield m
    finally:
        recorder.stop()
        if m.producer is not None:
            m.producer.send_signal(signal.SIGCONT)
            m.producer.kill()
            m.producer.wait()
        for node in {*every, *m.nodes.values()}:
            node.stop()
        prom.stop()
        redis.stop()
        write_results(m.results, workdir)


def write_results(results: list[dict], workdir) -> None:
    if not results:
        return
    target = (ROOT / "prometheus" / "tests" if os.environ.get("DJANGO_Q_MATRIX_RESULTS")
              else workdir)
    (target / "matrix-results.json").write_text(json.dumps(results, indent=1) + "\n")
    lines = ["# Detection matrix results", "",
             "Written by tests/integration/alerts/test_detection_matrix.py (scrape and "
             f"evaluation interval {SCRAPE:g} s). Times in seconds from the fault (firing) "
             "and from the start of recovery (resolve).", "",
             "| row | alerts fired | time to firing (for:) | time to resolve |",
             "|---|---|---|---|"]
    for r in results:
        fired = "<br>".join(r["fired"]) or "none"
        times = "<br>".join(f"{r['time_to_firing_s'][k]} ({r['for_s'][k]:g})"
                            for k in r["fired"]) or "-"
        res = "<br>".join(str(r["time_to_resolve_s"].get(k, "-")) for k in r["fired"]) or "-"
        lines.append(f"| {r['row']} | {fired} | {times} | {res} |")
    (target / "matrix-results.md").write_text("\n".join(lines) + "\n")


# --- rows, in order ----------------------------------------------------------------------
def test_healthy_run_fires_nothing(matrix):
    t0 = time.monotonic()
    window = 8 * FOR  # several for: durations
    deadline = t0 + window
    while time.monotonic() < deadline:
        assert not matrix.recorder.snapshot(), matrix.recorder.snapshot()
        time.sleep(0.5)
    assert matrix.recorder.since(t0) == []
    matrix.results.append({"row": f"healthy run ({window:g} s)", "fired": [],
                           "time_to_firing_s": {}, "for_s": {}, "time_to_resolve_s": {}})


def test_every_dashboard_expression_returns_data(matrix):
    """Template variables substituted with "All", each expression asked as a time-series
    panel asks (a range query). The in-flight panel has data from the ORM stack (only the
    ORM broker leases tasks; on the Redis broker the panel says so)."""
    doc = json.loads((ROOT / "grafana" / "dashboards" / "django-q.json").read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    empty = []
    wait_for(lambda: matrix.prom.query("sum(django_q:tasks:rate5m) > 0"), 60, 0.5,
             what="task rate recorded")
    enqueue(matrix.env, "tests.task_funcs.boom", [(0,)])  # the failure-ratio panel's series
    wait_for(lambda: matrix.prom.query('django_q_tasks_failed_total{func="tests.task_funcs.boom"}'),
             60, 0.5, what="a failed task counted")
    for expr in exprs:
        q = (expr.replace("$cluster_name", ".*").replace("$host", ".*")
             .replace("$__rate_interval", "1m"))
        # As Grafana asks a time-series panel: a range query (the last minute).
        end = time.time()
        if not matrix.prom.api("/api/v1/query_range", query=q, start=end - 60, end=end,
                               step=1)["result"]:
            empty.append(q)
    assert empty == []


def test_rolling_deploy_fires_nothing(matrix):
    """node-a is replaced by node-c (graceful stop), node-b unchanged."""
    matrix.wait_quiet()
    t0 = time.monotonic()
    new = Node("node-c", matrix.env, matrix.workdir)
    new.start_exporter()
    new.start_cluster()
    new.wait_cluster_ready()
    matrix.nodes["node-c"] = new
    matrix.publish_targets()
    old = matrix.nodes.pop("node-a")
    old.stop_cluster()
    old.stop_exporter()
    t_old_gone = time.monotonic()
    matrix.publish_targets()
    gone = f"127.0.0.1:{old.port}"
    wait_for(lambda: gone not in matrix.prom.active_targets(), 30, 0.25,
             what="service discovery to drop node-a")
    t_sd = time.monotonic() - t_old_gone
    # Well past every for: of the rules and past node-a's Stat expiry.
    end = time.monotonic() + 3 * FOR
    while time.monotonic() < end:
        assert all(s != "firing" for s in matrix.recorder.snapshot().values())
        time.sleep(0.5)
    events = matrix.recorder.since(t0)
    assert all(s != "firing" for _, _, s in events), events
    pending_for = {}
    for t, k, s in events:
        if s == "pending":
            pending_for.setdefault(k, t)
        elif k in pending_for and s == "inactive":
            pending_for[k] = t - pending_for[k]
    assert all(isinstance(v, float) and v < 1e6 for v in pending_for.values())
    longest = max((v for v in pending_for.values() if v < 1e6), default=0.0)
    assert longest <= t_sd + 3 * SCRAPE + MARGIN, (pending_for, t_sd)
    matrix.results.append({"row": "rolling deploy (node-a -> node-c)", "fired": [],
                           "time_to_firing_s": {}, "for_s": {}, "time_to_resolve_s": {},
                           "pending_s": {k: round(v, 1) for k, v in pending_for.items()},
                           "service_discovery_s": round(t_sd, 1)})


def test_one_cluster_killed(matrix):
    node = matrix.nodes["node-b"]
    # Stat expiry (3 s) + stat grace (3 s) before the check fails. Acceptable: a unique
    # run in progress on node-b dies with it, so its heartbeat goes stale (a true page)
    # until node-a's next run takes the expired lock and replaces the record.
    matrix.run_row("one host's cluster killed", lambda: node.stop_cluster(sig_kill=True),
                   lambda: (node.start_cluster(), node.wait_cluster_ready()),
                   {matrix.down("node-b"): 6},
                   {matrix.key("DjangoQUniqueTaskHeartbeatStale", task=SLEEPER)})


def _kill_all(matrix):
    for node in matrix.nodes.values():
        node.stop_cluster(sig_kill=True)


def _start_all(matrix):
    for node in matrix.nodes.values():
        node.start_cluster()
    for node in matrix.nodes.values():
        node.wait_cluster_ready()


def _all_down(matrix) -> dict[str, float]:
    out = {matrix.down(h): 6 for h in matrix.nodes}
    out[matrix.key("DjangoQNoClusterUp", cluster_name=matrix.name)] = 6
    return out


#: The collectors that read the broker (the schedules one: the ORM broker's database).
BROKER_READERS = tuple(c.name for c in (ClusterCollector, QueueCollector,
                                        UniqueTaskCollector, ScheduleCollector))


def _collector_blips(matrix, nodes) -> set[str]:
    """At the scrape in which a stopped broker comes back, the collectors (parallel
    threads) and the broker check do not read at the same instant: a collector can still
    fail while the broker already answers, so CollectorFailing is pending for a scrape
    (seen once, ORM row: 1.1 s). It must never fire."""
    return {matrix.key("DjangoQExporterCollectorFailing", collector=c,
                       instance=f"127.0.0.1:{n.port}")
            for n in nodes for c in BROKER_READERS}


def _backlog_consequences(matrix) -> set[str]:
    """While no cluster runs, the producer's tasks wait and unique runs stop; a unique run
    in progress when its cluster was killed leaves a record whose heartbeat goes stale
    (a true page: its holder died mid-run)."""
    q = matrix.name
    return {matrix.key("DjangoQQueueLatencyHigh", queue=q),
            matrix.key("DjangoQQueueBacklogGrowing", queue=q),
            matrix.key("DjangoQUniqueTaskNoRecentSuccess", task=SLEEPER),
            matrix.key("DjangoQUniqueTaskHeartbeatStale", task=SLEEPER)}


def test_every_cluster_killed(matrix):
    matrix.run_row("every cluster killed", lambda: _kill_all(matrix),
                   lambda: _start_all(matrix), _all_down(matrix),
                   _backlog_consequences(matrix))


def test_cold_start_with_no_cluster(matrix):
    """Exporters restarted while no cluster runs: nothing was ever seen."""
    def fault():
        _kill_all(matrix)
        for node in matrix.nodes.values():
            node.stop_exporter()
            node.start_exporter()

    exporters_down = {matrix.key("DjangoQExporterDown", instance=f"127.0.0.1:{n.port}")
                      for n in matrix.nodes.values()}
    matrix.run_row("cold start, no cluster", fault, lambda: _start_all(matrix),
                   # startup grace (8 s) before "never seen" fails
                   {k: 8 for k in _all_down(matrix)},
                   _backlog_consequences(matrix) | exporters_down)


def test_monitor_stuck_with_work_pending(matrix):
    node = matrix.nodes["node-b"]
    state = {}

    def fault():
        state["pid"] = matrix.monitor_pid("node-b")
        os.kill(state["pid"], signal.SIGSTOP)

    def recover():
        os.kill(state["pid"], signal.SIGCONT)

    # Pending from the producer's next task on; progress limit 6 s.
    matrix.run_row("monitor stuck (SIGSTOP) with work pending", fault, recover,
                   {matrix.key("DjangoQClusterStuck", cluster_name=matrix.name,
                               host=node.host): 6 + 2})


def test_unique_task_holder_frozen(matrix):
    state = {}

    def fault():
        matrix.pause_producer()
        state["pid"] = matrix.freeze_long_run()
        return time.monotonic()  # the fault exists from the freeze on

    def recover():
        if "pid" in state:
            os.kill(state["pid"], signal.SIGCONT)  # finishes, having lost its lock
        matrix.resume_producer()

    matrix.run_row("unique-task holder frozen (SIGSTOP)", fault, recover,
                   {matrix.key("DjangoQUniqueTaskHeartbeatStale", task=SLEEPER): 2,
                    matrix.key("DjangoQUniqueTaskNoRecentSuccess", task=SLEEPER): 25},
                   # Frozen past the task timeout (30 s), the run is reincarnated as failed.
                   {matrix.key("DjangoQUniqueTaskLockLost", task=SLEEPER),
                    matrix.key("DjangoQTaskFailureRatioHigh", func="tests.unique_jobs.sleeper")})


def test_unique_task_registry_deleted(matrix):
    """The registry is gone (a Redis restart without persistence): the next run
    registers again, so a frozen holder still alerts."""
    state = {}
    registry = keys.registry_key(keys.unique_prefix(matrix.name))

    def fault():
        matrix.pause_producer()
        assert matrix.redis.client().delete(registry) == 1
        state["pid"] = matrix.freeze_long_run()
        frozen_at = time.monotonic()
        assert matrix.redis.client().hexists(registry, SLEEPER)
        return frozen_at

    def recover():
        if "pid" in state:
            os.kill(state["pid"], signal.SIGCONT)
        matrix.resume_producer()

    # Acceptable besides the lost lock: the previous row's frozen run of the same function
    # was reincarnated as failed at the task timeout, and that failure can still be in the
    # failure-ratio window here (seen once: pending 2 s into the row, fired at 12 s).
    matrix.run_row("unique-task registry deleted, then holder frozen", fault, recover,
                   {matrix.key("DjangoQUniqueTaskHeartbeatStale", task=SLEEPER): 2},
                   {matrix.key("DjangoQUniqueTaskLockLost", task=SLEEPER),
                    matrix.key("DjangoQUniqueTaskNoRecentSuccess", task=SLEEPER),
                    matrix.key("DjangoQTaskFailureRatioHigh",
                               func="tests.unique_jobs.sleeper")})


def test_failing_function(matrix):
    def fault():
        # rate() sees no increase in a counter's first sample: a function that never
        # failed before needs its failure series in Prometheus before the burst counts
        # (its first failures are invisible to the ratio; docs/operations.md).
        enqueue(matrix.env, "tests.task_funcs.boom", [(0,)])
        wait_for(lambda: matrix.prom.query(
            'django_q_tasks_failed_total{func="tests.task_funcs.boom"}'), 60, 0.5,
            what="the failure series in Prometheus")
        enqueue(matrix.env, "tests.task_funcs.boom", [(i,) for i in range(20)])

    # Acceptable: while both workers churn through the burst, a producer's unique run
    # (expiry 2 s) can miss a heartbeat and finish without its lock (seen once).
    matrix.run_row("failing function", fault, lambda: None,
                   {matrix.key("DjangoQTaskFailureRatioHigh",
                               func="tests.task_funcs.boom"): 2},
                   {matrix.key("DjangoQUniqueTaskLockLost", task=SLEEPER)})


def test_backlog_with_every_cluster_stopped(matrix):
    def fault():
        for node in matrix.nodes.values():
            node.stop_cluster()
        enqueue(matrix.env, "tests.task_funcs.quick", [(i,) for i in range(20)])

    expected = _all_down(matrix)
    q = matrix.name
    # Age passes queue_age_max (8 s); growth needs a deriv over 20 s.
    expected[matrix.key("DjangoQQueueLatencyHigh", queue=q)] = 8
    expected[matrix.key("DjangoQQueueBacklogGrowing", queue=q)] = 10
    matrix.run_row("backlog, every cluster stopped", fault, lambda: _start_all(matrix),
                   expected,
                   {matrix.key("DjangoQUniqueTaskNoRecentSuccess", task=SLEEPER)})


def test_schedule_overdue(matrix):
    """A schedule for a cluster name nobody runs: its next_run passes and stays past."""
    def fault():
        run_py(matrix.env, "from datetime import timedelta\nfrom django.utils import timezone\n"
                           "from django_q.models import Schedule\n"
                           "Schedule.objects.create(name='orphan', func='math.floor', "
                           "args='1.5', cluster='nobody', schedule_type=Schedule.HOURLY, "
                           "next_run=timezone.now() - timedelta(seconds=1))\n")

    def recover():
        run_py(matrix.env, "from django_q.models import Schedule\n"
                           "Schedule.objects.filter(name='orphan').delete()\n")

    matrix.run_row("schedule overdue", fault, recover,
                   {matrix.key("DjangoQScheduleOverdue", schedule="orphan"): 5})


def test_broker_stopped(matrix):
    def recover():
        matrix.redis.start()
        back = time.time()
        for node in matrix.nodes.values():
            if node.cluster is None or not node.cluster.alive():
                node.stop_cluster()
                node.start_cluster()
        for node in matrix.nodes.values():
            node.wait_cluster_ready(90)
        # Ready is not consuming: after a failed dequeue django-q2's pusher sleeps 10 s
        # before it exits and is reincarnated, and the next row must not inherit a queue
        # nobody takes from. Recovered = every cluster finished a task since Redis is back.
        finished = "django_q_cluster_last_task_finished_timestamp_seconds"
        wait_for(lambda: all((n.exporter.value(finished, host=n.host) or 0) > back
                             for n in matrix.nodes.values()), 60, 0.5,
                 what="every cluster finishing tasks again")

    # Acceptable: a unique run in progress when Redis went away loses its lock; right
    # after Redis returns (empty: no persistence) a cluster's first new Stat can take a
    # moment, so ClusterDown may be pending for a few seconds (measured 2 s; never firing).
    # The producer enqueues again at once while the pushers still sleep off their last
    # failed dequeue (up to 10 s): the queue grows and nothing finishes for a while, so
    # BacklogGrowing, ClusterStuck and (the head task waiting past the 8 s age limit)
    # QueueLatencyHigh can be pending (the matrix's progress limit is 6 s; measured
    # pending up to 10 s, never firing).
    matrix.run_row("broker (Redis) stopped", matrix.redis.stop, recover,
                   {matrix.key("DjangoQBrokerDown", broker="redis"): 1},
                   {matrix.key("DjangoQUniqueTaskLockLost", task=SLEEPER),
                    matrix.key("DjangoQUniqueTaskNoRecentSuccess", task=SLEEPER),
                    matrix.key("DjangoQQueueBacklogGrowing", queue=matrix.name),
                    matrix.key("DjangoQQueueLatencyHigh", queue=matrix.name),
                    *(matrix.down(h) for h in matrix.nodes),
                    *(matrix.key("DjangoQClusterStuck", cluster_name=matrix.name, host=h)
                      for h in matrix.nodes)},
                   pending_only=_collector_blips(matrix, matrix.nodes.values()))


def test_postgresql_stopped_for_the_orm_broker(matrix):
    """The ORM stack's PostgreSQL server stops: its broker, its Stats (the Django cache is
    a table there) and its schedules are gone at once."""
    node = matrix.orm

    def recover():
        matrix.orm_db.start()
        if node.cluster is None or not node.cluster.alive():
            node.stop_cluster()
            node.start_cluster()
        node.wait_cluster_ready(90)

    # Acceptable: the Stat in the cache table expired during the outage; when the server
    # is back the exporter reads the Stats before the sentinel's next save lands, so the
    # ORM cluster reads down for a moment (measured 1 s pending; never firing), as after
    # a Redis restart.
    matrix.run_row("broker (PostgreSQL, ORM broker) stopped", matrix.orm_db.stop, recover,
                   {matrix.key("DjangoQBrokerDown", broker="orm"): 1},
                   {matrix.key("DjangoQClusterDown", cluster_name=node.env["DJANGO_Q_NAME"],
                               host=node.host),
                    matrix.key("DjangoQNoClusterUp", cluster_name=node.env["DJANGO_Q_NAME"])},
                   pending_only=_collector_blips(matrix, [node]))


def test_database_stopped_while_the_broker_is_up(matrix):
    """The Redis stack's database server stops; Redis (broker, Stats, unique tasks) stays.
    The schedules collector reads django-q's Schedule table there and fails on every
    exporter of that stack, whose broker still answers: the one fault that pages as a
    collector failure."""
    failing = {matrix.key("DjangoQExporterCollectorFailing", collector="schedules",
                          instance=f"127.0.0.1:{n.port}"): 1 for n in matrix.nodes.values()}
    matrix.run_row("database (PostgreSQL) stopped, Redis broker up", matrix.database.stop,
                   matrix.database.start, failing, set())


def test_one_exporter_stopped(matrix):
    node = matrix.nodes["node-b"]
    matrix.run_row("one exporter stopped", node.stop_exporter, node.start_exporter,
                   {matrix.key("DjangoQExporterDown", instance=f"127.0.0.1:{node.port}"): 1})


def test_every_exporter_target_removed(matrix):
    matrix.run_row("every exporter target removed", lambda: matrix.prom.write_targets([]),
                   matrix.publish_targets,
                   {matrix.key("DjangoQNoExporterUp"): 2 * SCRAPE})


def test_secret_key_mismatch_including_after_restart(matrix):
    """The exporters run with another SECRET_KEY than the workers; then restart (as a
    deploy does) still misconfigured: the alert stays."""
    def restart(**env):
        for node in matrix.nodes.values():
            node.stop_exporter()
            node.start_exporter(**env)

    def fault():
        restart(DJANGO_SECRET_KEY="not-the-workers-key")

    mismatch = {matrix.key("DjangoQConfigMismatch", cluster_name=matrix.name, host=h): 2
                for h in matrix.nodes}
    exporters_down = {matrix.key("DjangoQExporterDown", instance=f"127.0.0.1:{n.port}")
                      for n in matrix.nodes.values()}

    def recover():
        restart(DJANGO_SECRET_KEY="not-the-workers-key")  # a second deploy, still wrong
        t = time.monotonic()
        wait_for(lambda: all(matrix.recorder.snapshot().get(k) == "firing" for k in mismatch)
                 and time.monotonic() - t > FOR, 60, 0.25,
                 what="ConfigMismatch still firing after the exporters restarted")
        restart()  # the workers' key
        for node in matrix.nodes.values():
            node.wait_cluster_ready()

    # Both exporters restart at once: ExporterDown and NoExporterUp may be pending
    # meanwhile (never firing: a restart takes less than their for:).
    matrix.run_row("SECRET_KEY mismatch, kept across an exporter restart", fault, recover,
                   mismatch, exporters_down | {matrix.key("DjangoQNoExporterUp")})


def test_every_alert_fired_in_some_row(matrix):
    fired = {k.split("{")[0] for r in matrix.results for k in r["fired"]}
    assert sorted(set(matrix.for_s) - fired) == []
