"""TLS for the probe server, in the spirit of Prometheus' web config."""

from __future__ import annotations

import ssl

from exporter.config import Config, ConfigError


def server_context(cfg: Config) -> ssl.SSLContext | None:
    """None without a certificate; otherwise TLS >= 1.2, client certs if a CA is given."""
    if not cfg.tls_cert_file:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cfg.tls_cert_file, cfg.tls_key_file)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"--tls-cert-file/--tls-key-file: {exc}") from None
    if cfg.tls_client_ca_file:
        try:
            ctx.load_verify_locations(cfg.tls_client_ca_file)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"--tls-client-ca-file: {exc}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
