"""``python -m exporter serve|check``: the probe server and a curl-free probe."""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import signal
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

from exporter import __version__, probeclient
from exporter.config import Config, ConfigError, add_arguments, from_sources
from exporter.errors import describe, one_line
from exporter.probeclient import default_probe_url

#: GIL switch interval of the server process, seconds (see serve()).
SWITCH_INTERVAL = 0.001


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (exit 2), like bad values."""

    def error(self, message: str):
        self.exit(2, f"django-q-exporter: usage error: {one_line(message)} "
                     f"(see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m exporter",
        description="Health probe and Prometheus exporter for django-q2 clusters.")
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the probe/metrics server")
    add_arguments(serve)
    check = sub.add_parser("check", help="probe a running server: exit 0 on HTTP 200, else 1")
    check.add_argument("url", nargs="?", default=None,
                       help="URL to probe (default: http://$PROBE_HOST:$PROBE_PORT$PROBE_PATH "
                            "as in k8s/worker.sh, i.e. http://127.0.0.1:9847/healthz; "
                            "https when DJANGO_Q_EXPORTER_TLS_CERT_FILE is set)")
    check.add_argument("--timeout", type=float, default=2.0, help="seconds (default 2)")
    return parser


def setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stderr, force=True)


def serve(cfg: Config, stop_event: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop_event``); returns the exit code."""
    from exporter import djangoenv, tls
    from exporter.access import Access
    from exporter.app import App
    from exporter.server import Server

    t0 = time.monotonic()
    # Probes are answered on the event loop thread while scrapes and status pages build
    # in pool threads: a 1 ms GIL switch interval (default 5 ms) keeps a probe from
    # queueing behind a CPU-bound build at each of its handful of GIL hand-overs.
    sys.setswitchinterval(SWITCH_INTERVAL)
    setup_logging(cfg.log_level)
    log = logging.getLogger("exporter")
    ssl_context = tls.server_context(cfg)
    setup = djangoenv.setup(cfg)
    app = App(cfg, setup)
    access = Access(cfg.auth_token, cfg.basic_auth_user, cfg.basic_auth_password,
                    protect_probes=cfg.auth_probes == "yes")
    server = Server(cfg.listen_host, cfg.listen_port, app.routes(), cfg.max_connections,
                    cfg.read_timeout, access, ssl_context, app.inline_routes())
    try:
        server.start()
    except OSError as exc:
        app.close()
        reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror
        raise ConfigError(f"--listen-address: cannot listen on {cfg.listen_host}:"
                          f"{cfg.listen_port}: {reason or exc}") from None
    stop = stop_event or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    for problem in setup.problems:
        log.error("misconfiguration: %s", problem)
    if app.other_names:
        log.warning("Stats exist for other cluster name(s): %s (watching %r)",
                    ", ".join(app.other_names), setup.cluster_name)
    log.info("listening on %s://%s:%d (cluster %r, host %r, scope %s, broker %s, auth %s, "
             "pod store %s) ready in %.0f ms", "https" if ssl_context else "http",
             cfg.listen_host, server.port, setup.cluster_name, cfg.hostname, cfg.scope,
             setup.broker_description, "on" if access.enabled else "off",
             app.pod_store.path if app.pod_store else "none",
             (time.monotonic() - t0) * 1000)
    # One observation now (bounded by health_timeout): a Stat signed with another
    # SECRET_KEY is logged at start, not at the first probe, and that probe answers
    # from memory.
    try:
        app.prober.observe()
    except Exception as exc:
        log.warning("first health observation failed: %s", describe(exc))
    stop.wait()
    log.info("stopping")
    server.stop()
    app.close()
    return 0


def check(url: str | None, timeout: float, environ: Mapping[str, str] = os.environ) -> int:
    """Exit status of a probe: 0 on HTTP 200, else 1 with one line on stderr saying why.

    TLS and the bearer token come from the server's environment (exporter.probeclient),
    as in k8s/worker.sh."""
    if url is None:
        url = default_probe_url(environ)
    try:
        headers = probeclient.auth_headers(environ)
        context = probeclient.tls_context(environ) if url.startswith("https:") else None
    except probeclient.ProbeSetupError as exc:
        print(f"check: {url} not probed: {one_line(exc)}", file=sys.stderr)
        return 1
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (probe URL)
    try:
        with urllib.request.urlopen(request, timeout=timeout,  # noqa: S310 (probe URL)
                                    context=context) as resp:
            if resp.status == 200:
                return 0
            print(f"check: {url} answered HTTP {resp.status}", file=sys.stderr)
    except urllib.error.HTTPError as exc:
        print(f"check: {url} answered HTTP {exc.code}", file=sys.stderr)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc) if isinstance(exc, urllib.error.URLError) else exc
        if url.startswith("https:") and isinstance(reason, (ssl.SSLError, ConnectionError)) \
                and not isinstance(reason, ConnectionRefusedError):
            reason = probeclient.describe_tls_error(reason, environ)
        elif isinstance(reason, http.client.RemoteDisconnected):
            reason = (f"{reason} (an HTTPS server? DJANGO_Q_EXPORTER_TLS_CERT_FILE "
                      "switches to https)")
        print(f"check: {url} unreachable: {one_line(reason)}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check":
        return check(args.url, args.timeout)
    try:
        cfg = from_sources(args, os.environ)
        return serve(cfg)
    except ConfigError as exc:
        print(f"django-q-exporter: configuration error: {one_line(exc, 1000)}",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
