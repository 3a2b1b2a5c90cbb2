"""Readings in, a ``StatusModel`` out: every decision the page shows, without I/O.

What is up, stale or overdue is decided here, from the readings and their
clocks: cluster views from the page's own tracker, queue heads against this
host's clock, unique-task heartbeats against the clock their records were
written with (Redis ``TIME`` on Redis), schedules against this host's clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from djq_contract import forgetting
from exporter.health import HealthReport
from exporter.model import QueueReading
from exporter.sources.schedules import ScheduleRow
from exporter.sources.unique import Snapshot, TaskState
from exporter.status import model as m
from exporter.status.functions import FunctionTotals, quantile
from exporter.status.reader import Outcome
from exporter.tracker import ClusterView


@dataclass(frozen=True)
class Readings:
    """What one page load read (``Outcome.value`` types in the comments)."""

    now: float
    report: HealthReport
    clusters: Outcome  # Sequence[ClusterView], already folded into the page's tracker
    queues: Outcome  # Sequence[QueueReading]
    unique: Outcome  # Snapshot
    schedules: Outcome  # Sequence[ScheduleRow]
    functions: Outcome  # Mapping[str, FunctionTotals]
    locks: Outcome  # task -> outcome -> count (this pod)
    rates: Mapping[str, float | None] | None = None
    rate_window: float | None = None
    forget_after: float = forgetting.DEFAULT_FORGET_AFTER


def _section(outcome: Outcome, build) -> m.Section:
    if outcome.note is not None:
        return m.Section(note=outcome.note)
    if outcome.error is not None:
        return m.Section(error=outcome.error)
    return m.Section(rows=tuple(build(outcome.value)))


def _age(now: float, then: float | None) -> float | None:
    return None if then is None else max(0.0, now - then)


def clusters(views: Sequence[ClusterView], now: float, local_host: str,
             cluster_name: str) -> list[m.Cluster]:
    rows = []
    for v in views:
        stat = v.stat
        rows.append(m.Cluster(
            cluster_name=v.cluster_name, host=v.host,
            local=v.host == local_host and v.cluster_name == cluster_name, up=v.up,
            # A vanished cluster's last status would read as its current one.
            status=stat.status if stat and (v.up or v.present) else None,
            workers=len(stat.workers) if stat and v.up else 0,
            last_seen_age=_age(now, v.last_seen),
            reincarnations=stat.reincarnations if stat else None,
            uptime=_age(now, stat.started_at) if stat else None))
    # The local cluster first, then the down ones: what needs a look comes first.
    rows.sort(key=lambda c: (not c.local, c.up, c.cluster_name, c.host))
    return rows


def queues(readings: Iterable[QueueReading], now: float) -> list[m.Queue]:
    return [m.Queue(r.queue, r.size,
                    _age(now, r.oldest_enqueued_at) if r.size else None, r.in_flight)
            for r in readings]


def unique_state(task: TaskState, now: float) -> tuple[str, float | None]:
    """(state, heartbeat age): stale once the holder's last beat is older than the
    timeout, the condition the heartbeat-stale alert fires on."""
    holder = task.holder
    if holder is not None:
        beat = holder.beat if holder.beat is not None else holder.started
        age = _age(now, beat)
        return ("stale" if age is not None and age > task.timeout else "running"), age
    if task.last_end is None and task.last_success is None:
        return "never run", None
    return "idle", None


def unique_tasks(snap: Snapshot, locks: Outcome,
                 forget_after: float = forgetting.DEFAULT_FORGET_AFTER) -> list[m.UniqueTask]:
    """Every registered task but those forgotten (not seen for ``forget_after``), as the
    metrics leave them out."""
    counts = locks.value if locks.error is None and locks.note is None else None
    rows = []
    for task in snap.tasks:
        if forgetting.forgotten(task.seen, snap.now, forget_after):
            continue
        state, beat_age = unique_state(task, snap.now)
        mine = (counts or {}).get(task.name, {})
        holder = task.holder
        rows.append(m.UniqueTask(
            name=task.name, state=state,
            holder_host=holder.host if holder else None,
            holder_pid=holder.pid if holder else None,
            heartbeat_age=beat_age, timeout=task.timeout,
            run_age=_age(snap.now, holder.started) if holder else None,
            last_success_age=_age(snap.now, task.last_success),
            last_outcome=task.last_outcome, last_duration=task.last_duration,
            contended=None if counts is None else int(mine.get("contended", 0)),
            lost=None if counts is None else int(mine.get("lost", 0))))
    order = {s: i for i, s in enumerate(m.UNIQUE_STATES)}
    rows.sort(key=lambda t: (order[t.state], t.name))
    return rows


def schedules(rows: Iterable[ScheduleRow], now: float) -> list[m.Schedule]:
    out = [m.Schedule(r.name, None if r.next_run is None else r.next_run - now,
                      max(0.0, now - r.next_run) if r.next_run is not None else 0.0)
           for r in rows]
    out.sort(key=lambda s: (-s.delay, s.next_run_in is None, s.next_run_in or 0.0, s.name))
    return out


def functions(totals: Mapping[str, FunctionTotals],
              rates: Mapping[str, float | None] | None) -> list[m.Function]:
    rows = []
    for func, t in totals.items():
        p50, p50_over = quantile(0.5, t.buckets)
        p95, p95_over = quantile(0.95, t.buckets)
        rows.append(m.Function(
            func=func, finished=int(t.finished), failed=int(t.failed),
            rate_per_minute=(rates or {}).get(func),
            failure_ratio=t.failed / t.finished if t.finished else None,
            p50=p50, p95=p95, p50_over=p50_over, p95_over=p95_over))
    rows.sort(key=lambda f: (-(f.rate_per_minute or 0.0), -f.finished, f.func))
    return rows


def assemble(r: Readings, identity: m.Identity, refresh: int = 5) -> m.StatusModel:
    return m.StatusModel(
        generated_at=r.now, identity=identity, ready=r.report.ok,
        checks=tuple(r.report.checks),
        clusters=_section(r.clusters, lambda views: clusters(
            views, r.now, identity.host, identity.cluster_name)),
        queues=_section(r.queues, lambda rs: queues(rs, r.now)),
        unique_tasks=_section(r.unique, lambda snap: unique_tasks(snap, r.locks,
                                                                  r.forget_after)),
        schedules=_section(r.schedules, lambda rows: schedules(rows, r.now)),
        functions=_section(r.functions, lambda totals: functions(totals, r.rates)),
        rate_window=r.rate_window, refresh=refresh)
