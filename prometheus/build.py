#!/usr/bin/env python3
"""Render the alerting/recording rules, the PrometheusRule, the dashboard and its ConfigMap.

    python prometheus/build.py                      # rewrite the committed files
    python prometheus/build.py --check              # exit 1 if they drifted
    python prometheus/build.py --overrides F --out D  # custom thresholds into D

Thresholds live in prometheus/thresholds.yml; a YAML file of overrides
replaces any of them. Cluster-wide series (clusters, queues, unique tasks,
schedules) are the same from every exporter replica, so rules aggregate
them with ``max``; per-pod counters are summed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RULES_FILE = HERE / "django-q.rules.yml"
PROMETHEUSRULE_FILE = ROOT / "k8s" / "prometheusrule.yaml"
DASHBOARD_FILE = ROOT / "grafana" / "dashboards" / "django-q.json"
DASHBOARD_CM_FILE = ROOT / "k8s" / "grafana-dashboard-configmap.yaml"


def recording_rules() -> list[dict]:
    return [
        {"record": "django_q:queue_size:max", "expr": "max by (queue) (django_q_queue_size)"},
        {"record": "django_q:queue_oldest_task_age_seconds:max",
         "expr": "max by (queue) (django_q_queue_oldest_task_age_seconds)"},
        {"record": "django_q:tasks:rate5m",
         "expr": "sum by (func) (rate(django_q_tasks_total[5m]))"},
        {"record": "django_q:tasks_failed:rate5m",
         "expr": "sum by (func) (rate(django_q_tasks_failed_total[5m]))"},
        {"record": "django_q:task_duration_seconds_bucket:rate5m",
         "expr": "sum by (func, le) (rate(django_q_task_duration_seconds_bucket[5m]))"},
        {"record": "django_q:task_queue_wait_seconds_bucket:rate5m",
         "expr": "sum by (func, le) (rate(django_q_task_queue_wait_seconds_bucket[5m]))"},
    ]


def _alert(name, expr, for_, severity, summary, description, anchor, t) -> dict:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook": f"{t['runbook_base']}#{anchor}",
        },
    }


def success_expr(t: dict) -> str:
    """Seconds since the last success beyond the task's own period.

    Tasks named in ``unique_success_max_age_by_task`` get their own limit; every
    other task the default ``unique_success_max_age`` (one rule, no per-task copy).
    """
    metric = "django_q_unique_task_last_success_timestamp_seconds"
    per_task = t["unique_success_max_age_by_task"] or {}
    if not isinstance(per_task, dict):
        raise SystemExit("build.py: unique_success_max_age_by_task must map task -> seconds")
    # json.dumps gives a double-quoted string with the escapes PromQL understands.
    parts = [f"time() - max by (task) ({metric}{{task={json.dumps(task)}}}) > {limit}"
             for task, limit in sorted(per_task.items())]
    others = ", ".join(f"task!={json.dumps(task)}" for task in sorted(per_task))
    parts.append(f"time() - max by (task) ({metric}{{{others}}}) "
                 f"> {t['unique_success_max_age']}" if others else
                 f"time() - max by (task) ({metric}) > {t['unique_success_max_age']}")
    return parts[0] if len(parts) == 1 else " or ".join(f"({part})" for part in parts)


#: The readiness checks that say whether a pod's own cluster runs at all (the others:
#: config, stats and broker have alerts of their own; progress is DjangoQClusterStuck).
RUNNING_CHECKS = "cluster_seen|status|workers|sentinel_process"


def local_recording_rules() -> list[dict]:
    """Per-pod views: published by each exporter about its own host only, so they vanish
    with the pod (a rolling deploy leaves nothing reading 0)."""
    return [
        {"record": "django_q:local_cluster_running:min",
         "expr": "min by (cluster_name, host) "
                 f"(django_q_readiness_check{{check=~\"{RUNNING_CHECKS}\"}})"},
        {"record": "django_q:local_config_ok:min",
         "expr": "min by (cluster_name, host) (django_q_readiness_check{check=\"config\"})"},
    ]


def alert_rules(t: dict) -> list[dict]:
    running = "django_q:local_cluster_running:min"
    config_bad = "django_q:local_config_ok:min == 0"
    return [
        # Paging on the cluster level reads each pod's own verdict (the series live with
        # the pod); the cluster-wide django_q_cluster_up only vetoes: a cluster some
        # exporter sees up on a host without an exporter of its own is still up.
        _alert("DjangoQNoClusterUp",
               f"(max by (cluster_name) ({running}) == 0"
               " unless on (cluster_name) max by (cluster_name) (django_q_cluster_up) == 1)"
               f" unless on (cluster_name) min by (cluster_name) ({config_bad})",
               t["for_no_cluster_up"], "critical",
               "No django-q cluster {{ $labels.cluster_name }} is up",
               "No exporter sees its own cluster named {{ $labels.cluster_name }} running "
               "(stopped, stale, crash-looping or never started), and none sees one "
               "elsewhere: no task of that name runs.", "djangoqnoclusterup", t),
        _alert("DjangoQClusterDown",
               f"{running} == 0 unless on (cluster_name, host) ({config_bad})",
               t["for_cluster_down"], "warning",
               "django-q cluster {{ $labels.cluster_name }} on {{ $labels.host }} is down",
               "The exporter on {{ $labels.host }} sees its own cluster stopped, stale, "
               "stuck starting or stopping, without workers, or its sentinel gone "
               "(/readyz?verbose=1 says which).", "djangoqclusterdown", t),
        _alert("DjangoQClusterStuck",
               "min by (cluster_name, host) (django_q_readiness_check{check=\"progress\"}) == 0"
               f" unless on (cluster_name, host) {running} == 0",
               t["for_cluster_stuck"], "critical",
               "django-q cluster on {{ $labels.host }} has work but finishes nothing",
               "Tasks are pending for the cluster on {{ $labels.host }} and none finished "
               "within the progress limit while the cluster reports itself running: a hung "
               "monitor or hung workers.", "djangoqclusterstuck", t),
        # An exporter without a local cluster (--scope cluster) publishes no readiness
        # checks: its rejected Stats page on their own, labelled by its target.
        _alert("DjangoQConfigMismatch",
               f"{config_bad} or ("
               "max by (job, instance) "
               "(django_q_exporter_stats_rejected{reason=\"bad_signature\"}) > 0"
               " unless on (job, instance) max by (job, instance) (django_q_readiness_check))",
               t["for_config_mismatch"], "critical",
               "django-q exporter {{ with $labels.host }}on {{ . }}{{ else }}"
               "{{ $labels.instance }}{{ end }} is misconfigured",
               "The exporter rejects the clusters' Stats (SECRET_KEY or Q_CLUSTER name "
               "differ from the workers', see django_q_exporter_stats_rejected) or found a "
               "configuration problem at start: it cannot tell whether clusters run.",
               "djangoqconfigmismatch", t),
        _alert("DjangoQQueueBacklogGrowing",
               f"deriv(django_q:queue_size:max[{t['backlog_window']}]) > 0 "
               f"and django_q:queue_size:max > {t['backlog_min']}",
               t["for_backlog_growing"], "warning",
               "django-q queue {{ $labels.queue }} keeps growing",
               "More tasks arrive than the clusters finish; the backlog is above "
               f"{t['backlog_min']} and rising.", "djangoqqueuebackloggrowing", t),
        _alert("DjangoQQueueLatencyHigh",
               f"django_q:queue_oldest_task_age_seconds:max > {t['queue_age_max']}",
               t["for_queue_latency"], "warning",
               "Tasks wait {{ $value | humanizeDuration }} in queue {{ $labels.queue }}",
               f"The task at the head of the queue has waited more than {t['queue_age_max']}s.",
               "djangoqqueuelatencyhigh", t),
        _alert("DjangoQTaskFailureRatioHigh",
               f"sum by (func) (rate(django_q_tasks_failed_total[{t['failure_ratio_window']}]))"
               f" / sum by (func) (rate(django_q_tasks_total[{t['failure_ratio_window']}]))"
               f" > {t['failure_ratio_max']}"
               f" and sum by (func) (rate(django_q_tasks_total[{t['failure_ratio_window']}]))"
               f" > {t['failure_min_rate']}",
               t["for_failure_ratio"], "warning",
               "{{ $value | humanizePercentage }} of {{ $labels.func }} tasks fail",
               f"More than {t['failure_ratio_max']} of the finished tasks of this function "
               "failed (timeouts included).", "djangoqtaskfailureratiohigh", t),
        _alert("DjangoQUniqueTaskHeartbeatStale",
               "max by (task) (django_q_unique_task_heartbeat_age_seconds) "
               "> max by (task) (django_q_unique_task_heartbeat_timeout_seconds)",
               t["for_heartbeat_stale"], "critical",
               "Unique task {{ $labels.task }} stopped beating",
               "A run of {{ $labels.task }} is in progress but its heartbeat is older than its "
               "lock expiry: the holder hangs or died mid-run.",
               "djangoquniquetaskheartbeatstale", t),
        _alert("DjangoQUniqueTaskNoRecentSuccess", success_expr(t),
               t["for_unique_no_success"], "warning",
               "Unique task {{ $labels.task }} has not succeeded recently",
               "No run of {{ $labels.task }} completed without error for "
               "{{ $value | humanizeDuration }}, longer than its expected period.",
               "djangoquniquetasknorecentsuccess", t),
        _alert("DjangoQUniqueTaskLockLost",
               "sum by (task) (increase(django_q_unique_task_lock_lost_total"
               f"[{t['lock_lost_window']}])) > 0",
               "0m", "warning",
               "Unique task {{ $labels.task }} lost its lock mid-run",
               "A run finished without owning its lock to the end (cache outage or expiry): "
               "two runs may have overlapped.", "djangoquniquetasklocklost", t),
        _alert("DjangoQScheduleOverdue",
               f"max by (schedule) (django_q_schedule_next_run_delay_seconds) "
               f"> {t['schedule_delay_max']}",
               t["for_schedule_overdue"], "warning",
               "Schedule {{ $labels.schedule }} is {{ $value | humanizeDuration }} overdue",
               "The schedule's next_run lies in the past: no cluster runs the scheduler, or "
               "it cannot keep up.", "djangoqscheduleoverdue", t),
        _alert("DjangoQBrokerDown", "max by (broker) (django_q_broker_up) == 0",
               t["for_broker_down"], "critical",
               "The django-q broker ({{ $labels.broker }}) does not answer",
               "No exporter gets an answer from the broker within its timeout.",
               "djangoqbrokerdown", t),
        _alert("DjangoQExporterDown", f"up{{job=\"{t['job']}\"}} == 0",
               t["for_exporter_down"], "warning",
               "django-q exporter {{ $labels.instance }} is down",
               "Prometheus cannot scrape the probe server.", "djangoqexporterdown", t),
        _alert("DjangoQNoExporterUp", f"absent(up{{job=\"{t['job']}\"}} == 1)",
               t["for_no_exporter_up"], "critical",
               "No django-q exporter is scraped",
               f"Prometheus has no target of job {t['job']} that it can scrape (all down, or "
               "none left in service discovery): every other django-q alert is blind.",
               "djangoqnoexporterup", t),
        _alert("DjangoQExporterCollectorFailing",
               "django_q_exporter_collector_success == 0"
               " unless on (instance, job) min by (instance, job) (django_q_broker_up) == 0",
               t["for_collector_failing"], "warning",
               "Collector {{ $labels.collector }} fails on {{ $labels.instance }}",
               "The exporter cannot read what this collector reports (see its log). Not "
               "raised while that exporter's broker is down: DjangoQBrokerDown covers it.",
               "djangoqexportercollectorfailing", t),
    ]


def groups(t: dict) -> dict:
    # One group: rules of a group run in order, so an alert that reads a recording
    # rule sees this evaluation's value (groups run independently and could lag).
    return {"groups": [{"name": "django-q", "rules": recording_rules()
                        + local_recording_rules() + alert_rules(t)}]}


def thresholds(overrides: Path | None) -> dict:
    t = yaml.safe_load((HERE / "thresholds.yml").read_text())
    if overrides:
        extra = yaml.safe_load(overrides.read_text()) or {}
        unknown = set(extra) - set(t)
        if unknown:
            raise SystemExit(f"build.py: unknown threshold(s) in {overrides}: "
                             f"{', '.join(sorted(unknown))}")
        t.update(extra)
    return t


def _grafana_build():
    """grafana/build.py as a module: the dashboard and its ConfigMap come from one render,
    so this one command regenerates every derived file, in any order of editing."""
    spec = importlib.util.spec_from_file_location("grafana_build", ROOT / "grafana" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dump(data) -> str:
    return yaml.safe_dump(data, sort_keys=False, width=100, allow_unicode=True)


def render(t: dict) -> dict[Path, str]:
    rules = groups(t)
    header = "# Generated by prometheus/build.py from thresholds.yml: do not edit.\n"
    prometheusrule = {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
        "metadata": {"name": "django-q", "labels": {"app.kubernetes.io/name": "django-q-worker",
                                                   "release": "prometheus"}},
        "spec": rules,
    }
    dashboard_text = _grafana_build().render()
    dashboard = json.loads(dashboard_text)
    configmap = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "django-q-dashboard", "labels": {"grafana_dashboard": "1"}},
        "data": {"django-q.json": json.dumps(dashboard, indent=1, sort_keys=True) + "\n"},
    }
    return {RULES_FILE: header + dump(rules),
            PROMETHEUSRULE_FILE: header + dump(prometheusrule),
            DASHBOARD_FILE: dashboard_text,
            DASHBOARD_CM_FILE: header + dump(configmap)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--overrides", type=Path)
    p.add_argument("--out", type=Path, help="write only the rules file, into this folder")
    p.add_argument("--check", action="store_true")
    a = p.parse_args(argv)
    outputs = render(thresholds(a.overrides))
    if a.out:
        a.out.mkdir(parents=True, exist_ok=True)
        (a.out / RULES_FILE.name).write_text(outputs[RULES_FILE])
        return 0
    drifted = [path for path, text in outputs.items()
               if not path.exists() or path.read_text() != text]
    if a.check:
        for path in drifted:
            print(f"build.py: {path.relative_to(ROOT)} is out of date", file=sys.stderr)
        return 1 if drifted else 0
    for path in drifted:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(outputs[path])
    return 0


if __name__ == "__main__":
    sys.exit(main())
