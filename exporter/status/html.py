"""The status model as one self-contained HTML page (pure).

No external assets, so it works air-gapped and under the strictest policy:
``CSP`` allows only the page's own style and script, by hash (no inline
``style=`` attributes, no event handlers: the policy would block them). Every
string from users (cluster, host, queue, task, schedule and function names,
reasons) goes through ``escape``. States are words ("up", "stale",
"overdue"); colour is only a hint. The script reloads the page every
``refresh`` seconds while the tab is visible, and not while it is hidden (no
reload storm from background tabs); without script a ``<noscript>`` meta
refresh does the reloading.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Sequence
from html import escape

from exporter.status import fmt
from exporter.status.model import Section, StatusModel

#: Rows drawn per table; the JSON form always has them all.
MAX_ROWS = 2000

STYLE = """
:root{color-scheme:light dark;--fg:#1d232b;--muted:#5c6773;--bg:#fff;--panel:#f5f7f9;
--line:#dde2e7;--ok:#17663a;--okbg:#e3f4ea;--warn:#8a5300;--warnbg:#fdf1dc;--bad:#a1161e;
--badbg:#fde6e7;--idle:#3d4a57;--idlebg:#eceff2}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ec;--muted:#9aa5b1;--bg:#15191e;
--panel:#1e242b;--line:#313a44;--ok:#7fd6a0;--okbg:#173325;--warn:#f3c26b;--warnbg:#3a2c12;
--bad:#ff9b9f;--badbg:#431b1e;--idle:#c2ccd6;--idlebg:#27303a}}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}
header,main,footer{padding:0 24px}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 16px;padding-top:14px;
padding-bottom:10px;border-bottom:1px solid var(--line)}
header h1{font-size:18px;margin:0}
.meta{color:var(--muted)}
.verdict{margin:16px 0 6px;padding:12px 16px;border-radius:8px;border-left:8px solid;
display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 16px}
.verdict strong{font-size:26px;letter-spacing:.04em}
.verdict.ok{background:var(--okbg);border-color:var(--ok);color:var(--ok)}
.verdict.bad{background:var(--badbg);border-color:var(--bad);color:var(--bad)}
.summary{display:flex;flex-wrap:wrap;gap:8px;margin:10px 0 4px;padding:0;list-style:none}
.summary li{background:var(--panel);border:1px solid var(--line);border-radius:6px;
padding:4px 10px}
h2{font-size:15px;margin:22px 0 6px;display:flex;gap:10px;align-items:baseline}
h2 small{font-weight:normal;color:var(--muted)}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:5px 10px;border-bottom:1px solid var(--line);
vertical-align:top}
th{font-weight:600;color:var(--muted);background:var(--panel);white-space:nowrap}
td.n,th.n{text-align:right}
td.name{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px;
overflow-wrap:anywhere}
tbody tr:hover{background:var(--panel)}
.st{display:inline-block;min-width:4.8em;text-align:center;font-weight:600;
border-radius:4px;padding:0 6px;white-space:nowrap}
.ok{color:var(--ok)}.st.ok{background:var(--okbg)}
.warn{color:var(--warn)}.st.warn{background:var(--warnbg)}
.bad{color:var(--bad)}.st.bad{background:var(--badbg)}
.idle{color:var(--idle)}.st.idle{background:var(--idlebg)}
.failed{padding:8px 12px;border-radius:6px;background:var(--badbg);color:var(--bad)}
.empty{color:var(--muted);font-style:italic}
.dim{color:var(--muted)}
.here{font-size:11px;font-weight:600;color:var(--muted);border:1px solid var(--line);
border-radius:3px;padding:0 4px;margin-left:6px}
meter{width:70px;height:10px;vertical-align:middle;margin-left:6px}
footer{margin:28px 0 20px;color:var(--muted)}
a{color:inherit}
""".strip()

SCRIPT = (
    "(function(){var s=+document.documentElement.getAttribute('data-refresh');"
    "if(!(s>0))return;var due=Date.now()+s*1e3,t=0;"
    "function tick(){if(document.hidden)return;var w=due-Date.now();"
    "if(w>0){clearTimeout(t);t=setTimeout(tick,w);}else{location.reload();}}"
    "t=setTimeout(tick,s*1e3);document.addEventListener('visibilitychange',tick);})();")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


CSP = (f"default-src 'none'; style-src '{_sha256(STYLE)}'; script-src '{_sha256(SCRIPT)}'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
#: Sent with the page (see exporter.app).
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def e(value: object) -> str:
    return escape(str(value), quote=True)


def _state(word: str, tone: str) -> str:
    return f'<span class="st {tone}">{e(word)}</span>'


def _table(table_id: str, head: Sequence[tuple[str, bool]], section: Section,
           row: Callable[[object], str], empty: str) -> str:
    """A section's table; ``head``: (title, numeric?) per column."""
    if section.note is not None:
        return f'<p class="empty" id="{table_id}-note">{e(section.note)}</p>'
    if not section.ok:
        return (f'<p class="failed" id="{table_id}-error">not read: {e(section.error)}</p>')
    if not section.rows:
        return f'<p class="empty" id="{table_id}-empty">{e(empty)}</p>'
    ths = "".join(f'<th scope="col"{" class=n" if num else ""}>{e(title)}</th>'
                  for title, num in head)
    rows = [row(r) for r in section.rows[:MAX_ROWS]]
    more = ""
    if len(section.rows) > MAX_ROWS:
        more = (f'<p class="empty">{len(section.rows) - MAX_ROWS} more rows in '
                '<a href="status.json">status.json</a></p>')
    return (f'<div class="scroll"><table id="{table_id}"><thead><tr>{ths}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>{more}')


def _td(text: str, cls: str = "") -> str:
    return f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>"


# --- the sections -----------------------------------------------------------------------
def _checks(model: StatusModel) -> str:
    rows = "".join(
        f'<tr><td class="name">{e(c.name)}</td>'
        f'<td>{_state("pass", "ok") if c.ok else _state("FAIL", "bad")}</td>'
        f"<td>{e(c.reason)}</td></tr>" for c in model.checks)
    return ('<div class="scroll"><table id="checks"><thead><tr><th scope="col">check</th>'
            '<th scope="col">result</th><th scope="col">reason</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def _cluster(c) -> str:
    state = _state("up", "ok") if c.up else _state("down", "bad")
    here = '<span class="here">this pod</span>' if c.local else ""
    return ("<tr>" + _td(e(c.cluster_name), "name") + _td(e(c.host) + here, "name")
            + _td(state) + _td(e(c.status or "—")) + _td(fmt.count(c.workers), "n")
            + _td(fmt.ago(c.last_seen_age), "n") + _td(fmt.count(c.reincarnations), "n")
            + _td(fmt.duration(c.uptime), "n") + "</tr>")


def _queue(q) -> str:
    return ("<tr>" + _td(e(q.queue), "name") + _td(fmt.count(q.size), "n")
            + _td(fmt.duration(q.oldest_age), "n")
            + _td("n/a" if q.in_flight is None else fmt.count(q.in_flight), "n") + "</tr>")


_UNIQUE_TONES = {"stale": "bad", "running": "ok", "idle": "idle", "never run": "idle"}


def _unique(t) -> str:
    holder = "—"
    if t.holder_host is not None:
        holder = f"{e(t.holder_host)} pid {t.holder_pid}"
    if t.heartbeat_age is not None:
        beat = (f"{fmt.duration(t.heartbeat_age)} of {fmt.duration(t.timeout)}"
                f'<meter min="0" max="{t.timeout:g}" low="{t.timeout * 0.5:g}" '
                f'high="{t.timeout * 0.8:g}" optimum="0" '
                f'value="{min(t.heartbeat_age, t.timeout):g}"></meter>')
    else:
        beat = f'<span class="dim">limit {fmt.duration(t.timeout)}</span>'
    outcome = {"success": _state("success", "ok"), "failure": _state("failure", "bad")}.get(
        t.last_outcome or "", e(t.last_outcome or "—"))
    if t.last_duration is not None:
        outcome += f' <span class="dim">in {fmt.short_seconds(t.last_duration)}</span>'
    return ("<tr>" + _td(e(t.name), "name") + _td(_state(t.state, _UNIQUE_TONES[t.state]))
            + _td(holder, "name") + _td(fmt.duration(t.run_age), "n") + _td(beat, "n")
            + _td(fmt.ago(t.last_success_age), "n") + _td(outcome)
            + _td(fmt.count(t.contended), "n") + _td(fmt.count(t.lost), "n") + "</tr>")


def _schedule(s) -> str:
    if s.next_run_in is None:
        when, state = "—", _state("no next run", "idle")
    elif s.delay > 0:
        when, state = f"{fmt.duration(s.delay)} ago", _state("overdue", "warn")
    else:
        when, state = f"in {fmt.duration(s.next_run_in)}", _state("scheduled", "ok")
    return ("<tr>" + _td(e(s.name), "name") + _td(state) + _td(when, "n")
            + _td(fmt.duration(s.delay), "n") + "</tr>")


def _function(f) -> str:
    tone = "bad" if f.failure_ratio else ""
    p50 = ("> " if f.p50_over else "") + fmt.short_seconds(f.p50)
    p95 = ("> " if f.p95_over else "") + fmt.short_seconds(f.p95)
    return ("<tr>" + _td(e(f.func), "name") + _td(fmt.rate(f.rate_per_minute), "n")
            + _td(fmt.count(f.finished), "n") + _td(fmt.count(f.failed), "n")
            + _td(f'<span class="{tone}">{fmt.ratio(f.failure_ratio)}</span>'
                  if tone else fmt.ratio(f.failure_ratio), "n")
            + _td(e(p50), "n") + _td(e(p95), "n") + "</tr>")


# --- summary ----------------------------------------------------------------------------
def _counted(rows: Iterable, attr: str, value) -> int:
    return sum(1 for r in rows if getattr(r, attr) == value)


def summary(model: StatusModel) -> list[tuple[str, str]]:
    """(text, tone) per chip: one line per section, what needs a look first."""
    chips = []
    c = model.clusters
    if c.ok:
        up = _counted(c.rows, "up", True)
        down = len(c.rows) - up
        chips.append((f"clusters: {up} up, {down} down", "bad" if down else "ok"))
    q = model.queues
    if q.ok:
        waiting = sum(r.size for r in q.rows)
        oldest = max((r.oldest_age or 0.0 for r in q.rows), default=0.0)
        text = f"queued: {fmt.count(waiting)}"
        if waiting:
            text += f", oldest {fmt.duration(oldest)}"
        chips.append((text, "ok"))
    u = model.unique_tasks
    if u.ok:
        stale = _counted(u.rows, "state", "stale")
        running = _counted(u.rows, "state", "running")
        chips.append((f"unique tasks: {stale} stale, {running} running",
                      "bad" if stale else "ok"))
    s = model.schedules
    if s.ok:
        overdue = sum(1 for r in s.rows if r.delay > 0)
        chips.append((f"schedules: {overdue} overdue of {len(s.rows)}",
                      "warn" if overdue else "ok"))
    for name, section in (("clusters", c), ("queues", q), ("unique tasks", u),
                          ("schedules", s), ("functions", model.functions)):
        if not section.ok:
            chips.append((f"{name}: not read", "bad"))
    return chips


def render(model: StatusModel) -> bytes:
    ident = model.identity
    verdict_word = "READY" if model.ready else "NOT READY"
    failing = [c.name for c in model.checks if not c.ok]
    verdict_detail = (f"all {len(model.checks)} checks pass" if not failing else
                      f"{len(failing)} of {len(model.checks)} checks fail: "
                      + ", ".join(failing))
    refresh = (f"refreshes every {model.refresh} s" if model.refresh
               else "does not refresh")
    noscript = (f'<noscript><meta http-equiv="refresh" content="{model.refresh}">'
                "</noscript>" if model.refresh else "")
    chips = "".join(f'<li class="{tone}">{e(text)}</li>' for text, tone in summary(model))
    rate_note = ("rate: measuring, shown from the next load" if model.rate_window is None
                 else f"rate over the last {fmt.duration(model.rate_window)}")
    parts = [
        f'<!doctype html><html lang="en" data-refresh="{model.refresh}"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f"{noscript}<title>{e(verdict_word)} · {e(ident.cluster_name)} on {e(ident.host)}"
        f" · django-q</title><style>{STYLE}</style><script>{SCRIPT}</script></head><body>",
        f'<header><h1>django-q status</h1><span class="meta">cluster '
        f'<b>{e(ident.cluster_name)}</b> on <b>{e(ident.host)}</b> · '
        f'{e(fmt.utc(model.generated_at))} · {refresh}</span></header><main>',
        f'<section class="verdict {"ok" if model.ready else "bad"}" id="verdict">'
        f"<strong>{e(verdict_word)}</strong><span>{e(verdict_detail)}</span></section>",
        f'<ul class="summary" id="summary">{chips}</ul>',
        '<h2>Readiness <small>the checks behind /readyz for this pod\'s cluster</small></h2>',
        _checks(model),
        "<h2>Clusters <small>every host's cluster of this name</small></h2>",
        _table("clusters", [("cluster", False), ("host", False), ("state", False),
                            ("status", False), ("workers", True), ("last Stat", True),
                            ("reincarnations", True), ("running for", True)],
               model.clusters, _cluster, "no cluster seen yet"),
        "<h2>Queues <small>tasks waiting in the broker</small></h2>",
        _table("queues", [("queue", False), ("waiting", True), ("oldest", True),
                          ("in flight", True)], model.queues, _queue, "no queue found"),
        "<h2>Unique tasks <small>lock holders and heartbeats; contended and lost: this "
        "pod's counts</small></h2>",
        _table("unique-tasks", [("task", False), ("state", False), ("holder", False),
                                ("running for", True), ("heartbeat", True),
                                ("last success", True), ("last outcome", False),
                                ("contended", True), ("lost", True)],
               model.unique_tasks, _unique, "no unique task registered"),
        "<h2>Schedules <small>active schedules, most overdue first</small></h2>",
        _table("schedules", [("schedule", False), ("state", False), ("next run", True),
                             ("delay", True)], model.schedules, _schedule,
               "no active schedule"),
        f"<h2>Functions on this pod <small>{e(rate_note)}; counts and durations since "
        "the pod's store began</small></h2>",
        _table("functions", [("function", False), ("rate", True), ("finished", True),
                             ("failed", True), ("failure ratio", True), ("p50", True),
                             ("p95", True)], model.functions, _function,
               "no task finished on this pod yet"),
        '</main><footer><a href="metrics">/metrics</a> · <a href="status.json">'
        '/status.json</a> · <a href="readyz?verbose=1">/readyz</a> · <a href="livez?'
        f'verbose=1">/livez</a><br>exporter {e(ident.version)} · django-q2 '
        f"{e(ident.django_q_version)} · Python {e(ident.python_version)} · broker "
        f"{e(ident.broker)}</footer></body></html>\n",
    ]
    return "".join(parts).encode("utf-8")
