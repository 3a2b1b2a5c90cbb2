"""podman, driven the way this kind of host needs it, plus the image builds the container
tests share.

Rootful podman with runc and cgroupfs (no systemd here), host ulimits, and the settings
of ``containers.conf`` beside this file. Without systemd podman cannot schedule
healthchecks itself, so callers run them with :meth:`Podman.healthcheck` while polling.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.procs import ROOT

HERE = Path(__file__).resolve().parent
CONF = HERE / "containers.conf"
# Debian packages of the images built here. bookworm's python3 is 3.11, like the image's.
APP_BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "curl", "tini")
STANDIN_PACKAGES = ("redis-server", "postgresql", "prometheus", "curl", "ca-certificates")
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"  # Debian's, with local CAs added
APP_BASE_NAME = "localhost/django-q-exporter-base"
STANDIN_BASE_NAME = "localhost/django-q-exporter-standins-base"


def engine_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONF)}


def global_flags() -> list[str]:
    return ["--runtime", "runc", "--cgroup-manager=cgroupfs"]


class Podman:
    """One podman command line with this host's flags; every call bounded by a timeout."""

    def __init__(self) -> None:
        binary = shutil.which("podman")
        if not binary:
            raise RuntimeError("podman not found: scripts/bootstrap --test installs it")
        self.cmd = [binary, *global_flags()]
        self.env = engine_env()

    def run(self, *args: str, timeout: float = 120, check: bool = True,
            cwd: Path = ROOT) -> subprocess.CompletedProcess:
        result = subprocess.run([*self.cmd, *args], env=self.env, cwd=cwd, timeout=timeout,
                                capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args[:3])} ... exited "
                                 f"{result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def image_exists(self, ref: str) -> bool:
        return self.run("image", "exists", ref, check=False).returncode == 0

    def healthcheck(self, container: str) -> bool:
        """Run the container's healthcheck once, as the engine's scheduler would."""
        return self.run("healthcheck", "run", container, check=False,
                        timeout=30).returncode == 0

    def inspect(self, container: str) -> dict:
        return json.loads(self.run("inspect", container).stdout)[0]

    def host_pids(self, container: str) -> set[int]:
        """Host-side pids of every process in the container."""
        out = self.run("top", container, "hpid").stdout.split()
        return {int(p) for p in out[1:] if p.isdigit()}

    def logs(self, container: str) -> str:
        result = self.run("logs", container, check=False)
        return result.stdout + result.stderr

    def remove(self, *containers: str) -> None:
        self.run("rm", "--force", "--time", "0", "--ignore", *containers, check=False)


@dataclass
class Figures:
    """Timings of the container run, printed at the end and saved as JSON."""

    values: dict[str, float | str] = field(default_factory=dict)

    def record(self, name: str, value: float | str) -> None:
        self.values[name] = round(value, 2) if isinstance(value, float) else value

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.values, indent=2, sort_keys=True) + "\n")


@contextmanager
def build_lock() -> Iterator[None]:
    """One image build at a time on this machine. The container tests' modules can run in
    two pytest-xdist workers (or two suites run at once): the second waits for the first's
    build and then finds it cached, instead of building the same tags beside it."""
    with open(Path(tempfile.gettempdir()) / "django-q-exporter-image-build.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def debian_image(name: str, packages: tuple[str, ...], figures: Figures, key: str) -> str:
    """An image of Debian packages (scripts/debian-base-image: cached by a content hash)."""
    t0 = time.monotonic()
    result = subprocess.run([str(ROOT / "scripts" / "debian-base-image"), name, *packages],
                            env={**engine_env(), "PODMAN": " ".join(["podman", *global_flags()])},
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    elapsed = time.monotonic() - t0
    cached = "not rebuilt" in result.stderr
    figures.record(f"{key}_seconds", elapsed)
    figures.record(f"{key}_cached", "yes" if cached else "no")
    return result.stdout.strip()


def build_args_for_pip() -> list[str]:
    """Let pip inside the build trust what pip on this host trusts (a TLS-intercepting
    proxy's CA): the bundle is mounted for the build only, never copied into the image."""
    bundle = (os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
              or SYSTEM_CA_BUNDLE)
    if not Path(bundle).is_file():
        return []
    path = Path(bundle).resolve()
    return ["--volume", f"{path}:/etc/ssl/build-ca.pem:ro",
            "--build-arg", "PIP_CERT=/etc/ssl/build-ca.pem"]


def build(podman: Podman, tag: str, figures: Figures, key: str, *args: str,
          context: Path = ROOT) -> str:
    t0 = time.monotonic()
    podman.run("build", "--network", "host", "--layers", "--tag", tag, *args, str(context),
               timeout=900)
    figures.record(f"{key}_seconds", time.monotonic() - t0)
    return tag

