"""Turn a registry into the text format the scraper asked for."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """Return (body, content type): OpenMetrics if accepted, else text 0.0.4."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
