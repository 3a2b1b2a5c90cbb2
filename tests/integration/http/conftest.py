"""A real Server on a real loopback socket, with small handlers standing in for the
app's (the HTTP front is what is under test, not django-q), and a TLS certificate."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from exporter.access import Access
from exporter.app import Request, Response
from exporter.server import Server


def routes() -> dict:
    """Probe paths answer a line; /metrics 32 KiB, like a real scrape."""
    def answer(request: Request) -> Response:
        return Response(200, f"{request.method} {request.path}\n".encode())

    def metrics(request: Request) -> Response:
        return Response(200, (b"# a metric line of 64 bytes, 512 of them" + b"." * 23 + b"\n")
                        * 512)

    return {"/livez": answer, "/readyz": answer, "/healthz": answer, "/metrics": metrics,
            "/": answer}


@pytest.fixture(scope="module")
def serve():
    """``serve(**kwargs)`` -> a started Server (stopped at the end of the module)."""
    started: list[Server] = []

    def start(max_connections: int = 256, read_timeout: float = 5.0, **kwargs) -> Server:
        server = Server("127.0.0.1", 0, routes(), max_connections, read_timeout, **kwargs)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def server(serve) -> Server:
    return serve(access=Access(basic_user="prom", basic_password="secret"))


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (EC: handshakes cost little CPU)."""
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "key.pem", "-out",
                    "cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1"], cwd=d, check=True, capture_output=True,
                   timeout=60)
    return d / "cert.pem", d / "key.pem"


def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data``, read until the server closes (or ``timeout`` passes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


def statuses(reply: bytes) -> list[int]:
    """Status codes of the responses in ``reply`` (bodies here never start a line
    with "HTTP/1.1 ")."""
    return [int(m) for m in re.findall(rb"(?:^|\n)HTTP/1\.1 ([0-9]{3}) ", reply)]


def _probe_loop(port: int, cafile: str | None, halt, out) -> None:
    """In its own process, so the test process's own CPU use (opening thousands of
    sockets) cannot delay the measurement."""
    import ssl

    context = None
    if cafile:
        context = ssl.create_default_context(cafile=cafile)
        context.check_hostname = False
    request = b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    while not halt.is_set():
        t0 = time.perf_counter()
        failure = None
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                s = context.wrap_socket(raw, server_hostname="127.0.0.1") if context else raw
                s.sendall(request)
                reply = s.recv(64)
                if not reply.startswith(b"HTTP/1.1 200"):
                    failure = reply[:60].decode("latin-1")
        except OSError as exc:
            failure = repr(exc)
        out.put((time.perf_counter() - t0, failure))
        halt.wait(0.02)


class Prober:
    """/livez on a fresh connection every 20 ms from another process; ``take()`` returns
    (latencies, failures) measured since the last call."""

    def __init__(self, port: int, cafile: str | None = None) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self.halt, self.out = ctx.Event(), ctx.Queue()
        self.proc = ctx.Process(target=_probe_loop, args=(port, cafile, self.halt, self.out),
                                daemon=True)
        self.proc.start()

    def take(self) -> tuple[list[float], list[str]]:
        latencies, failures = [], []
        while not self.out.empty():
            latency, failure = self.out.get()
            latencies.append(latency)
            if failure:
                failures.append(failure)
        return latencies, failures

    def stop(self) -> None:
        self.halt.set()
        self.proc.join(10)


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def fds(pid: int) -> int:
    import os

    return len(os.listdir(f"/proc/{pid}/fd"))
