"""The alert rules' promtool unit tests, replayed with series as the per-pod layout
produces them (``--scope local`` on every worker pod, ``--scope cluster`` once).

``alerts.test.yml`` feeds the series as exporters with the default scope publish
them: every replica publishes everything. In the per-pod layout the cluster-wide
families (catalogue scope) and the collectors that fill them come from the
cluster-scope exporter, a different scrape target; per-pod families stay on the
worker pods' targets. The same expected alerts must fire, from both layouts, with
one cluster exporter or two replicas of it: this is what checks that no rule joins
a cluster-wide series with a per-pod one on ``instance``.
"""

from __future__ import annotations

import copy
import re

import yaml

from djq_contract import catalogue
from tests.integration.artifacts.test_alert_rules import (
    RULES,
    UNIT_TESTS,
    one_replica,
    promtool_test,
)

#: Collectors that run in the cluster-scope exporter only (exporter.app, per scope): their
#: collector_success / collector_duration series come from its target.
CLUSTER_COLLECTORS = {"clusters", "queue", "unique_tasks", "schedules"}
_SERIES = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{(?P<labels>.*)\}$")
_LABEL = re.compile(r'(\w+)\s*=\s*"([^"]*)"')
CLUSTER_WIDE = {spec.exposed for spec in catalogue.FAMILIES.values()
                if spec.scope == catalogue.CLUSTER_WIDE}


def _family(name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in catalogue.by_exposed_name():
            return name[: -len(suffix)]
    return name


def from_cluster_exporter(name: str, labels: dict[str, str]) -> bool:
    return _family(name) in CLUSTER_WIDE or labels.get("collector") in CLUSTER_COLLECTORS


def cluster_instance(instance: str) -> str:
    return f"cluster-{instance}"


def per_pod_layout(doc: dict) -> tuple[dict, int]:
    """The unit tests with cluster-wide series moved to cluster-exporter targets (one
    per replica the original had), expected alert labels following them."""
    doc = copy.deepcopy(doc)
    doc["rule_files"] = [str(RULES)]
    moved = 0
    for case in doc["tests"]:
        for s in case["input_series"]:
            m = _SERIES.match(s["series"].strip())
            if m is None:
                continue
            labels = dict(_LABEL.findall(m["labels"]))
            if "instance" in labels and from_cluster_exporter(m["name"], labels):
                labels["instance"] = cluster_instance(labels["instance"])
                moved += 1
                s["series"] = m["name"] + "{" + ",".join(
                    f'{k}="{v}"' for k, v in labels.items()) + "}"
        for check in case.get("alert_rule_test", []):
            for alert in check.get("exp_alerts", []):
                labels = alert.get("exp_labels", {})
                if "instance" in labels and labels.get("collector") in CLUSTER_COLLECTORS:
                    old = labels["instance"]
                    labels["instance"] = cluster_instance(old)
                    notes = alert.get("exp_annotations", {})
                    for key, text in notes.items():  # e.g. "Collector queue fails on e2"
                        notes[key] = re.sub(rf"\b{re.escape(old)}\b", labels["instance"], text)
    return doc, moved


def test_rules_alert_alike_in_the_per_pod_layout(tmp_path):
    doc = yaml.safe_load(UNIT_TESTS.read_text())
    layout, moved = per_pod_layout(doc)
    assert moved >= 20, "the unit tests should carry cluster-wide series with an instance"
    (tmp_path / "per-pod.test.yml").write_text(yaml.safe_dump(layout))
    result = promtool_test(tmp_path / "per-pod.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    # One cluster exporter instead of one per original replica.
    single, dropped = one_replica(layout, RULES)
    assert dropped >= 8
    (tmp_path / "per-pod-one.test.yml").write_text(yaml.safe_dump(single))
    result = promtool_test(tmp_path / "per-pod-one.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
