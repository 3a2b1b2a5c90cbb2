"""``python -m exporter serve|check``: the probe server and a curl-free probe."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from exporter import __version__
from exporter.config import DEFAULT_PORT, Config, ConfigError, add_arguments, from_sources
from exporter.errors import describe, one_line


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
                            "as in k8s/worker.sh, i.e. http://127.0.0.1:9847/healthz)")
    check.add_argument("--timeout", type=float, default=2.0, help="seconds (default 2)")
    return parser


def setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stderr, force=True)


def serve(cfg: Config, stop_event: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop_event``); returns the exit code."""
    from exporter import djangoenv, tls
    from exporter.app import App
    from exporter.server import Access, Server

    t0 = time.monotonic()
    setup_logging(cfg.log_level)
    log = logging.getLogger("exporter")
    ssl_context = tls.server_context(cfg)
    setup = djangoenv.setup(cfg)
    app = App(cfg, setup)
    access = Access(cfg.auth_token, cfg.basic_auth_user, cfg.basic_auth_password,
                    protect_probes=cfg.auth_probes == "yes")
    server = Server(cfg.listen_host, cfg.listen_port, app.routes(), cfg.max_connections,
                    cfg.read_timeout, access, ssl_context)
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
    log.info("listening on %s://%s:%d (cluster %r, host %r, broker %s, auth %s) "
             "ready in %.0f ms", "https" if ssl_context else "http", cfg.listen_host,
             server.port, setup.cluster_name, cfg.hostname, setup.broker_description,
             "on" if access.enabled else "off", (time.monotonic() - t0) * 1000)
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


def default_probe_url(environ=os.environ) -> str:
    """The URL k8s/worker.sh probes: PROBE_HOST/PROBE_PORT/PROBE_PATH; the port falls
    back to the one in DJANGO_Q_EXPORTER_LISTEN_ADDRESS, then to the default port."""
    host = environ.get("PROBE_HOST") or "127.0.0.1"
    listen = environ.get("DJANGO_Q_EXPORTER_LISTEN_ADDRESS", "")
    port = environ.get("PROBE_PORT") or listen.rpartition(":")[2] or str(DEFAULT_PORT)
    path = environ.get("PROBE_PATH") or "/healthz"
    return f"http://{host}:{port}{path}"


def check(url: str | None, timeout: float) -> int:
    """Exit status of a probe: 0 on HTTP 200, else 1 with one line on stderr saying why."""
    if url is None:
        url = default_probe_url()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (probe URL)
            if resp.status == 200:
                return 0
            print(f"check: {url} answered HTTP {resp.status}", file=sys.stderr)
    except urllib.error.HTTPError as exc:
        print(f"check: {url} answered HTTP {exc.code}", file=sys.stderr)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
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
