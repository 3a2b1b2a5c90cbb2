"""Resources under TLS and at the descriptor limit.

3 000 TCP connections to the TLS port of the real exporter that never send a
ClientHello (what took the server from 113 to 957 MiB, resident even after
they closed): held at a few KiB each, /livez over TLS keeps answering, and
what they used stays put after they close and serves the next flood.
Connections in the handshake count against the cap and have a deadline;
accept() failing at the descriptor limit is logged once and the server
recovers.
"""

from __future__ import annotations

import resource
import socket
import ssl
import subprocess
import textwrap
import time

from exporter.server import PROBE_RESERVE
from tests.integration.http.conftest import Prober, fds, p99, rss_mib
from tests.procs import PYTHON, ROOT, wait_for

CONNECTIONS = 3000
#: The p99 printed below is 10-80 ms on a loaded 2-core machine (a fresh TLS handshake
#: per probe); this bound only says "never stalled" (the shipped probe times out at 2 s).
P99_BOUND = 0.5


def _tls_get(port: int, context: ssl.SSLContext, path: str = "/livez") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            return s.recv(4096)


def _hold(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]


def test_3000_idle_tls_connections(make_env, procs, cert):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = CONNECTIONS * 2 + 512
    if soft < want:  # inherited by the exporter started below
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    cert_file, key_file = map(str, cert)
    exporter = procs.exporter(make_env("sqlite"), "--tls-cert-file", cert_file,
                              "--tls-key-file", key_file, "--read-timeout", "120",
                              "--max-connections", str(CONNECTIONS + 100))
    context = ssl.create_default_context(cafile=cert_file)
    context.check_hostname = False
    wait_for(lambda: _tls_get(exporter.port, context).startswith(b"HTTP/1.1 200"), 30, 0.1,
             what="the TLS exporter answering /livez")
    pid = exporter.pid
    base_rss, base_fds = rss_mib(pid), fds(pid)

    def all_held():
        return fds(pid) >= base_fds + CONNECTIONS - 16

    def all_closed():
        return fds(pid) <= base_fds + 16

    prober = Prober(exporter.port, cert_file)
    held = []
    try:
        held = _hold(exporter.port, CONNECTIONS)
        wait_for(all_held, 60, 0.05, what=f"{CONNECTIONS} connections held by the exporter")
        prober.take()  # from here on: every connection held
        deadline = time.monotonic() + 60
        latencies, failures = [], []
        while len(latencies) < 100 and time.monotonic() < deadline:
            time.sleep(0.2)
            more, bad = prober.take()
            latencies += more
            failures += bad
        held_rss = rss_mib(pid)
        assert all_held()  # still held: nothing was evicted to make the numbers look good
    finally:
        for s in held:
            s.close()
        prober.stop()
    growth = held_rss - base_rss
    print(f"\n{CONNECTIONS} idle TLS connections: RSS {base_rss:.1f} -> {held_rss:.1f} MiB "
          f"(+{growth:.1f}, {growth * 1024 / CONNECTIONS:.1f} KiB each); /livez over TLS: "
          f"{len(latencies)} probes, p99 {p99(latencies) * 1000:.1f} ms, "
          f"worst {max(latencies) * 1000:.1f} ms")
    assert failures == []
    assert len(latencies) >= 100
    assert growth < 100
    assert p99(latencies) < P99_BOUND
    wait_for(all_closed, 60, 0.05, what="connections closed")
    # What the flood used stays bounded after it: a silent connection holds a transport
    # and a protocol object, freed as it closes; Python's allocator keeps the freed
    # arenas for reuse (a second flood costs nothing more, below) rather than handing
    # them back, so RSS stays near its high-water mark, which is the small figure above.
    after_rss = rss_mib(pid)
    held = _hold(exporter.port, CONNECTIONS)
    try:
        wait_for(all_held, 60, 0.05, what="the second flood held")
        second_rss = rss_mib(pid)
    finally:
        for s in held:
            s.close()
    print(f"after close: {after_rss:.1f} MiB; second flood: {second_rss:.1f} MiB")
    assert after_rss <= held_rss + 1
    # A second flood reuses that memory: no ratchet towards a high-water mark.
    assert second_rss - held_rss < max(0.25 * growth, 2.0)
    assert _tls_get(exporter.port, context).startswith(b"HTTP/1.1 200")
    assert "Traceback" not in exporter.output()


def test_handshakes_count_against_the_cap_and_have_a_deadline(serve, cert):
    """Connections that have not finished (or started) their TLS handshake hold slots
    like any other: the cap holds, the longest-idle make room for a new client, and
    one that sends nothing, or stops mid-ClientHello, is closed at the read deadline."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, cert))
    server = serve(max_connections=20, read_timeout=1.0, ssl_context=context)
    client = ssl.create_default_context(cafile=str(cert[0]))
    client.check_hostname = False
    silent = [socket.create_connection(("127.0.0.1", server.port), timeout=5)
              for _ in range(60)]
    try:
        wait_for(lambda: server.open_connections() >= 20, 5, 0.01, what="slots taken")
        assert server.open_connections() <= 20 + PROBE_RESERVE
        time.sleep(0.1)  # idle long enough to be evicted (50 ms)
        assert _tls_get(server.port, client).startswith(b"HTTP/1.1 200")
        assert server.open_connections() <= 20 + PROBE_RESERVE
    finally:
        for s in silent:
            s.close()
    wait_for(lambda: server.open_connections() == 0, 5, 0.01, what="all closed")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as silent_one:
        t0 = time.monotonic()
        assert silent_one.recv(1) == b""  # never sent a byte: closed at the deadline too
        elapsed = time.monotonic() - t0
    assert 0.9 < elapsed < 3.0, elapsed
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as partial:
        t0 = time.monotonic()
        partial.sendall(b"\x16\x03\x01\x02\x00\x01")  # a ClientHello that never ends
        try:
            assert partial.recv(1) == b""
        except ConnectionResetError:
            pass
        elapsed = time.monotonic() - t0
    assert 0.9 < elapsed < 3.0, elapsed  # read_timeout 1 s


ACCEPT_LIMIT_SERVER = textwrap.dedent("""
    import logging, os, resource, sys, threading
    sys.path.insert(0, sys.argv[1])
    from exporter.app import Response
    from exporter.server import Server
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s %(message)s")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    server = Server("127.0.0.1", 0, {"/livez": lambda r: Response(200, b"true")}, 10_000, 30.0)
    server.start()
    # Descriptors the process uses for other things: the cap (256 - 80) is no longer
    # below the limit, so accept() runs into EMFILE.
    ballast = [os.open(os.devnull, os.O_RDONLY) for _ in range(120)]
    print(server.port, server.max_connections, flush=True)
    sys.stdin.read()
    print(server._accept_failures, flush=True)  # failed accept() calls seen
    server.stop()
""")


def test_accept_failures_at_the_descriptor_limit_are_logged_once_and_survived():
    proc = subprocess.Popen([PYTHON, "-c", ACCEPT_LIMIT_SERVER, str(ROOT)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    held = []
    try:
        port, cap = map(int, proc.stdout.readline().split())
        assert cap == 256 - 64 - PROBE_RESERVE
        for _ in range(200):
            try:
                held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                break
        # Held past the limit: idle ones are closed to free descriptors, and a probe
        # gets through once accepting resumes (asyncio retries after a second).
        time.sleep(0.2)
        probe = b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

        def answered():
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(probe)
                return s.recv(64).startswith(b"HTTP/1.1 200")

        wait_for(answered, 20, 0.2, what="/livez answered at the descriptor limit")
    finally:
        for s in held:
            s.close()
        out, err = proc.communicate("", timeout=30)
    failures = [line for line in err.splitlines() if "accept() failed" in line]
    assert int(out.split()[-1]) > 1  # many failed accept() calls ...
    assert len(failures) == 1, err[-3000:]  # ... one log line
    assert failures[0].startswith("WARNING exporter.http accept() failed: [Errno 24]")
    assert "Traceback" not in err
