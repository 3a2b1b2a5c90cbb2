#!/usr/bin/env python3
"""Generate grafana/dashboards/django-q.json (run after editing; a test checks drift).

Kept as code so panels share one layout and one filter convention:
cluster-wide series are aggregated with ``max by``, per-pod counters summed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "dashboards" / "django-q.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'cluster_name=~"$cluster_name", host=~"$host"'


class Layout:
    def __init__(self) -> None:
        self.panels: list[dict] = []
        self.next_id = 1
        self.y = 0
        self.x = 0

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def row(self, title: str) -> None:
        if self.x:
            self.y += 8
            self.x = 0
        self.panels.append({"type": "row", "title": title, "id": self._id(), "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.y += 1

    def panel(self, title: str, description: str, targets: list[tuple[str, str]],
              kind: str = "timeseries", unit: str = "short", width: int = 8,
              no_value: str | None = None) -> None:
        if self.x + width > 24:
            self.y += 8
            self.x = 0
        # Tables show the current values, one row per series (instant, table format).
        table = {"instant": True, "range": False, "format": "table"} if kind == "table" else {}
        self.panels.append({
            "type": kind, "title": title, "description": description, "id": self._id(),
            "datasource": DS,
            "gridPos": {"h": 8, "w": width, "x": self.x, "y": self.y},
            "fieldConfig": {"defaults": {"unit": unit,
                                         **({"noValue": no_value} if no_value else {})},
                            "overrides": []},
            "options": {},
            "targets": [{"refId": chr(65 + i), "datasource": DS, "expr": expr,
                         "legendFormat": legend, **table}
                        for i, (expr, legend) in enumerate(targets)],
        })
        self.x += width


def variables() -> list[dict]:
    def query(name: str, expr: str) -> dict:
        return {"name": name, "label": name, "type": "query", "datasource": DS,
                "query": {"query": expr, "refId": name}, "refresh": 2,
                "includeAll": True, "multi": True, "allValue": ".*",
                "current": {"text": "All", "value": "$__all"}, "options": [], "sort": 1}

    return [
        {"name": "datasource", "label": "Data source", "type": "datasource",
         "query": "prometheus", "options": [], "refresh": 1},
        query("cluster_name", "label_values(django_q_cluster_up, cluster_name)"),
        query("host", 'label_values(django_q_cluster_up{cluster_name=~"$cluster_name"}, host)'),
    ]


def build() -> dict:
    L = Layout()
    L.row("Cluster health")
    L.panel("Clusters up", "Clusters (cluster_name, host) with a fresh Stat and status "
            "starting/idle/working.",
            [(f"sum(max by (cluster_name, host) (django_q_cluster_up{{{SEL}}}))", "up")],
            kind="stat", width=4)
    L.panel("Cluster up", "1 while the host's cluster is up; 0 when stopped, stale or expected "
            "but missing (cluster-wide view: a host gone in a rollout reads 0 until the "
            "exporters' --retention passes).",
            [(f"max by (host) (django_q_cluster_up{{{SEL}}})", "{{host}}")],
            width=10)
    L.panel("Status", "Current status of each cluster (state set: 1 = current).",
            [(f"max by (host, status) (django_q_cluster_status{{{SEL}}}) == 1",
              "{{host}} {{status}}")], kind="state-timeline", width=10)
    L.panel("Pods ready", "Each exporter's /readyz decision for its own cluster (1 = ready); "
            "a pod that goes away takes its line along. The paging alerts read these.",
            [(f"min by (host) (django_q_local_cluster_ready{{{SEL}}})", "{{host}}")], width=12)
    L.panel("Failing readiness checks", "How many pods fail each readiness check of their own "
            "cluster (0 = none); /readyz?verbose=1 on a pod gives the reasons.",
            [(f"sum by (check) (1 - min by (cluster_name, host, check) "
              f"(django_q_readiness_check{{{SEL}}}))", "{{check}}")], width=12)
    L.panel("Workers", "Live worker processes per cluster.",
            [(f"max by (host) (django_q_cluster_workers{{{SEL}}})", "{{host}}")])
    L.panel("Reincarnations", "Worker processes replaced (recycled, timed out or died) per "
            "interval.", [(f"max by (host) (increase(django_q_cluster_reincarnations_total"
                           f"{{{SEL}}}[$__rate_interval]))", "{{host}}")])
    L.panel("Since last finished task", "Seconds since the cluster last saved a task result; "
            "grows while a cluster with pending work is stuck.",
            [(f"time() - max by (host) (django_q_cluster_last_task_finished_timestamp_seconds"
              f"{{{SEL}}})", "{{host}}")], unit="s")
    L.panel("Stat age", "Seconds since each cluster's sentinel last saved its Stat (about "
            "every 0.5 s while alive; the Stat expires after 3 s).",
            [(f"time() - max by (host) (django_q_cluster_last_seen_timestamp_seconds{{{SEL}}})",
              "{{host}}")], unit="s")
    L.panel("Uptime", "Seconds since each cluster started; drops to 0 on a restart.",
            [(f"time() - max by (host) (django_q_cluster_start_time_seconds{{{SEL}}})",
              "{{host}}")], unit="s")
    L.panel("Cluster identity", "The current cluster id (new on every start) and django-q2 "
            "version of each cluster.",
            [(f"max by (cluster_name, host, cluster_id, django_q_version) "
              f"(django_q_cluster_info{{{SEL}}})", "")], kind="table")
    L.row("Queues")
    L.panel("Queue size", "Tasks waiting in the broker.",
            [("django_q:queue_size:max", "{{queue}}")], width=6)
    L.panel("In flight (ORM broker)", "Tasks leased by a cluster, not yet acknowledged. Only "
            "the ORM broker leases tasks: on the Redis broker this panel stays empty (a task "
            "leaves the queue when a cluster takes it; see the queue size and task rate).",
            [("max by (queue) (django_q_queue_in_flight)", "{{queue}}")], width=6,
            no_value="no leases (Redis broker)")
    L.panel("Oldest task age", "How long the task at the head of the queue has waited.",
            [("django_q:queue_oldest_task_age_seconds:max", "{{queue}}")], unit="s", width=6)
    L.panel("Broker up", "1 when the broker answered the exporter within its timeout.",
            [("max by (broker) (django_q_broker_up)", "{{broker}}")], width=6)
    L.row("Tasks")
    L.panel("Task rate", "Finished tasks per second by function, all pods.",
            [("sum by (func) (django_q:tasks:rate5m)", "{{func}}")], unit="ops")
    L.panel("Failure ratio", "Share of finished tasks that failed (timeouts included).",
            [("sum by (func) (django_q:tasks_failed:rate5m) / "
              "sum by (func) (django_q:tasks:rate5m)", "{{func}}")], unit="percentunit")
    L.panel("Schedules overdue", "Seconds each active schedule is past its next_run.",
            [("max by (schedule) (django_q_schedule_next_run_delay_seconds)", "{{schedule}}")],
            unit="s")
    L.panel("Duration p50 / p95", "Execution time in the worker, by function.",
            [("histogram_quantile(0.5, django_q:task_duration_seconds_bucket:rate5m)",
              "p50 {{func}}"),
             ("histogram_quantile(0.95, django_q:task_duration_seconds_bucket:rate5m)",
              "p95 {{func}}")], unit="s", width=12)
    L.panel("Queue wait p50 / p95", "Enqueue to execution start, by function.",
            [("histogram_quantile(0.5, django_q:task_queue_wait_seconds_bucket:rate5m)",
              "p50 {{func}}"),
             ("histogram_quantile(0.95, django_q:task_queue_wait_seconds_bucket:rate5m)",
              "p95 {{func}}")], unit="s", width=12)
    L.row("Unique tasks")
    L.panel("Running", "1 while a run of the unique task is in progress.",
            [("max by (task) (django_q_unique_task_running)", "{{task}}")], width=6)
    L.panel("Heartbeat age vs timeout", "Age of the running holder's last heartbeat; above "
            "the timeout the holder hangs or died.",
            [("max by (task) (django_q_unique_task_heartbeat_age_seconds)", "age {{task}}"),
             ("max by (task) (django_q_unique_task_heartbeat_timeout_seconds)",
              "timeout {{task}}")], unit="s", width=6)
    L.panel("Since last success", "Seconds since each unique task last completed without error.",
            [("time() - max by (task) (django_q_unique_task_last_success_timestamp_seconds)",
              "{{task}}")], unit="s", width=6)
    L.panel("Last run duration", "Length of the last completed run.",
            [("max by (task) (django_q_unique_task_last_duration_seconds)", "{{task}}")],
            unit="s", width=6)
    L.panel("Lock outcomes", "Runs per interval that took the lock, were skipped (contended), "
            "lost it mid-run, or hit a lock backend error; all pods.",
            [("sum by (task) (increase(django_q_unique_task_lock_acquired_total"
              "[$__rate_interval]))", "acquired {{task}}"),
             ("sum by (task) (increase(django_q_unique_task_lock_contended_total"
              "[$__rate_interval]))", "contended {{task}}"),
             ("sum by (task) (increase(django_q_unique_task_lock_lost_total"
              "[$__rate_interval]))", "lost {{task}}"),
             ("sum by (task) (increase(django_q_unique_task_lock_errors_total"
              "[$__rate_interval]))", "errors {{task}}")], width=24)
    L.row("Exporter")
    L.panel("Collector success", "1 when the collector's last run worked, per exporter.",
            [("min by (collector) (django_q_exporter_collector_success)", "{{collector}}")])
    L.panel("Collector duration", "Time each collector took in the last scrape (slowest "
            "exporter).", [("max by (collector) (django_q_exporter_collector_duration_seconds)",
                            "{{collector}}")], unit="s")
    L.panel("Rejected Stats", "Stats read but unusable: bad_signature means SECRET_KEY or "
            "cluster name differ from the workers'.",
            [("max by (reason) (django_q_exporter_stats_rejected)", "{{reason}}")])
    L.panel("Exporter versions", "Exporter, django-q2 and Python versions per instance.",
            [("max by (instance, version, django_q_version, python_version) "
              "(django_q_exporter_build_info)", "{{instance}} {{version}}")],
            kind="table", width=24)
    return {
        "uid": "django-q-exporter",
        "title": "django-q clusters",
        "description": "django-q2 clusters, queues, tasks and unique tasks "
                       "(django-q-exporter)",
        "tags": ["django-q", "django-q-exporter"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "templating": {"list": variables()},
        "annotations": {"list": []},
        "links": [],
        "panels": L.panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if OUT.exists() and OUT.read_text() == render() else 1)
    OUT.write_text(render())
