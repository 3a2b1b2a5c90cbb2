"""Per-function figures of this pod from the pod store's counters and histograms (pure),
and the memory of earlier readings that turns counters into rates.

Counters only say "how many since the store began"; a rate needs two readings.
The page keeps its earlier readings in this process's memory (``RateMemory``)
rather than showing totals alone: the first load of an exporter shows no rate
("measuring"), every later one a rate over the window between the readings
(about a minute when the page is open; longer, and said so, when it is
loaded rarely). Finished and failed counts, the failure ratio and the duration
quantiles are over everything the store holds, i.e. since the pod started.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from djq_contract import catalogue
from djq_contract.podstore import le_label

#: Rates are taken against the oldest reading at most this old ...
RATE_WINDOW = 60.0
#: ... and at least this old (two loads in the same second say nothing).
MIN_SPAN = 1.0

Rows = Iterable[tuple[str, str, str, float]]


@dataclass(frozen=True)
class FunctionTotals:
    finished: float
    failed: float
    #: (upper bound, observations in that bucket alone), ascending, +Inf last
    buckets: tuple[tuple[float, float], ...]


def _labels(raw: str) -> dict[str, str]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def function_totals(bounds: Sequence[float] | None, rows: Rows) -> dict[str, FunctionTotals]:
    """Totals per ``func`` label; ``bounds``: the duration histogram's finite bucket
    bounds as the store declares them (None: no histogram yet)."""
    finished: dict[str, float] = {}
    failed: dict[str, float] = {}
    per_bucket: dict[str, dict[str, float]] = {}
    duration = catalogue.TASK_DURATION.name
    for family, suffix, raw, value in rows:
        if family == catalogue.TASKS.name and suffix == "_total":
            func = _labels(raw).get("func")
            if func is not None:
                finished[func] = finished.get(func, 0.0) + value
        elif family == catalogue.TASKS_FAILED.name and suffix == "_total":
            func = _labels(raw).get("func")
            if func is not None:
                failed[func] = failed.get(func, 0.0) + value
        elif family == duration and suffix == "_bucket":
            labels = _labels(raw)
            func, le = labels.get("func"), labels.get("le")
            if func is not None and le is not None:
                counts = per_bucket.setdefault(func, {})
                counts[le] = counts.get(le, 0.0) + value
    les = [(float(b), le_label(b)) for b in (bounds or ())] + [(math.inf, "+Inf")]
    out = {}
    for func in sorted(set(finished) | set(failed) | set(per_bucket)):
        counts = per_bucket.get(func, {})
        out[func] = FunctionTotals(finished.get(func, 0.0), failed.get(func, 0.0),
                                   tuple((b, counts.get(le, 0.0)) for b, le in les))
    return out


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> tuple[float | None, bool]:
    """(value, past the last finite bound) of quantile ``q`` from non-cumulative buckets,
    interpolated linearly inside its bucket as PromQL's ``histogram_quantile`` does.
    None when the histogram is empty. A quantile in the +Inf bucket reads as the largest
    finite bound, flagged, because nothing is known beyond it."""
    total = sum(count for _, count in buckets)
    if total <= 0:
        return None, False
    rank = q * total
    cumulative, lower = 0.0, 0.0
    for upper, count in buckets:
        if count > 0 and cumulative + count >= rank:
            if math.isinf(upper):
                return lower, True
            return lower + (upper - lower) * (rank - cumulative) / count, False
        cumulative += count
        if not math.isinf(upper):
            lower = upper
    return lower, True


def lock_counts(rows: Rows) -> dict[str, dict[str, float]]:
    """This pod's lock counters per unique task: task -> outcome -> count."""
    families = {spec.name: outcome for outcome, spec in catalogue.LOCK_OUTCOMES.items()}
    out: dict[str, dict[str, float]] = {}
    for family, suffix, raw, value in rows:
        outcome = families.get(family)
        if outcome is None or suffix != "_total":
            continue
        task = _labels(raw).get("task")
        if task is not None:
            counts = out.setdefault(task, {})
            counts[outcome] = counts.get(outcome, 0.0) + value
    return out


class RateMemory:
    """Earlier readings of the finished counters, in this process's memory.

    ``rates(now, totals)`` answers per-minute rates against the oldest reading of
    the last ``window`` seconds (else the newest older one), then keeps this reading.
    Memory is bounded by the readings of one window (at most one per ``MIN_SPAN``).
    A counter lower than before was reset (the store was emptied): its whole value
    counts as new, as PromQL's ``rate`` does."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self._lock = threading.Lock()
        self._readings: list[tuple[float, dict[str, float]]] = []

    def rates(self, now: float, totals: Mapping[str, float]
              ) -> tuple[dict[str, float | None], float | None]:
        with self._lock:
            base = self._baseline(now)
            if not self._readings or now - self._readings[-1][0] >= MIN_SPAN:
                self._readings.append((now, dict(totals)))
            self._prune(now)
        if base is None:
            return {func: None for func in totals}, None
        then, old = base
        span = now - then
        out: dict[str, float | None] = {}
        for func, value in totals.items():
            before = old.get(func, 0.0)
            delta = value - before if value >= before else value
            out[func] = delta / span * 60.0
        return out, span

    def _baseline(self, now: float) -> tuple[float, dict[str, float]] | None:
        older = [r for r in self._readings if now - r[0] >= MIN_SPAN]
        if not older:
            return None
        within = [r for r in older if now - r[0] <= self.window]
        return within[0] if within else older[-1]

    def _prune(self, now: float) -> None:
        """Drop readings past the window but the newest of them: the baseline when the
        page is loaded less often than once a window."""
        old = [r for r in self._readings if now - r[0] > self.window]
        keep = [r for r in self._readings if now - r[0] <= self.window]
        self._readings = (old[-1:] if old else []) + keep
