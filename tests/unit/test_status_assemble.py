"""Decisions of the status page, made without I/O: unique-task states, ordering,
failed sources, and the HTML that carries them (escaped, under its own policy)."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

from djq_contract.records import Holder
from exporter.health import CheckResult, HealthReport
from exporter.model import QueueReading
from exporter.sources.schedules import ScheduleRow
from exporter.sources.unique import Snapshot, TaskState
from exporter.status import html, jsonform
from exporter.status.assemble import Readings, assemble, unique_state
from exporter.status.model import Identity
from exporter.status.reader import Outcome
from exporter.tracker import ClusterTracker
from tests.factories import stat

EVIL = '<img src=x onerror="alert(1)">&amp;'
IDENT = Identity("0.1.0", "1.11", "3.11", "redis://:***@r/0", "rsr", "h1")


def task(name, holder=None, last_end=None, timeout=10.0, outcome=None):
    return TaskState(name, timeout, holder, last_end, None, outcome, None)


def test_unique_state_stale_once_the_beat_is_older_than_the_timeout():
    beating = task("t", Holder("h", 1, started=0.0, beat=95.0))
    assert unique_state(beating, now=105.0) == ("running", 10.0)
    assert unique_state(beating, now=105.5) == ("stale", 10.5)
    no_beat = task("t", Holder("h", 1, started=90.0))  # judged from the start
    assert unique_state(no_beat, now=101.0)[0] == "stale"
    assert unique_state(task("t", last_end=50.0), now=100.0) == ("idle", None)
    assert unique_state(task("t"), now=100.0) == ("never run", None)


def readings(**over) -> Readings:
    t = ClusterTracker("rsr", grace=5, retention=900)
    t.update([stat(host="gone")], now=10.0)
    views = t.update([stat(host="h1"), stat(host="h2")], now=100.0)
    snap = Snapshot(100.0, "redis", (
        task("quiet", last_end=1.0, outcome="success"),
        task(EVIL, Holder("h2", 7, started=50.0, beat=60.0)),
        task("busy", Holder("h1", 8, started=90.0, beat=99.0))), 2)
    base = dict(
        now=100.0,
        report=HealthReport(False, (CheckResult("broker", False, f"no: {EVIL}"),)),
        clusters=Outcome(views),
        queues=Outcome([QueueReading("rsr", 3, None, 40.0)]),
        unique=Outcome(snap),
        schedules=Outcome([ScheduleRow(1, "later", 200.0), ScheduleRow(2, EVIL, 70.0)]),
        functions=Outcome({}), locks=Outcome({EVIL: {"lost": 2.0}}))
    base.update(over)
    return Readings(**base)


def test_model_orders_what_needs_a_look_first():
    model = assemble(readings(), IDENT, refresh=5)
    assert [(c.host, c.local, c.up) for c in model.clusters.rows] == [
        ("h1", True, True), ("gone", False, False), ("h2", False, True)]
    assert [(t.name, t.state) for t in model.unique_tasks.rows] == [
        (EVIL, "stale"), ("busy", "running"), ("quiet", "idle")]
    assert model.unique_tasks.rows[0].lost == 2 and model.unique_tasks.rows[1].lost == 0
    assert [(s.name, s.delay) for s in model.schedules.rows] == [(EVIL, 30.0), ("later", 0.0)]
    assert model.queues.rows[0].oldest_age == 60.0


def test_a_failed_source_is_a_failed_section_not_old_rows():
    model = assemble(readings(unique=Outcome(error="TimeoutError: 1s"),
                              locks=Outcome(error="locked")), IDENT, refresh=5)
    assert not model.unique_tasks.ok and model.unique_tasks.rows == ()
    page = html.render(model).decode()
    assert '<p class="failed" id="unique-tasks-error">not read: TimeoutError: 1s</p>' in page
    assert jsonform.as_dict(model)["unique_tasks"] == {
        "ok": False, "error": "TimeoutError: 1s", "note": None, "rows": []}


def test_every_user_string_is_escaped_and_the_policy_hashes_match_the_page():
    page = html.render(assemble(readings(), IDENT, refresh=5)).decode()
    assert "<img" not in page
    assert page.count("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;amp;") == 3
    for tag, directive in (("style", "style-src"), ("script", "script-src")):
        (body,) = re.findall(rf"<{tag}>(.*?)</{tag}>", page, re.S)
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in html.CSP
    tags = _Tags()
    tags.feed(page)
    assert "img" not in tags.names and tags.names.count("script") == 1
    assert [a for a in tags.attributes if a == "style" or a.startswith("on")] == []


class _Tags(HTMLParser):
    """Every start tag and attribute name, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.attributes: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.names.append(tag)
        self.attributes += [name for name, _ in attrs]


def test_forgotten_tasks_are_left_out_and_an_absent_source_is_a_note_not_a_failure():
    old = TaskState("removed", 10.0, None, 1.0, None, "success", 1.0, seen=1.0)
    snap = Snapshot(100.0 + 14 * 86400, "redis", (old, task("kept")), 2)
    model = assemble(readings(unique=Outcome(snap),
                              functions=Outcome(note="no pod store here"),
                              locks=Outcome(note="no pod store here")), IDENT)
    assert [t.name for t in model.unique_tasks.rows] == ["kept"]
    assert model.unique_tasks.rows[0].lost is None  # not counted here, not zero
    assert model.functions.ok and model.functions.note == "no pod store here"
    page = html.render(model).decode()
    assert '<p class="empty" id="functions-note">no pod store here</p>' in page
    assert "functions: not read" not in page
