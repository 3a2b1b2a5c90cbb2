"""Hostile input against the running server (loopback only, bounded in count and time).

Throughout, a separate process opens a fresh connection to /livez every 20 ms and
records how long the answer took: every probe must be answered well inside the shipped
probes' 2 s timeout (a stalled event loop shows as seconds). Typical latencies under
attack are measured by the bench, not asserted here: a loaded machine adds tens of ms.
"""

from __future__ import annotations

import multiprocessing
import socket
import time

import pytest

from tests.procs import wait_for

PROBE_LIMIT = 1.0  # half of k8s/deployment.yaml's probe timeoutSeconds: 2
LIVEZ = b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def raw(port: int, data: bytes, timeout: float = 5.0, read_all: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if not read_all:
                    break
        except TimeoutError:
            pass
        return b"".join(chunks)


def status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def _probe_loop(port: int, halt, out) -> None:
    """Runs in its own process, so the attacks' own CPU use in the test process cannot
    delay the measurement (the GIL would)."""
    latencies, failures = [], []
    while not halt.is_set():
        t0 = time.perf_counter()
        try:
            reply = raw(port, LIVEZ, timeout=2)
            if not reply.startswith(b"HTTP/1.1 200"):
                failures.append(reply[:60].decode("latin-1"))
        except OSError as exc:
            failures.append(repr(exc))
        latencies.append(time.perf_counter() - t0)
        out.put(("progress", len(latencies)))
        halt.wait(0.02)
    out.put(("done", (latencies, failures)))


class Prober:
    def __init__(self, port: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self.halt = ctx.Event()
        self.out = ctx.Queue()
        self.proc = ctx.Process(target=_probe_loop, args=(port, self.halt, self.out),
                                daemon=True)
        self.count = 0

    def start(self) -> None:
        self.proc.start()

    def probes(self) -> int:
        while not self.out.empty():
            kind, value = self.out.get()
            if kind == "progress":
                self.count = value
        return self.count

    def stop(self) -> tuple[list[float], list[str]]:
        self.halt.set()
        while True:
            kind, value = self.out.get(timeout=10)
            if kind == "done":
                self.proc.join(5)
                return value


@pytest.fixture
def server(make_env, procs):
    env = make_env("sqlite")
    exporter = procs.exporter(env, "--read-timeout", "2")
    exporter.wait_ready_to_serve()
    prober = Prober(exporter.port)
    prober.start()
    yield exporter
    wait_for(lambda: prober.probes() >= 10, 10, what="at least 10 probes measured")
    latencies, failures = prober.stop()
    assert exporter.alive(), exporter.output()
    assert failures == []
    worst = max(latencies)
    assert worst < PROBE_LIMIT, (f"slowest /livez {worst * 1000:.1f} ms over "
                                 f"{len(latencies)} probes")
    assert "Traceback" not in exporter.output()


def test_malformed_and_oversized_requests(server):
    port = server.port
    cases = [
        (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 10_000 + b"\r\n\r\n", 431),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\n"
         + b"".join(b"X-%d: y\r\n" % i for i in range(100)) + b"\r\n", 431),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /livez\r\n\r\n", 400),
        (b"GET /livez HTTP/2.0\r\n\r\n", 505),
        (b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /li\x00vez HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", 400),
        (b"BREW /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 501),
        (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 405),
        (b"DELETE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 400),
        (b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
        (b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
        (b"GET /metrics/../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
    ]
    for request, expected in cases:
        reply = raw(port, request)
        assert status(reply) == expected, (request[:40], reply[:80])
        head, _, body = reply.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        assert length == len(body)
        assert b"Traceback" not in reply and b"File \"" not in reply
    allow = raw(port, b"PUT /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert b"Allow: GET, HEAD" in allow


def test_pipelining_keepalive_http10_and_head(server):
    port = server.port
    three = raw(port, b"GET /livez HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"GET /livez HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    statuses = [int(part.split(b" ", 2)[1]) for part in three.split(b"HTTP/1.1 ")[1:]
                if part[:3].isdigit() for part in [b"x " + part]]
    assert statuses == [200, 404, 200]
    # HTTP/1.0 without keep-alive: the server closes after one answer.
    one = raw(port, b"GET /livez HTTP/1.0\r\n\r\n")
    assert one.startswith(b"HTTP/1.1 200") and b"Connection: close" in one
    # HTTP/1.0 with keep-alive: the connection stays open for a second request.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /livez HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        first = s.recv(4096)
        s.sendall(b"GET /livez HTTP/1.0\r\n\r\n")
        second = s.recv(4096)
    assert first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 200")
    head = raw(port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    get = raw(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head_len = [ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")]
    assert head.endswith(b"\r\n\r\n") and head_len
    assert int(head_len[0].split(b":")[1]) > 1000 and b"django_q_" in get


def test_thousands_of_idle_connections(make_env, procs):
    """2 000 idle sockets held open: each costs a coroutine, not a thread, and probes keep
    answering within the limit while they are held. (Opening them is a connection-rate
    burst, a different attack: probes slow down during the burst itself; the bench
    reports by how much.)"""
    exporter = procs.exporter(make_env("sqlite"), "--read-timeout", "30")
    exporter.wait_ready_to_serve()
    sockets = []
    try:
        for _ in range(2000):
            sockets.append(socket.create_connection(("127.0.0.1", exporter.port), timeout=5))
        # The kernel completes handshakes before the server accepts them: wait until the
        # server has taken the whole backlog (accepts are FIFO, so an answer on the last
        # socket means all are in), so the probes measure held sockets, not the burst.
        sockets[-1].sendall(LIVEZ.replace(b"close", b"keep-alive"))
        assert sockets[-1].recv(4096).startswith(b"HTTP/1.1 200")
        prober = Prober(exporter.port)
        prober.start()
        wait_for(lambda: prober.probes() >= 50, 20, what="50 probes with 2 000 idle sockets")
        latencies, failures = prober.stop()
        assert failures == []
        worst = max(latencies)
        print(f"/livez with 2 000 held sockets: worst {worst * 1000:.1f} ms, "
              f"median {sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms")
        assert worst < PROBE_LIMIT, (f"slowest /livez {worst * 1000:.1f} ms over "
                                     f"{len(latencies)} probes")
        # The held connections are still open and usable.
        sockets[0].sendall(LIVEZ)
        assert sockets[0].recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        for s in sockets:
            s.close()
    assert exporter.alive()


def test_slow_loris_is_cut_off(server):
    """Clients that dribble header bytes hold nothing hostage and are dropped after
    --read-timeout (2 s)."""
    clients = [socket.create_connection(("127.0.0.1", server.port), timeout=5)
               for _ in range(100)]
    try:
        for c in clients:
            c.sendall(b"GET /livez HTTP/1.1\r\n")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.0:
            for c in clients:
                try:
                    c.sendall(b"X")
                except OSError:
                    pass
            time.sleep(0.5)

        def all_closed():
            closed = 0
            for c in clients:
                c.settimeout(0.01)
                try:
                    if c.recv(1) == b"":
                        closed += 1
                except (TimeoutError, BlockingIOError):
                    pass
                except OSError:
                    closed += 1
            return closed == len(clients)

        wait_for(all_closed, 5, what="slow clients disconnected")
    finally:
        for c in clients:
            c.close()


def test_connection_cap_evicts_the_longest_idle(make_env, procs):
    """At the cap, the connection idle longest is closed to make room for a new one."""
    exporter = procs.exporter(make_env("sqlite"), "--max-connections", "50")
    exporter.wait_ready_to_serve()
    idle = [socket.create_connection(("127.0.0.1", exporter.port), timeout=5)
            for _ in range(50)]
    try:
        time.sleep(0.1)  # older than the eviction minimum (50 ms)
        t0 = time.perf_counter()
        assert exporter.get("/livez", timeout=2)[:2] == (200, "true")
        assert time.perf_counter() - t0 < 0.5
        idle[0].settimeout(2)
        assert idle[0].recv(1) == b""  # the oldest idle connection was closed
    finally:
        for s in idle:
            s.close()
