"""6. The HTTP front: probe latency before and after the request parser change (the
server of the revision before it, unpacked with `git archive`, runs beside the
current one in the same run), what parsing with h11 would cost instead, and
resident memory per 1 000 idle connections, plain and TLS, before and after."""

from __future__ import annotations

import os
import resource
import socket
import ssl
import statistics
import subprocess
import tarfile
import tempfile
import time
import timeit
from pathlib import Path

from bench import stack as S
from bench.report import ms, times
from tests.procs import PYTHON, ROOT, Exporter, Proc, free_port, wait_for

HEAD = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:9847\r\nUser-Agent: kube-probe/1.29\r\n"
        b"Accept: */*\r\nConnection: close\r\n\r\n")
IDLE = 1000
#: Seconds between the last close and the "after" reading (exporter.server reclaims
#: memory one second after the open connections fall below half their peak).
RECLAIM_WAIT = 2.0


def base_revision() -> str:
    """BENCH_HTTP_BASE, else the parent of the commit that added exporter/http1.py
    (the hand-rolled line reader it replaced)."""
    if os.environ.get("BENCH_HTTP_BASE"):
        return os.environ["BENCH_HTTP_BASE"]
    added = subprocess.run(["git", "log", "--diff-filter=A", "--format=%H", "--",
                            "exporter/http1.py"], cwd=ROOT, capture_output=True, text=True,
                           check=True, timeout=60).stdout.split()
    return subprocess.run(["git", "rev-parse", "--short", added[-1] + "^"], cwd=ROOT,
                          capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def unpack(rev: str, into: Path) -> Path:
    archive = into / "tree.tar"
    with open(archive, "wb") as out:
        subprocess.run(["git", "archive", rev], cwd=ROOT, stdout=out, check=True, timeout=120)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


class TreeExporter(Exporter):
    """``python -m exporter serve`` from another source tree (its packages first on
    sys.path), on a free port."""

    def __init__(self, tree: Path, env: dict[str, str], log: Path, *flags: str) -> None:
        self.port = free_port()
        code = (f"import sys; sys.path.insert(0, {str(tree)!r}); "
                "from exporter.__main__ import main; sys.exit(main())")
        args = [PYTHON, "-c", code, "serve", "--listen-address", f"127.0.0.1:{self.port}",
                "--log-level", "WARNING", *flags]
        Proc.__init__(self, args, env, log)


def certificate(where: Path) -> tuple[str, str]:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "key.pem", "-out",
                    "cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1"], cwd=where, check=True,
                   capture_output=True, timeout=60)
    return str(where / "cert.pem"), str(where / "key.pem")


def parse_cost() -> dict[str, float]:
    """Seconds per request head: ours, and h11's (a fresh connection per head, as
    the server would use it for one request)."""
    import h11

    from exporter import http1

    def ours():
        start, end = http1.frame(HEAD)
        http1.parse(HEAD[start:end])

    def theirs():
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(HEAD)
        conn.next_event()
        conn.next_event()

    n = 20_000
    return {name: min(timeit.repeat(fn, number=n, repeat=5)) / n
            for name, fn in (("http1", ours), ("h11", theirs))}


def hold(port: int, count: int, context: ssl.SSLContext | None) -> list[socket.socket]:
    """``count`` connections, idle: no byte sent, or a finished TLS handshake."""
    held = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if context is not None:
            s = context.wrap_socket(s, server_hostname="127.0.0.1")
        held.append(s)
    return held


def idle_rss(exporter: Exporter, count: int, context: ssl.SSLContext | None) -> dict[str, float]:
    """RSS before, holding ``count`` idle connections, and after they closed (KiB)."""
    fds0 = S.fds(exporter.pid)
    before = S.rss_kib(exporter.pid)
    held = hold(exporter.port, count, context)
    try:
        # (a margin: a connection of an earlier step may still be closing at fds0)
        wait_for(lambda: S.fds(exporter.pid) >= fds0 + count - 16, 60, 0.05,
                 what=f"{count} connections held by the server")
        peak = S.rss_kib(exporter.pid)
    finally:
        for s in held:
            s.close()
    wait_for(lambda: S.fds(exporter.pid) <= fds0 + 16, 60, 0.05, what="connections closed")
    time.sleep(RECLAIM_WAIT)  # the server reclaims a second after a flood ends
    return {"before": before, "held": peak, "after": S.rss_kib(exporter.pid)}


def run(ctx) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * IDLE:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8 * IDLE), hard))
    seconds, rounds = (2, 2) if ctx.quick else (5, 3)
    rev = base_revision()
    work = Path(tempfile.mkdtemp(prefix="dqe-bench-http-"))
    tree = unpack(rev, work)
    cert, key = certificate(work)
    tls_flags = ("--tls-cert-file", cert, "--tls-key-file", key)
    flags = ("--max-connections", str(4 * IDLE), "--read-timeout", "120")
    res: dict = {"parse": parse_cost()}
    with S.stack(database_url=ctx.db) as st:
        def start(name: str, *extra: str) -> Exporter:
            log = st.workdir / f"{name}.log"
            e = (TreeExporter(tree, st.env, log, *flags, *extra) if name.startswith("before")
                 else Exporter(st.env, log, "--log-level", "WARNING", *flags, *extra))
            st.procs.append(e)
            return e

        servers = {name: start(name) for name in ("before", "after")}
        st.qcluster()
        for e in servers.values():
            S.wait_healthy(e)
        runs: dict[str, list[dict]] = {"before": [], "after": []}
        for _ in range(rounds):  # interleaved, so a slow minute hits both alike
            for name, e in servers.items():
                runs[name].append(S.wrk(e.url + "/healthz", 16, seconds))
        for name, measured in runs.items():
            res[name] = {k: statistics.median(r[k] for r in measured)
                         for k in ("p50", "p99", "rps", "non2xx", "errors")}
        client = ssl.create_default_context(cafile=cert)
        client.check_hostname = False
        for name in ("before", "after"):
            res[("plain", name)] = idle_rss(servers[name], IDLE, None)
            tls = start(f"{name}-tls", *tls_flags)
            wait_for(lambda e=tls: e.alive() and _answers_tls(e.port, client), 60, 0.1,
                     what="TLS exporter answering")
            res[("tls-silent", name)] = idle_rss(tls, IDLE, None)
            res[("tls-handshaken", name)] = idle_rss(tls, IDLE, client)
    report(ctx, res, rev, rounds, seconds)


def _answers_tls(port: int, context: ssl.SSLContext) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 ")


def report(ctx, res: dict, rev: str, rounds: int, seconds: float) -> None:
    before, after = res["before"], res["after"]
    p99_ratio, rps_ratio = after["p99"] / before["p99"], before["rps"] / after["rps"]
    rows = [[label, ms(r["p50"]), ms(r["p99"]), f"{r['rps']:,.0f}",
             f"{r['non2xx'] + r['errors']:.0f}"]
            for label, r in ((f"before (`{rev}`)", before), ("after (exporter/http1.py)", after))]
    ctx.report.table(
        "HTTP front: `/healthz` at 16 connections before and after the parser change",
        ["server", "p50 ms", "p99 ms", "req/s", "errors / non-2xx"], rows,
        f"Both servers run side by side on the same cluster; wrk {seconds:g} s per run, "
        f"{rounds} interleaved runs each, medians. After ÷ before: p99 {p99_ratio:.2f}×, "
        f"throughput {1 / rps_ratio:.2f}×.")
    parse = res["parse"]
    ctx.report.table(
        "HTTP front: parsing one probe request head", ["parser", "µs per head", "ratio"],
        [["exporter/http1.py", f"{parse['http1'] * 1e6:.1f}", "1.0×"],
         ["h11 (a connection per request)", f"{parse['h11'] * 1e6:.1f}",
          times(parse["h11"] / parse["http1"])],
         ["whole request at 16 connections (after, 1 ÷ req/s × 2 cores)",
          f"{2e6 / after['rps']:.1f}", times(2 / after["rps"] / parse["http1"])]],
        "Best of 5 × 20 000 heads in one process. h11 would add its cost to every probe.")
    rows = []
    for kind, label in (("plain", "plain, no byte sent"), ("tls-silent", "TLS, no byte sent"),
                        ("tls-handshaken", "TLS, handshake done, idle")):
        cells = [label]
        for name in ("before", "after"):
            r = res[(kind, name)]
            cells += [f"{(r['held'] - r['before']) / 1024:.1f}",
                      f"{(r['after'] - r['before']) / 1024:+.1f}"]
        rows.append(cells)
    ctx.report.table(
        f"HTTP front: resident memory for {IDLE:,} idle connections",
        ["connections", "before: MiB held", "before: MiB left after close", "after: MiB held",
         "after: MiB left after close"], rows,
        "RSS of the exporter process holding the connections minus RSS before they opened; "
        f"'left' is what stayed resident {RECLAIM_WAIT:g} s after they closed.")
    def per(kind: str, name: str) -> float:
        r = res[(kind, name)]
        return (r["held"] - r["before"]) / IDLE

    worst = max(per("tls-silent", "after"), per("tls-handshaken", "after"))
    ctx.report.target("`/healthz` at 16 connections, after ÷ before the parser change",
                      "within 1.2×", f"p99 {p99_ratio:.2f}×, req/s {1 / rps_ratio:.2f}×",
                      f"before p99 {ms(before['p99'])} ms, after {ms(after['p99'])} ms",
                      p99_ratio <= 1.2 and rps_ratio <= 1.2)
    ctx.report.target("RSS per idle TLS connection", "tens of KiB at most",
                      f"{worst:.1f} KiB (worst of: no byte sent, handshake done)",
                      f"before: {per('tls-silent', 'before'):.1f} KiB with no byte sent",
                      worst < 64)
