"""Alert rules under promtool: N exporter replicas alert like one, per-task periods."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path

import yaml

from tests.procs import PYTHON, ROOT

PROM = ROOT / "prometheus"
RULES = PROM / "django-q.rules.yml"
UNIT_TESTS = PROM / "tests" / "alerts.test.yml"


def promtool_test(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True,
                          text=True, timeout=120)


def _series_key(series: str, values: str) -> tuple[str, str]:
    """The series without its instance label: equal keys = the same series from two
    exporter replicas."""
    return re.sub(r',?\s*instance="[^"]*"', "", series).replace("{,", "{"), values


def one_replica(doc: dict, rules: Path) -> tuple[dict, int]:
    """The unit tests with every replica duplicate (same labels but instance, same
    values) removed; returns the document and how many series were dropped."""
    doc = copy.deepcopy(doc)
    doc["rule_files"] = [str(rules)]
    dropped = 0
    for case in doc["tests"]:
        seen, kept = set(), []
        for s in case["input_series"]:
            key = _series_key(s["series"], str(s["values"]))
            if key in seen:
                dropped += 1
                continue
            seen.add(key)
            kept.append(s)
        case["input_series"] = kept
    return doc, dropped


def test_two_replicas_alert_like_one(tmp_path):
    """alerts.test.yml feeds most cluster-wide series from two exporter replicas (e1, e2).
    The same tests with one replica give the same alerts. With `max` swapped for `sum`
    one replica still passes but two do not: `max` is what makes N replicas equal one."""
    doc = yaml.safe_load(UNIT_TESTS.read_text())
    single, dropped = one_replica(doc, RULES)
    assert dropped >= 8, "the unit tests should carry replica duplicates"
    (tmp_path / "one.test.yml").write_text(yaml.safe_dump(single))
    two = copy.deepcopy(doc)
    two["rule_files"] = [str(RULES)]
    (tmp_path / "two.test.yml").write_text(yaml.safe_dump(two))
    for name in ("one.test.yml", "two.test.yml"):
        result = promtool_test(tmp_path / name)
        assert result.returncode == 0, name + result.stdout + result.stderr

    mutant = tmp_path / "sum.rules.yml"
    mutant.write_text(RULES.read_text().replace("max by", "sum by"))
    assert mutant.read_text() != RULES.read_text()
    single_m, _ = one_replica(doc, mutant)
    (tmp_path / "one-sum.test.yml").write_text(yaml.safe_dump(single_m))
    two_m = copy.deepcopy(doc)
    two_m["rule_files"] = [str(mutant)]
    (tmp_path / "two-sum.test.yml").write_text(yaml.safe_dump(two_m))
    result = promtool_test(tmp_path / "one-sum.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    result = promtool_test(tmp_path / "two-sum.test.yml")
    assert result.returncode != 0
    failed = set(re.findall(r"alertname: (\w+)", result.stdout + result.stderr))
    # Each of these reads a cluster-wide series whose sum over replicas changes the answer.
    assert {"DjangoQQueueLatencyHigh", "DjangoQUniqueTaskNoRecentSuccess",
            "DjangoQScheduleOverdue"} <= failed, failed


def test_unique_success_period_per_task(tmp_path):
    """A task with its own expected period (thresholds override) alerts after it; every
    other task keeps the default; one rule covers both."""
    overrides = tmp_path / "o.yml"
    overrides.write_text("unique_success_max_age: 86400\n"
                         "unique_success_max_age_by_task: {reports.hourly: 7200}\n"
                         "for_unique_no_success: 0m\n")
    subprocess.run([PYTHON, "prometheus/build.py", "--overrides", str(overrides), "--out",
                    str(tmp_path)], cwd=ROOT, check=True, timeout=60)
    rules = yaml.safe_load((tmp_path / "django-q.rules.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"]
              if r.get("alert") == "DjangoQUniqueTaskNoRecentSuccess"]
    assert len(alerts) == 1
    metric = "django_q_unique_task_last_success_timestamp_seconds"
    runbook = ("https://github.com/akvo/django-q-exporter/blob/main/docs/operations.md"
               "#djangoquniquetasknorecentsuccess")

    def fired(task: str, since: str) -> dict:
        return {"exp_labels": {"severity": "warning", "task": task},
                "exp_annotations": {
                    "summary": f"Unique task {task} has not succeeded recently",
                    "description": f"No run of {task} completed without error for {since}, "
                                   "longer than its expected period.",
                    "runbook": runbook}}

    # Last success at 0 for both; evaluated at 1h, 3h and 25h.
    unit = {
        "rule_files": [str(tmp_path / "django-q.rules.yml")],
        "evaluation_interval": "1h",
        "tests": [{
            "interval": "1h",
            "input_series": [
                {"series": f'{metric}{{task="reports.hourly",instance="e1"}}',
                 "values": "0x30"},
                {"series": f'{metric}{{task="nightly",instance="e1"}}', "values": "0x30"},
            ],
            "alert_rule_test": [
                {"eval_time": "1h", "alertname": "DjangoQUniqueTaskNoRecentSuccess",
                 "exp_alerts": []},
                {"eval_time": "3h", "alertname": "DjangoQUniqueTaskNoRecentSuccess",
                 "exp_alerts": [fired("reports.hourly", "3h 0m 0s")]},
                {"eval_time": "25h", "alertname": "DjangoQUniqueTaskNoRecentSuccess",
                 "exp_alerts": [fired("nightly", "1d 1h 0m 0s"),
                                fired("reports.hourly", "1d 1h 0m 0s")]},
            ],
        }],
    }
    path = tmp_path / "period.test.yml"
    path.write_text(yaml.safe_dump(unit))
    result = promtool_test(path)
    assert result.returncode == 0, result.stdout + result.stderr
