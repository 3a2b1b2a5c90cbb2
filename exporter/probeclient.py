"""The client side of the exec probes: what ``python -m exporter check`` sends.

It reads the same environment as the server (and as k8s/worker.sh), so turning on
TLS or probe auth through the environment switches the probes with it instead of
leaving them speaking plain HTTP to an HTTPS port (every probe failing, a restart
storm). Pure functions of ``environ``; the I/O is in ``__main__.check``.

Why urllib and ssl from the standard library, not requests: an exec probe starts a
new Python process every few seconds, and importing requests (with urllib3, idna,
charset detection and certifi) costs more than the rest of the client's start. The
bench measures both in one run (``scripts/bench --only probes``, "Exec probe client
start"). The test suite, where start time does not matter, uses requests.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping

from exporter.config import DEFAULT_PORT, ENV_PREFIX, SECRET_ENV, ConfigError, secret

TLS_CERT_ENV = ENV_PREFIX + "TLS_CERT_FILE"
CLIENT_CA_ENV = ENV_PREFIX + "TLS_CLIENT_CA_FILE"
TOKEN_ENV = SECRET_ENV["auth_token"]
TOKEN_FILE_ENV = ENV_PREFIX + "AUTH_TOKEN_FILE"


class ProbeSetupError(Exception):
    """A probe setting (CA, client certificate, token file) cannot be used."""


def _env(environ: Mapping[str, str], name: str) -> str:
    return (environ.get(name) or "").strip()


def tls_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """The server serves HTTPS when it has a certificate; the probes follow that."""
    return bool(_env(environ, TLS_CERT_ENV))


def default_probe_url(environ: Mapping[str, str] = os.environ) -> str:
    """The URL k8s/worker.sh probes: PROBE_HOST/PROBE_PORT/PROBE_PATH; the port falls
    back to the one in DJANGO_Q_EXPORTER_LISTEN_ADDRESS, then to the default port;
    https when DJANGO_Q_EXPORTER_TLS_CERT_FILE is set."""
    host = environ.get("PROBE_HOST") or "127.0.0.1"
    listen = environ.get(ENV_PREFIX + "LISTEN_ADDRESS", "")
    port = environ.get("PROBE_PORT") or listen.rpartition(":")[2] or str(DEFAULT_PORT)
    path = environ.get("PROBE_PATH") or "/healthz"
    scheme = "https" if tls_enabled(environ) else "http"
    return f"{scheme}://{host}:{port}{path}"


def tls_context(environ: Mapping[str, str] = os.environ) -> ssl.SSLContext:
    """Client context for an https probe.

    Without PROBE_CA_FILE the server certificate is NOT verified: the probe targets
    this very pod on 127.0.0.1 (no network hop to intercept), while the certificate
    is issued for the Service name, so neither name nor a private CA would check out.
    With PROBE_CA_FILE the chain and the probed host name are verified. The client
    certificate (PROBE_CLIENT_CERT_FILE, PROBE_CLIENT_KEY_FILE) is for servers that
    require one (--tls-client-ca-file)."""
    ca_file = _env(environ, "PROBE_CA_FILE")
    if ca_file:
        try:
            ctx = ssl.create_default_context(cafile=ca_file)
        except (ssl.SSLError, OSError) as exc:
            raise ProbeSetupError(f"cannot use PROBE_CA_FILE {ca_file}: "
                                  f"{getattr(exc, 'strerror', None) or exc}") from None
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    cert, key = _env(environ, "PROBE_CLIENT_CERT_FILE"), _env(environ, "PROBE_CLIENT_KEY_FILE")
    if cert:
        try:
            ctx.load_cert_chain(cert, key or None)
        except (ssl.SSLError, OSError) as exc:
            raise ProbeSetupError(f"cannot use PROBE_CLIENT_CERT_FILE/PROBE_CLIENT_KEY_FILE: "
                                  f"{getattr(exc, 'strerror', None) or exc}") from None
    return ctx


def auth_headers(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """``Authorization: Bearer`` from the server's own token settings (read as the
    server reads them), for probes behind ``--auth-probes yes``."""
    try:
        token = secret(_env(environ, TOKEN_FILE_ENV), TOKEN_ENV, TOKEN_FILE_ENV, environ)
    except ConfigError as exc:
        raise ProbeSetupError(str(exc)) from None
    return {"Authorization": f"Bearer {token}"} if token else {}


def describe_tls_error(exc: OSError, environ: Mapping[str, str] = os.environ) -> str:
    """One line saying why an https probe failed in TLS, with the setting to fix.

    A server that requires a client certificate rejects a TLS 1.3 client after the
    handshake, often by just closing the connection, so a reset or an empty reply
    counts as that when the environment says client certificates are required."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS: server certificate not accepted with PROBE_CA_FILE: "
                f"{exc.verify_message or exc.reason}")
    text = str(exc) or type(exc).__name__
    if "CERTIFICATE_REQUIRED" in text.upper().replace(" ", "_") or (
            _env(environ, CLIENT_CA_ENV) and not _env(environ, "PROBE_CLIENT_CERT_FILE")):
        return ("TLS: the server requires a client certificate (set PROBE_CLIENT_CERT_FILE "
                f"and PROBE_CLIENT_KEY_FILE): {text}")
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or text}"
    return f"connection closed during TLS: {text}"
