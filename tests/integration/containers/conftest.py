"""Images for the container tests, built once per session and cached between sessions.

The base images come from Debian packages (scripts/debian-base-image, tagged by a hash
of their inputs: rebuilt only when those change); the application image and the
stand-ins are podman builds whose layers podman caches. The timings of every step go
to ``container-figures.json`` in the session's temporary folder (or to the path in
``DJQ_CONTAINER_FIGURES``) and to the end of the pytest report.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.integration.containers import engine as E

APP_IMAGE = "localhost/django-q-exporter:test"
STANDINS = ("redis", "postgres", "prometheus")
_figures = E.Figures()
_figures_path: list[Path] = []


@pytest.fixture(scope="session")
def figures(tmp_path_factory) -> E.Figures:
    path = os.environ.get("DJQ_CONTAINER_FIGURES")
    _figures_path.append(Path(path) if path else
                         tmp_path_factory.getbasetemp() / "container-figures.json")
    t0 = time.monotonic()
    yield _figures
    _figures.record("container_tests_total_seconds", time.monotonic() - t0)
    _figures.save(_figures_path[0])


def pytest_terminal_summary(terminalreporter):
    if _figures.values:
        terminalreporter.section("container figures (seconds)")
        for name, value in sorted(_figures.values.items()):
            terminalreporter.write_line(f"{name}: {value}")
        if _figures_path:
            terminalreporter.write_line(f"saved to {_figures_path[0]}")


@pytest.fixture(scope="session")
def podman() -> E.Podman:
    return E.Podman()


@pytest.fixture(scope="session")
def app_base(podman, figures) -> str:
    with E.build_lock():
        return E.debian_image(E.APP_BASE_NAME, E.APP_BASE_PACKAGES, figures, "app_base_build")


@pytest.fixture(scope="session")
def app_image(podman, app_base, figures) -> str:
    with E.build_lock():
        return E.build(podman, APP_IMAGE, figures, "app_image_build",
                       "--build-arg", f"BASE={app_base}", *E.build_args_for_pip())


@pytest.fixture(scope="session")
def standin_images(podman, figures) -> dict[str, str]:
    """service name -> image of its stand-in (redis, postgres, prometheus)."""
    with E.build_lock():
        base = E.debian_image(E.STANDIN_BASE_NAME, E.STANDIN_PACKAGES, figures,
                              "standin_base_build")
        images = {}
        for service in STANDINS:
            images[service] = E.build(
                podman, f"localhost/django-q-exporter-standin-{service}:test", figures,
                f"standin_{service}_build", "--build-arg", f"BASE={base}", "--target",
                service, context=E.HERE / "standins")
    return images
