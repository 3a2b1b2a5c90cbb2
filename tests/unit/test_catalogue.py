"""The metric catalogue: well-formed entries, the README table generated from it, and the
collectors building their families from it (pure: in-memory sources, a SQLite pod store)."""

from __future__ import annotations

import subprocess

import pytest

from djq_contract import catalogue
from djq_contract.podstore import PodStore, Update, labels_of
from djq_contract.records import Holder
from exporter.collectors.clusters import ClusterCollector
from exporter.collectors.pod import PodStoreCollector
from exporter.collectors.queues import QueueCollector
from exporter.collectors.schedules import ScheduleCollector
from exporter.collectors.unique_tasks import UniqueTaskCollector
from exporter.model import ClusterStat, QueueReading, StatsReading
from exporter.sources.schedules import ScheduleRow
from exporter.sources.unique import Snapshot, TaskState
from exporter.tracker import ClusterTracker
from tests.procs import PYTHON, ROOT


class Returns:
    """A source that returns one fixed reading (the collectors' input, without I/O)."""

    def __init__(self, reading) -> None:
        self.reading = reading

    def read(self):
        return self.reading


def assert_declared(families) -> None:
    """Each family as the catalogue declares it: type, help, and the label names of
    every sample (histograms add ``le`` to their buckets)."""
    for fam in families:
        spec = catalogue.FAMILIES[fam.name]
        assert (fam.type, fam.documentation) == (spec.type, spec.help), fam.name
        for sample in fam.samples:
            assert set(sample.labels) - {"le"} == set(spec.labels), (fam.name, sample)


def test_readme_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    assert "\n## Metric reference\n" in readme
    section = readme.split("\n## Metric reference\n", 1)[1]
    assert catalogue.table_in(section) == catalogue.markdown()


def test_generator_prints_and_splices_the_table(tmp_path):
    out = subprocess.run([PYTHON, "-m", "djq_contract.catalogue", "--markdown"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out == catalogue.markdown()
    assert out.count("\n| `django_q_") == len(catalogue.FAMILIES)
    assert "| `django_q_tasks_total` | counter | func | per pod |" in out
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{catalogue.BEGIN}\n| stale |\n{catalogue.END}\nafter\n")
    subprocess.run([PYTHON, "-m", "djq_contract.catalogue", "--readme", str(readme)],
                   cwd=ROOT, timeout=60, check=True)
    assert readme.read_text() == f"# x\n{catalogue.BEGIN}\n{out}{catalogue.END}\nafter\n"
    readme.write_text("no markers\n")
    bad = subprocess.run([PYTHON, "-m", "djq_contract.catalogue", "--readme", str(readme)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "metrics:begin" in bad.stderr
    assert readme.read_text() == "no markers\n"


@pytest.mark.parametrize("args, why", [
    (("django_q_cluster_up", "gauge", (), "x", catalogue.CLUSTER_WIDE), "duplicate"),
    (("queue_size", "gauge", (), "x", catalogue.CLUSTER_WIDE), "prefix"),
    (("django_q_x", "summary", (), "x", catalogue.CLUSTER_WIDE), "type"),
    (("django_q_x", "gauge", (), "x", "global"), "scope"),
    (("django_q_x_total", "counter", (), "x", catalogue.PER_POD), "_total"),
    (("django_q_x_seconds", "histogram", (), "x", catalogue.PER_POD), "buckets"),
])
def test_malformed_entries_are_refused(args, why):
    before = dict(catalogue.FAMILIES)
    with pytest.raises(ValueError):
        catalogue._declare(*args)
    assert catalogue.FAMILIES == before, why


def test_scopes_and_exposed_names():
    assert catalogue.TASKS.exposed == "django_q_tasks_total"
    assert catalogue.TASK_DURATION.exposed == "django_q_task_duration_seconds"
    assert catalogue.QUEUE_SIZE.scope == catalogue.CLUSTER_WIDE
    assert all(spec.scope == catalogue.PER_POD for spec in catalogue.LOCK_OUTCOMES.values())
    assert catalogue.UNIQUE_TASK_CAP.size({}) == 500
    assert catalogue.UNIQUE_TASK_CAP.size({"DJANGO_Q_EXPORTER_UNIQUE_TASK_CAP": "7"}) == 7


def test_collectors_build_their_families_from_the_catalogue():
    stat = ClusterStat("rsr", "h1", "c1", "idle", (1, 2), 9, 10, 11, 12, 0, 900.0, 1000.0, 0, 0)
    clusters = ClusterCollector(Returns(StatsReading((stat,))), ClusterTracker("rsr", 5, 60),
                                "1.0", clock=lambda: 1000.0)
    queue = QueueCollector(Returns((QueueReading("q", 3, 1, 990.0),)), "orm", "q",
                           clock=lambda: 1000.0)
    running = TaskState("t", 30.0, Holder("h1", 7, 990.0, 995.0), 980.0, 5.0, "success", 980.0)
    unique = UniqueTaskCollector(Returns(Snapshot(1000.0, "redis", (running,), 2)))
    schedules = ScheduleCollector(Returns([ScheduleRow(1, "s", 900.0)]), clock=lambda: 1000.0)
    families = [f for c in (clusters, queue, unique, schedules) for f in c.collect()]
    assert_declared(families)
    seen = {f.name for f in families if f.samples}
    assert seen >= {"django_q_cluster_up", "django_q_queue_in_flight",
                    "django_q_unique_task_heartbeat_age_seconds",
                    "django_q_schedule_next_run_delay_seconds"}


def test_pod_families_and_zero_baseline_come_from_memory(tmp_path):
    """Registered unique tasks read 0 where this pod's workers counted nothing; a row the
    workers wrote wins; the scrape writes nothing to the store."""
    store = PodStore(str(tmp_path / "pod.sqlite3"))
    acquired = catalogue.LOCK_OUTCOMES["acquired"]
    store.declare(acquired.name, "counter", "help a worker of another version wrote")
    store.apply([Update(acquired.name, "_total", labels_of(task="a"), 2.0)])
    unique = UniqueTaskCollector(Returns(Snapshot(0.0, "redis", (
        TaskState("a", 5.0, None, None, None, None, None),
        TaskState("b", 5.0, None, None, None, None, None),
        TaskState("c", 5.0, None, None, None, None, None)), 2)), task_cap=2)
    pod = PodStoreCollector(store, unique.lock_counter_baseline)
    (only,) = pod.collect()  # no unique-task read yet: only what the store holds
    assert [(s.labels, s.value) for s in only.samples] == [({"task": "a"}, 2.0)]
    unique.collect()
    families = {f.name: f for f in pod.collect()}
    assert_declared(families.values())
    values = {(n, s.labels["task"]): s.value for n, f in families.items() for s in f.samples}
    assert values == {(spec.name, task): (2.0 if (spec, task) == (acquired, "a") else 0.0)
                      for spec in catalogue.LOCK_OUTCOMES.values() for task in "ab"}
    assert store.value(acquired.name, "_total", {"task": "b"}) is None
    assert set(store.read()[0]) == {acquired.name}, "nothing declared by the scrape"
