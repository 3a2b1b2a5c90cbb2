"""Access control and TLS against the running server."""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.procs import PYTHON, ROOT, free_port

TOKEN = "t0ken-" + "x" * 20
PASSWORD = "pa55-w0rd-secret"


def get(url: str, headers: dict | None = None, context=None) -> tuple[int, str, dict]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5, context=context) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_bearer_token_from_file(make_env, procs, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    exporter = procs.exporter(make_env("sqlite"), "--auth-token-file", str(token_file))
    exporter.wait_ready_to_serve()
    url = exporter.url
    assert get(url + "/metrics")[0] == 401
    assert get(url + "/metrics")[2]["WWW-Authenticate"] == "Bearer"
    assert get(url + "/metrics", {"Authorization": "Bearer wrong"})[0] == 401
    assert get(url + "/metrics", {"Authorization": "Bearer " + TOKEN[:-1]})[0] == 401
    for path in ("/", "/status.json"):  # the status page and its JSON: as /metrics
        assert get(url + path)[0] == 401
        status, page, _ = get(url + path, {"Authorization": "Bearer " + TOKEN})
        assert status == 200 and TOKEN not in page
    status, body, _ = get(url + "/metrics", {"Authorization": "Bearer " + TOKEN})
    assert status == 200 and "django_q_exporter_build_info" in body
    assert get(url + "/livez")[0] == 200  # probes stay open by default
    for text in (exporter.output(), body, get(url + "/healthz?verbose=1")[1]):
        assert TOKEN not in text


def test_basic_auth_from_env_and_protected_probes(make_env, procs):
    env = make_env("sqlite", DJANGO_Q_EXPORTER_BASIC_AUTH_PASSWORD=PASSWORD)
    exporter = procs.exporter(env, "--basic-auth-user", "prom", "--auth-probes", "yes")
    url = exporter.url

    from tests.procs import wait_for

    wait_for(lambda: get(url + "/livez")[0] == 401, 30, what="server up (401 without auth)")
    assert get(url + "/livez")[2]["WWW-Authenticate"].startswith("Basic")
    assert get(url + "/metrics", basic("prom", "nope"))[0] == 401
    assert get(url + "/metrics", basic("root", PASSWORD))[0] == 401
    assert get(url + "/metrics", {"Authorization": "Basic !!notbase64"})[0] == 401
    assert get(url + "/metrics", basic("prom", PASSWORD))[0] == 200
    assert get(url + "/livez", basic("prom", PASSWORD))[0] == 200
    assert PASSWORD not in exporter.output()


def test_secret_comparisons_are_constant_time():
    """The comparisons go through hmac.compare_digest (timing-safe by construction)."""
    from unittest import mock

    from exporter.access import Access

    access = Access(bearer_token=TOKEN, basic_user="u", basic_password=PASSWORD)
    with mock.patch("exporter.access.hmac.compare_digest", wraps=__import__(
            "hmac").compare_digest) as spy:
        assert access.allows("/metrics", "Bearer " + TOKEN)
        assert not access.allows("/metrics", "Basic " + base64.b64encode(b"u:bad").decode())
    assert spy.call_count == 3  # token; user and password both compared (no early exit)


def test_secrets_not_in_help():
    result = subprocess.run([PYTHON, "-m", "exporter", "serve", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=30,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                                 "DJANGO_Q_EXPORTER_AUTH_TOKEN": TOKEN,
                                 "DJANGO_Q_EXPORTER_BASIC_AUTH_PASSWORD": PASSWORD})
    assert result.returncode == 0
    assert TOKEN not in result.stdout and PASSWORD not in result.stdout
    assert "--auth-token-file" in result.stdout and "--tls-client-ca-file" in result.stdout


@pytest.mark.parametrize("flags, expect", [
    (["--auth-token-file", "/nonexistent/token"], "--auth-token-file: cannot read"),
    (["--basic-auth-user", "prom"], "needs a password"),
    (["--tls-cert-file", "/nonexistent.pem"], "needs both --tls-cert-file and --tls-key-file"),
])
def test_bad_auth_and_tls_flags(make_env, flags, expect):
    result = subprocess.run([PYTHON, "-m", "exporter", "serve", "--listen-address",
                             f"127.0.0.1:{free_port()}", *flags], cwd=ROOT, env=make_env("sqlite"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and expect in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    """A CA, a server certificate for 127.0.0.1, a client certificate, and an unrelated
    CA (other-ca.pem) that signed neither."""
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
                 "-out", f"{ca}.pem", "-days", "2", "-subj", f"/CN=test-{ca}", cwd=d)
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                 f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", "san.cnf",
                 cwd=d)
    return d


def test_tls_with_and_without_client_certificate(make_env, procs, pki):
    exporter = procs.exporter(make_env("sqlite"), "--tls-cert-file", str(pki / "server.pem"),
                              "--tls-key-file", str(pki / "server.key"), "--tls-client-ca-file",
                              str(pki / "ca.pem"))
    url = f"https://127.0.0.1:{exporter.port}"
    with_cert = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with_cert.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))

    from tests.procs import wait_for

    wait_for(lambda: get(url + "/livez", context=with_cert)[0] == 200, 30,
             what="TLS server answering with a client certificate")
    status, body, _ = get(url + "/metrics", context=with_cert)
    assert status == 200 and "django_q_exporter_build_info" in body
    without_cert = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        get(url + "/livez", context=without_cert)
    # Plain HTTP to the TLS port is told to use HTTPS (in plain text) and the server survives.
    status, body, _ = get(f"http://127.0.0.1:{exporter.port}/livez")
    assert status == 400 and "HTTPS" in body
    assert get(url + "/livez", context=with_cert)[0] == 200
    assert "Traceback" not in exporter.output()


# --- The exec probes (k8s/worker.sh, `python -m exporter check`) under TLS and auth ---

WORKER_SH = ROOT / "k8s" / "worker.sh"
# A quote and a backslash: the token travels through curl's quoted config syntax.
PROBE_TOKEN = 'pr0be-"tok\\en"-' + "y" * 16


def _probe_env(port: int, **extra: str) -> dict[str, str]:
    """What an exec probe inherits from the container: the server's own variables."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT),
            "DJANGO_Q_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}", "PROBE_PATH": "/livez",
            **extra}


def _probes(env: dict[str, str]) -> dict[str, subprocess.CompletedProcess]:
    """Run both probes with the same environment (default URL, no argument)."""
    return {
        "worker.sh": subprocess.run(["sh", str(WORKER_SH)], capture_output=True, text=True,
                                    timeout=30, env=env),
        "check": subprocess.run([PYTHON, "-m", "exporter", "check"], capture_output=True,
                                text=True, timeout=30, cwd=ROOT, env=env),
    }


def _assert_probes(env: dict[str, str], rc: int, reason: str = "") -> None:
    for name, result in _probes(env).items():
        assert result.returncode == rc, (name, result.stderr)
        if rc == 0:
            assert result.stderr == "", (name, result.stderr)
        else:
            assert len(result.stderr.strip().splitlines()) == 1, (name, result.stderr)
            assert reason in result.stderr, (name, result.stderr)
            assert "https://127.0.0.1:" in result.stderr, (name, result.stderr)


def test_default_probe_url_follows_the_server_tls_setting():
    from exporter.probeclient import default_probe_url

    assert default_probe_url({"PROBE_PORT": "9"}) == "http://127.0.0.1:9/healthz"
    assert default_probe_url({"PROBE_PORT": "9", "DJANGO_Q_EXPORTER_TLS_CERT_FILE": "/c.pem"}) \
        == "https://127.0.0.1:9/healthz"


def test_probes_over_tls_with_bearer_token_and_ca(make_env, procs, pki, tmp_path):
    """TLS and probe auth configured through the environment: both probes follow it,
    without verification by default, verifying with PROBE_CA_FILE when given."""
    token_file = tmp_path / "token"
    token_file.write_text(PROBE_TOKEN + "\n")
    server_env = {"DJANGO_Q_EXPORTER_TLS_CERT_FILE": str(pki / "server.pem"),
                  "DJANGO_Q_EXPORTER_TLS_KEY_FILE": str(pki / "server.key"),
                  "DJANGO_Q_EXPORTER_AUTH_TOKEN_FILE": str(token_file),
                  "DJANGO_Q_EXPORTER_AUTH_PROBES": "yes"}
    exporter = procs.exporter(make_env("sqlite", **server_env))
    url = f"https://127.0.0.1:{exporter.port}/livez"
    trusting = ssl.create_default_context(cafile=str(pki / "ca.pem"))

    from tests.procs import wait_for

    wait_for(lambda: get(url, {"Authorization": "Bearer " + PROBE_TOKEN}, trusting)[0] == 200,
             30, what="TLS server answering the token")
    assert get(url, context=trusting)[0] == 401  # the probe path does need the token

    env = _probe_env(exporter.port, **server_env)
    _assert_probes(env, 0)
    # The token is read by the probes, not given to them: without it, 401.
    no_token = {k: v for k, v in env.items() if k != "DJANGO_Q_EXPORTER_AUTH_TOKEN_FILE"}
    _assert_probes(no_token, 1, "answered HTTP 401")
    _assert_probes({**no_token, "DJANGO_Q_EXPORTER_AUTH_TOKEN": PROBE_TOKEN}, 0)
    _assert_probes({**env, "PROBE_CA_FILE": str(pki / "ca.pem")}, 0)
    _assert_probes({**env, "PROBE_CA_FILE": str(pki / "other-ca.pem")}, 1,
                   "server certificate not accepted with PROBE_CA_FILE")

    # The token never reaches curl's command line (argv is visible in ps): a recording
    # shim in front of the real curl sees every argument.
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir()
    argv_log = tmp_path / "curl-argv"
    shim = shim_dir / "curl"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> "{argv_log}"\nexec /usr/bin/curl "$@"\n')
    shim.chmod(0o755)
    shimmed = {**env, "PATH": f"{shim_dir}:{env['PATH']}"}
    assert _probes(shimmed)["worker.sh"].returncode == 0
    recorded = argv_log.read_text()
    assert "--insecure" in recorded and "pr0be-" not in recorded
    assert PROBE_TOKEN not in exporter.output()


def test_probes_under_mutual_tls(make_env, procs, pki):
    """A server requiring client certificates: the probes fail with a reason naming the
    settings to fix until PROBE_CLIENT_CERT_FILE/PROBE_CLIENT_KEY_FILE are given."""
    server_env = {"DJANGO_Q_EXPORTER_TLS_CERT_FILE": str(pki / "server.pem"),
                  "DJANGO_Q_EXPORTER_TLS_KEY_FILE": str(pki / "server.key"),
                  "DJANGO_Q_EXPORTER_TLS_CLIENT_CA_FILE": str(pki / "ca.pem")}
    exporter = procs.exporter(make_env("sqlite", **server_env))
    with_cert = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with_cert.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))

    from tests.procs import wait_for

    wait_for(lambda: get(f"https://127.0.0.1:{exporter.port}/livez", context=with_cert)[0]
             == 200, 30, what="mTLS server answering a client certificate")
    env = _probe_env(exporter.port, **server_env)
    _assert_probes(env, 1, "the server requires a client certificate (set "
                           "PROBE_CLIENT_CERT_FILE and PROBE_CLIENT_KEY_FILE)")
    client = {"PROBE_CLIENT_CERT_FILE": str(pki / "client.pem"),
              "PROBE_CLIENT_KEY_FILE": str(pki / "client.key")}
    _assert_probes({**env, **client}, 0)
    _assert_probes({**env, **client, "PROBE_CA_FILE": str(pki / "ca.pem")}, 0)
    assert "Traceback" not in exporter.output()
