"""The server's inline path: probes answered from memory on the event loop, the rest
(and a probe with nothing in memory) in the handler threads. A real server on a real
socket; the handlers are small functions standing in for the app's."""

from __future__ import annotations

import http.client
import threading

import pytest

from exporter.app import Request, Response
from exporter.server import Server


@pytest.fixture
def served():
    servers = []

    def start(routes, inline):
        server = Server("127.0.0.1", 0, routes, 64, 5.0, inline=inline)
        server.start()
        servers.append(server)
        return server.port

    yield start
    for s in servers:
        s.stop()


def get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_inline_answer_needs_no_handler_thread(served):
    """Every probe thread is blocked (a backend read hanging): an answer from memory
    still comes back, and a probe with nothing in memory goes on to the threads."""
    release = threading.Event()
    entered = threading.Semaphore(0)
    memory: dict[str, Response | None] = {"obs": None}

    def blocked(request: Request) -> Response:
        entered.release()
        release.wait(10)
        return Response(200, b"from a thread")

    port = served({"/healthz": blocked}, {"/healthz": lambda r: memory["obs"]})
    stuck = [threading.Thread(target=get, args=(port, "/healthz", 15)) for _ in range(8)]
    for t in stuck:
        t.start()
    for _ in stuck:  # all 8 probe threads are inside the hanging handler
        assert entered.acquire(timeout=5)
    try:
        memory["obs"] = Response(200, b"from memory")
        assert get(port, "/healthz") == (200, b"from memory")
        memory["obs"] = Response(503, b"false")
        assert get(port, "/healthz") == (503, b"false")
    finally:
        release.set()
        for t in stuck:
            t.join(15)
    memory["obs"] = None  # nothing in memory: the thread handler answers
    assert get(port, "/healthz") == (200, b"from a thread")


def test_inline_handler_that_raises_is_a_503_not_a_traceback(served):
    def broken(request: Request) -> Response | None:
        raise RuntimeError("boom")

    port = served({"/healthz": lambda r: Response(200, b"true")}, {"/healthz": broken})
    assert get(port, "/healthz") == (503, b"false")
