"""Turn a registry into the text format the scraper asked for.

The Prometheus text format (0.0.4) is written by a lean encoder of our own:
prometheus_client's generic one validates and escapes every metric and
label name on every sample (about 11 µs a sample, most of a large scrape),
which buys nothing here because all names come from our own collectors.
Label values are still escaped. OpenMetrics, which scrapers ask for
explicitly, goes through prometheus_client.
"""

from __future__ import annotations

from math import copysign

from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.utils import floatToGoString

#: What ``text()`` writes. Not prometheus_client's CONTENT_TYPE_LATEST, which names
#: text format 1.0.0 since 0.22 (and 0.0.4 before): the header must match the body.
TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
#: OpenMetrics versions we write; a request for any other gets the text format.
OPENMETRICS_VERSIONS = frozenset({"1.0.0"})

_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram",
          "summary": "summary", "unknown": "untyped", "untyped": "untyped",
          "stateset": "gauge", "info": "gauge", "gaugehistogram": "histogram"}


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")
    return value


_ZERO, _NEGATIVE_ZERO = floatToGoString(0.0), floatToGoString(-0.0)


def _labels_text(items: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(items))


def text(registry: CollectorRegistry) -> bytes:
    """Prometheus text format 0.0.4, sample for sample what generate_latest writes.

    Label sets and values repeat across families (a task's labels in nine of
    them, 0 and 1 everywhere), so each is formatted once per scrape."""
    out: list[str] = []
    labels_cache: dict[tuple, str] = {}
    values_cache: dict[float, str] = {}
    for metric in registry.collect():
        name = metric.name + ("_total" if metric.type == "counter" else "")
        if metric.type == "info":
            name = metric.name + "_info"
        doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {_TYPES.get(metric.type, 'untyped')}\n")
        for s in metric.samples:
            if s.name.endswith("_created"):
                continue
            v = s.value
            if not v:  # 0.0 and -0.0 are one dict key, and print differently
                value = _NEGATIVE_ZERO if copysign(1.0, v) < 0 else _ZERO
            else:
                value = values_cache.get(v)
                if value is None:
                    value = values_cache[v] = floatToGoString(v)
            if s.labels:
                items = tuple(s.labels.items())
                labels = labels_cache.get(items)
                if labels is None:
                    labels = labels_cache[items] = _labels_text(items)
                out.append(f"{s.name}{{{labels}}} {value}\n")
            else:
                out.append(f"{s.name} {value}\n")
    return "".join(out).encode("utf-8")


def wants_openmetrics(accept: str | None) -> bool:
    """True if the Accept header offers OpenMetrics in a version we write (none named
    means 1.0.0) with a q-value above 0. Only a yes or no comes out of the request:
    the Content-Type answered is one of two constants, never request bytes
    (prometheus_client's choose_encoder copies the requested version into it), and a
    malformed header is a plain no, never an error."""
    if not accept or "openmetrics" not in accept:
        return False
    for media_range in accept.split(","):
        kind, *params = media_range.split(";")
        if kind.strip().lower() != "application/openmetrics-text":
            continue
        version, q = "1.0.0", "1"
        for param in params:
            key, _, value = param.partition("=")
            key = key.strip().lower()
            if key == "version":
                version = value.strip().strip('"')
            elif key == "q":
                q = value.strip()
        if version in OPENMETRICS_VERSIONS and q not in ("0", "0.", "0.0", "0.00", "0.000"):
            return True
    return False


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """Return (body, content type): OpenMetrics 1.0.0 if accepted, else text 0.0.4."""
    if wants_openmetrics(accept):
        return openmetrics.generate_latest(registry), OPENMETRICS_CONTENT_TYPE
    return text(registry), TEXT_CONTENT_TYPE
