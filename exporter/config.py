"""The exporter's one configuration object, built from flags and environment.

Every flag has an environment fallback ``DJANGO_Q_EXPORTER_<NAME>`` so the
same image is configured by args in Kubernetes and by env in compose. All
validation happens here, once, at start: a bad value stops the process with
one line naming the flag, the variable and the value.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from djq_contract.endpoints import DEFAULT_PORT

ENV_PREFIX = "DJANGO_Q_EXPORTER_"


class ConfigError(Exception):
    """A configuration value is unusable; the message is one line for the operator."""


@dataclass(frozen=True)
class Config:
    listen_host: str = "0.0.0.0"
    listen_port: int = DEFAULT_PORT
    django_settings: str | None = None
    cluster_name: str | None = None  # None: Q_CLUSTER["name"] from Django settings
    hostname: str = field(default_factory=socket.gethostname)
    scope: str = "all"  # djq_contract.catalogue.SCOPES: which families this exporter publishes
    expected_hosts: tuple[str, ...] = ()
    backend_timeout: float = 1.0
    scrape_timeout: float = 5.0
    health_timeout: float = 0.5
    health_cache: float = 0.25
    stat_grace: float = 5.0
    retention: float = 900.0
    startup_grace: float = 60.0
    progress_limit: float | None = None  # None: task timeout + progress_margin
    progress_margin: float = 60.0
    schedule_cap: int = 200  # schedule label values before the rest read "other"
    queue_cap: int = 50  # queue label values before the rest read "other"
    pod_store: str | None = None
    max_connections: int = 4096
    read_timeout: float = 10.0
    log_level: str = "INFO"
    auth_token_file: str | None = None
    basic_auth_user: str | None = None
    basic_auth_password_file: str | None = None
    auth_probes: str = "no"
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_client_ca_file: str | None = None
    # Secrets, read once at start from files or the environment; never printed.
    auth_token: str | None = field(default=None, repr=False)
    basic_auth_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class _Option:
    name: str  # flag without dashes
    kind: str  # str | float | int | hosts | choice
    help: str
    choices: tuple[str, ...] = ()

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper().replace("-", "_")

    @property
    def attr(self) -> str:
        return self.name.replace("-", "_")


OPTIONS: tuple[_Option, ...] = (
    _Option("listen-address", "str", f"host:port to bind (default 0.0.0.0:{DEFAULT_PORT})"),
    _Option("django-settings", "str", "Django settings module (default: $DJANGO_SETTINGS_MODULE)"),
    _Option("cluster-name", "str", "django-q cluster name to watch (default: Q_CLUSTER['name'])"),
    _Option("hostname", "str", "host name of the local cluster (default: this host's name)"),
    _Option("scope", "choice",
            "which series this exporter publishes: all (default: every cluster and queue, "
            "for a few pods), local (only this pod's own cluster and counters, reading only "
            "its own Stat), cluster (the cluster-wide series, for one exporter without a "
            "local cluster; ready when it can read the broker)", ("ALL", "LOCAL", "CLUSTER")),
    _Option("expected-hosts", "hosts", "comma-separated hosts whose clusters read 0 until seen"),
    _Option("backend-timeout", "float", "seconds for each broker/cache/database call (default 1)"),
    _Option("scrape-timeout", "float", "seconds budget for one /metrics collection (default 5)"),
    _Option("health-timeout", "float",
            "seconds budget for the backend reads of a probe (default 0.5)"),
    _Option("health-cache", "float", "seconds a probe observation is reused (default 0.25)"),
    _Option("stat-grace", "float", "seconds a vanished Stat still counts as up (default 5)"),
    _Option("retention", "float",
            "seconds a vanished cluster reads 0 before it is dropped (default 900)"),
    _Option("startup-grace", "float",
            "seconds after start during which no local Stat is expected (default 60)"),
    _Option("progress-limit", "float",
            "seconds without a finished task, with work pending, before not ready "
            "(default: task timeout + 60)"),
    _Option("pod-store", "str", "path of the per-pod metric store written by workers (default: "
            "the DJANGO_Q_EXPORTER_POD_STORE setting, else one file per settings module and "
            "cluster name under $TMPDIR/django-q-exporter)"),
    _Option("schedule-cap", "int",
            "schedule label values on the delay metric; the rest read 'other' (default 200)"),
    _Option("queue-cap", "int",
            "queue label values on the django_q_queue_* metrics; the rest read 'other' "
            "(default 50)"),
    _Option("max-connections", "int",
            "open HTTP connections (default 4096, at most the fd limit; when full, the "
            "longest-idle one is closed; 16 more are kept for the probe paths)"),
    _Option("read-timeout", "float",
            "seconds a client may take to send a request, or to read an answer (default 10)"),
    _Option("log-level", "choice", "DEBUG, INFO, WARNING or ERROR (default INFO)",
            ("DEBUG", "INFO", "WARNING", "ERROR")),
    _Option("auth-token-file", "str",
            "file holding the bearer token required for /metrics, / and /status.json "
            "(or set DJANGO_Q_EXPORTER_AUTH_TOKEN)"),
    _Option("basic-auth-user", "str", "user name for basic auth on /metrics, / and /status.json"),
    _Option("basic-auth-password-file", "str",
            "file holding the basic-auth password (or set DJANGO_Q_EXPORTER_BASIC_AUTH_PASSWORD)"),
    _Option("auth-probes", "choice", "yes: probe paths need auth too (default no)",
            ("YES", "NO")),
    _Option("tls-cert-file", "str", "serve HTTPS with this certificate (PEM)"),
    _Option("tls-key-file", "str", "private key of --tls-cert-file (PEM)"),
    _Option("tls-client-ca-file", "str", "require client certificates signed by this CA (PEM)"),
)

SECRET_ENV = {"auth_token": ENV_PREFIX + "AUTH_TOKEN",
              "basic_auth_password": ENV_PREFIX + "BASIC_AUTH_PASSWORD"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare every option on ``parser``; defaults stay None so env can fill in."""
    for opt in OPTIONS:
        parser.add_argument(f"--{opt.name}", dest=opt.attr, default=None,
                            help=f"{opt.help} [env {opt.env}]")


def _parse_listen(value: str, source: str) -> tuple[str, int]:
    host, sep, port_s = value.rpartition(":")
    if not sep:
        host, port_s = "", value
    host = host.strip("[]") or "0.0.0.0"
    try:
        port = int(port_s)
    except ValueError:
        raise ConfigError(f"{source}: port {port_s!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{source}: port {port} is outside 0-65535")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not host.replace("-", "").replace(".", "").isalnum():
            raise ConfigError(f"{source}: {host!r} is not an IP address or host name") from None
    return host, port


def _convert(opt: _Option, raw: str, source: str):
    if opt.kind == "float":
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{source}: {raw!r} is not a number of seconds") from None
        if not value > 0 or value != value or value == float("inf"):
            raise ConfigError(f"{source}: {raw!r} must be a positive number of seconds")
        return value
    if opt.kind == "int":
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{source}: {raw!r} is not an integer") from None
        if value < 1:
            raise ConfigError(f"{source}: {raw!r} must be at least 1")
        return value
    if opt.kind == "hosts":
        return tuple(h.strip() for h in raw.split(",") if h.strip())
    if opt.kind == "choice":
        if raw.upper() not in opt.choices:
            raise ConfigError(f"{source}: {raw!r} is not one of {', '.join(opt.choices)}")
        return raw.upper()
    if not raw.strip():
        raise ConfigError(f"{source}: empty value")
    return raw.strip()


def from_sources(args: argparse.Namespace | None, environ: Mapping[str, str]) -> Config:
    """Build the Config: flag beats environment beats default."""
    values: dict = {}
    origin: dict[str, str] = {}  # attr -> the flag or variable it came from
    for opt in OPTIONS:
        raw = getattr(args, opt.attr, None) if args is not None else None
        source = f"--{opt.name}"
        if raw is None:
            raw = environ.get(opt.env)
            source = opt.env
        if raw is None:
            continue
        origin[opt.attr] = source
        if opt.name == "listen-address":
            values["listen_host"], values["listen_port"] = _parse_listen(raw, source)
            continue
        values[opt.attr] = _convert(opt, raw, source)
    if "django_settings" not in values and environ.get("DJANGO_SETTINGS_MODULE"):
        values["django_settings"] = environ["DJANGO_SETTINGS_MODULE"]
    for attr in ("auth_probes", "scope"):
        if attr in values:
            values[attr] = values[attr].lower()
    _load_secrets(values, environ)
    cfg = Config(**values)
    if cfg.health_timeout >= 1.0:
        raise ConfigError(f"{origin.get('health_timeout', '--health-timeout')}: "
                          f"{cfg.health_timeout:g} must stay under 1 s so probes answer "
                          "within 1 s")
    if cfg.scope == "local" and cfg.expected_hosts:
        raise ConfigError(f"{origin['expected_hosts']}: expected hosts are published by the "
                          "exporter with --scope cluster (or all); --scope local publishes "
                          "only this pod's own cluster")
    if cfg.scrape_timeout < cfg.backend_timeout:
        raise ConfigError(f"{origin.get('scrape_timeout', '--scrape-timeout')}: "
                          f"{cfg.scrape_timeout:g} must be at least the backend timeout "
                          f"({cfg.backend_timeout:g})")
    return cfg


def _read_secret(path: str, setting: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            value = fh.read().strip()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"{setting}: {path} is empty")
    return value


def secret(path: str | None, env_name: str, setting: str,
           environ: Mapping[str, str]) -> str | None:
    """A secret from its file (named by ``setting`` in errors), else from ``env_name``:
    the file wins. The server and the exec probes (exporter.probeclient) both read the
    bearer token this way, so they never disagree on which one is in force."""
    if path:
        return _read_secret(path, setting)
    return environ.get(env_name) or None


def _load_secrets(values: dict, environ: Mapping[str, str]) -> None:
    """Secrets come from files or the environment, never from argv (visible in ps)."""
    for name, flag in (("auth_token", "auth-token-file"),
                       ("basic_auth_password", "basic-auth-password-file")):
        value = secret(values.get(f"{name}_file"), SECRET_ENV[name], f"--{flag}", environ)
        if value:
            values[name] = value
    if values.get("basic_auth_password") and not values.get("basic_auth_user"):
        raise ConfigError("basic auth needs --basic-auth-user as well as a password")
    if values.get("basic_auth_user") and not values.get("basic_auth_password"):
        raise ConfigError("--basic-auth-user needs a password (--basic-auth-password-file or "
                          f"{SECRET_ENV['basic_auth_password']})")
    cert, key = values.get("tls_cert_file"), values.get("tls_key_file")
    if bool(cert) != bool(key):
        raise ConfigError("TLS needs both --tls-cert-file and --tls-key-file")
    if values.get("tls_client_ca_file") and not cert:
        raise ConfigError("--tls-client-ca-file needs --tls-cert-file and --tls-key-file")
    for flag in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"):
        path = values.get(flag)
        if path:
            try:
                with open(path, "rb"):
                    pass
            except OSError as exc:
                raise ConfigError(f"--{flag.replace('_', '-')}: cannot read {path}: "
                                  f"{exc.strerror}") from None


def parse(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Config:
    """Parse ``serve`` arguments (used by tests and the management command)."""
    parser = argparse.ArgumentParser(prog="python -m exporter serve")
    add_arguments(parser)
    return from_sources(parser.parse_args(list(argv)), os.environ if environ is None else environ)
