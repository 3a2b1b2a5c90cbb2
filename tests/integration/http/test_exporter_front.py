"""The real exporter's /metrics under hostile Accept headers: the Content-Type comes
from a fixed set, a malformed version is an ordinary answer (text format), and
nothing is logged per request."""

from __future__ import annotations

import re

from tests.integration.http.conftest import exchange

TEXT = b"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
OPENMETRICS = b"Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"


def test_accept_header_never_reaches_the_response(make_env, procs):
    exporter = procs.exporter(make_env("sqlite"))
    exporter.wait_ready_to_serve()

    def scrape(accept: bytes) -> bytes:
        return exchange(exporter.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: " + accept
                        + b"\r\nConnection: close\r\n\r\n")

    for _ in range(10):
        for accept in (b"application/openmetrics-text;version=1.0.x",
                       b"application/openmetrics-text;version=<script>alert(1)</script>",
                       b"application/openmetrics-text;version=2.0;escaping=\xff",
                       b"application/openmetrics-text;version"):
            reply = scrape(accept)
            assert reply.startswith(b"HTTP/1.1 200") and TEXT in reply, reply[:200]
            assert b"<script>" not in reply.partition(b"\r\n\r\n")[0]
    reply = scrape(b"application/openmetrics-text;version=1.0.0")
    assert reply.startswith(b"HTTP/1.1 200") and OPENMETRICS in reply and b"# EOF" in reply
    # A bare CR cannot smuggle a header into the answer: the request is refused.
    injected = scrape(b"application/openmetrics-text;version=2.0\rSet-Cookie: X=1")
    assert injected.startswith(b"HTTP/1.1 400") and b"Set-Cookie" not in injected
    log = exporter.output()
    assert not re.search(r" (ERROR|CRITICAL) ", log), log[-2000:]
    assert "Traceback" not in log
