"""The status model as JSON (pure): the same data as the page, for scripts and chat-ops.

Field by field as the model names them (``docs/status-page.md`` documents
each); a section is ``{"ok": bool, "error": str|null, "rows": [...]}``.
Bumping ``SCHEMA`` tells scripts a field changed meaning or went away.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from functools import lru_cache

from exporter.status.model import Section, StatusModel

SCHEMA = 1


@lru_cache(maxsize=16)
def _names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _section(section: Section) -> dict:
    """Rows are flat dataclasses: read their fields directly (``asdict`` deep-copies
    every value, and was most of the time for a thousand rows)."""
    rows = []
    if section.rows:
        names = _names(type(section.rows[0]))
        rows = [{n: getattr(row, n) for n in names} for row in section.rows]
    return {"ok": section.ok, "error": section.error, "note": section.note, "rows": rows}


def as_dict(model: StatusModel) -> dict:
    return {
        "schema": SCHEMA,
        "generated_at": model.generated_at,
        "identity": asdict(model.identity),
        "ready": model.ready,
        "checks": [asdict(c) for c in model.checks],
        "clusters": _section(model.clusters),
        "queues": _section(model.queues),
        "unique_tasks": _section(model.unique_tasks),
        "schedules": _section(model.schedules),
        "functions": _section(model.functions),
        "rate_window": model.rate_window,
    }


def render(model: StatusModel) -> bytes:
    return json.dumps(as_dict(model), allow_nan=False).encode() + b"\n"
