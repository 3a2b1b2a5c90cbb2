"""The small HTML page at ``/``: links, build info and the clusters seen."""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable
from html import escape

from exporter import __version__
from exporter.tracker import ClusterView


def _ago(now: float, then: float | None) -> str:
    return "never" if then is None else f"{max(0.0, now - then):.1f}s ago"


def render(views: Iterable[ClusterView], broker: str, cluster_name: str, hostname: str,
           django_q_version: str, now: float | None = None) -> bytes:
    now = time.time() if now is None else now
    rows = []
    for v in views:
        stat = v.stat
        rows.append(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"
            .format(escape(v.cluster_name), escape(v.host),
                    "up" if v.up else "down", escape(v.status or "-"),
                    len(stat.workers) if stat else 0,
                    stat.reincarnations if stat else 0, _ago(now, v.last_seen)))
    table = "\n".join(rows) or '<tr><td colspan="7">no clusters seen yet</td></tr>'
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>django-q exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}
tr:nth-child(even){{background:#f4f4f4}}</style></head>
<body><h1>django-q exporter</h1>
<p><a href="/metrics">/metrics</a> · <a href="/healthz?verbose=1">/healthz</a> ·
<a href="/readyz?verbose=1">/readyz</a> · <a href="/livez?verbose=1">/livez</a></p>
<p>version {escape(__version__)} · django-q2 {escape(django_q_version)} ·
Python {escape(platform.python_version())} · broker {escape(broker)} ·
cluster name {escape(cluster_name)} · local host {escape(hostname)}</p>
<table><tr><th>cluster name</th><th>host</th><th>up</th><th>status</th><th>workers</th>
<th>reincarnations</th><th>last Stat</th></tr>
{table}
</table></body></html>
"""
    return page.encode("utf-8")
