"""The RFC 9112 answers on the wire: one response per request, the connection
closed after an error, nothing smuggled through, and no client behaviour that
stalls the loop or locks the probes out."""

from __future__ import annotations

import base64
import socket
import threading
import time

import pytest

from exporter.server import PROBE_RESERVE
from tests.integration.http.conftest import exchange, statuses
from tests.procs import wait_for

H = b"Host: x\r\n"
LIVEZ = b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize("request_bytes, expected", [
    # CL.CL: answered once, as an error; the smuggled request is never answered.
    (b"GET /livez HTTP/1.1\r\n" + H + b"Content-Length: 44\r\nContent-Length: 0\r\n\r\n"
     b"GET /healthz?verbose=1 HTTP/1.1\r\n" + H + b"\r\n", [400]),
    (b"GET /livez HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n\r\n"
     b"0\r\n\r\nGET /metrics HTTP/1.1\r\n" + H + b"\r\n", [400]),
    (b"GET /livez HTTP/1.1\r\n" + H + b"Content-Length:\r\n\r\nGET /metrics HTTP/1.1\r\n" + H +
     b"\r\n", [400]),
    (b"GET /livez HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", [501]),
    (b"GET /livez HTTP/1.1\r\n" + H + b"X: a\rb\r\n\r\n", [400]),
    (b"GET /livez HTTP/1.1\r\n" + H + b"X: a\x00b\r\n\r\n", [400]),
    (b"GET /livez HTTP/1.1\r\n" + H + b"X y: a\r\n\r\n", [400]),
    (b"GET /livez HTTP/1.1\r\n\r\n", [400]),
    (b"GET /livez HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", [400]),
    (b"get /livez HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n", [501]),
    (b"\r\n" * 4 + b"GET /" + b"a" * 16_000 + b" HTTP/1.1\r\n" + H + b"\r\n", [414]),
    (b"\r\n" * 4 + b"GET /" + b"a" * 65_000 + b" HTTP/1.1\r\n" + H + b"\r\n", [414]),
    (b"GET /livez HTTP/1.1\r\n" + H + b"X-Dup: y\r\n" * 200 + b"\r\n", [431]),
    (b"GET /" + b"a" * 8000 + b" HTTP/1.1\r\n" + H + (b"X: " + b"c" * 8000 + b"\r\n") * 4 +
     b"\r\n", [431]),
    (b"GET http://[/metrics HTTP/1.1\r\n" + H + b"\r\n", [400]),
    (b"GET /met\trics HTTP/1.1\r\n" + H + b"\r\n", [400]),
    (b"GET /met\rrics HTTP/1.1\r\n" + H + b"\r\n", [400]),
    (b"GET //evil/livez HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n", [404]),
    (b"GET /metrics HTTP/1.1\r\n" + H + b"Authorization: Basic cHJvbTpzZWNyZXQ=\r\n"
     b"Authorization: Basic eDp5\r\n\r\n", [400]),
    (b"GET /metrics HTTP/1.1\r\n" + H + b"Authorization: Basic \xe9\xe9\r\nConnection: close"
     b"\r\n\r\n", [401]),
    # Stray empty lines between pipelined requests are skipped (RFC 9112 §2.2).
    (b"GET /livez HTTP/1.1\r\n" + H + b"\r\n\r\n\r\nGET /livez HTTP/1.0\r\n\r\n", [200, 200]),
])
def test_one_answer_per_request_then_close(server, request_bytes, expected):
    reply = exchange(server.port, request_bytes)
    assert statuses(reply) == expected, reply[:300]
    if expected[-1] >= 400:
        assert b"Connection: close" in reply


def test_basic_auth_still_works(server):
    good = base64.b64encode(b"prom:secret")
    reply = exchange(server.port, b"GET /metrics HTTP/1.1\r\n" + H + b"Authorization: Basic " +
                     good + b"\r\nConnection: close\r\n\r\n")
    assert statuses(reply) == [200] and b"\r\n\r\n# a metric line" in reply


def _probe_times(port: int, stop: threading.Event, out: list, failures: list) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        reply = exchange(port, LIVEZ, timeout=5)
        out.append(time.perf_counter() - t0)
        if statuses(reply) != [200]:
            failures.append(reply[:80])
        stop.wait(0.01)


def test_empty_line_flood_is_cut_at_the_head_budget(server):
    """8 clients sending 2 MiB of CRLF each: each is answered 400 once the head budget
    (32 KiB) is spent, and /livez keeps answering meanwhile."""
    stop, times, failures = threading.Event(), [], []
    prober = threading.Thread(target=_probe_times, args=(server.port, stop, times, failures))
    prober.start()
    try:
        replies = []

        def flood():
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
                try:
                    for _ in range(64):
                        s.sendall(b"\r\n" * 16384)
                except OSError:
                    pass
                s.settimeout(10)
                try:
                    replies.append(s.recv(4096))
                except OSError as exc:
                    replies.append(repr(exc).encode())

        floods = [threading.Thread(target=flood) for _ in range(8)]
        for t in floods:
            t.start()
        for t in floods:
            t.join(30)
    finally:
        stop.set()
        prober.join(10)
    assert len(replies) == 8
    for reply in replies:
        assert reply.startswith(b"HTTP/1.1 400"), reply[:80]
    assert failures == [] and len(times) >= 1
    print(f"/livez during the flood: {len(times)} probes, worst {max(times) * 1000:.1f} ms")
    assert max(times) < 1.0


def test_slow_readers_at_the_cap_never_lock_out_probes(serve):
    """Every slot taken by a client that pipelines requests and never reads: /livez on
    a new connection is answered 200 throughout (probe reserve, then eviction of the
    writers blocked longest), and the non-readers are dropped by the write deadline."""
    server = serve(max_connections=8, read_timeout=2.0)
    request = b"GET /metrics HTTP/1.1\r\n" + H + b"\r\n"
    readers = []
    for _ in range(8 + PROBE_RESERVE):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", server.port))
        s.setblocking(False)
        readers.append(s)
    try:
        def push():  # keep every pipe full: send until the kernel refuses
            for s in readers:
                try:
                    while True:
                        s.send(request * 256)
                except OSError:
                    pass

        push()
        wait_for(lambda: push() or server._main.writing, 10, 0.05,
                 what="a connection blocked writing")
        ok = 0
        deadline = time.monotonic() + 4.0
        while time.monotonic() < deadline:
            push()
            reply = exchange(server.port, LIVEZ, timeout=5)
            assert statuses(reply) == [200], reply[:80]
            ok += 1
        assert ok >= 10
        assert server.open_connections() <= 8 + PROBE_RESERVE

        def dropped(s):
            s.setblocking(True)
            s.settimeout(0.2)
            try:
                while s.recv(65536):
                    pass
                return True
            except ConnectionResetError:
                return True
            except TimeoutError:
                return False

        # The first slow reader: dropped (reset or closed) within the write deadline.
        wait_for(lambda: dropped(readers[0]), 10, 0.1, what="the slow reader dropped")
    finally:
        for s in readers:
            s.close()
