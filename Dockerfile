# Image for the web and worker containers (same image, switched by IS_WORKER).
# Built by docker-compose.yml and used by k8s/deployment.yaml.
# BASE: python:3.11-slim by default; any Debian-like image with python3 (>= 3.11) and
# its venv module also works, e.g. one built from Debian packages alone where no image
# registry is reachable (scripts/debian-base-image, see docs/deployment.md).
ARG BASE=python:3.11-slim
FROM ${BASE}
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 APP_DIR=/app \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
# curl for k8s/worker.sh (the exec readiness probe and the compose healthcheck);
# tini as PID 1: it forwards SIGTERM to entrypoint.sh and reaps the orphans that
# django-q's worker processes can leave behind (a shell as PID 1 reaps only its own).
# A base that already has both (the Debian-built one) needs no package index.
RUN if ! command -v curl >/dev/null || ! [ -x /usr/bin/tini ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends curl tini \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
 && groupadd --gid 10001 app && useradd --uid 10001 --gid app --no-create-home app
WORKDIR /app
# A virtualenv: Debian's own python3 refuses pip outside one, and it keeps the
# image's packages apart from the base's on python:3.11-slim too.
# Dependencies first, in a layer that only pyproject.toml invalidates (README.md is
# the package's long description: an empty stand-in is enough here).
COPY pyproject.toml ./
# The package ships the start and probe scripts too (share/django-q-exporter).
COPY k8s/entrypoint.sh k8s/worker.sh ./k8s/
# Optional: a CA bundle for pip behind a TLS-intercepting proxy (a path that the build
# mounts, e.g. podman build --volume /etc/ssl/certs:/etc/ssl/host-certs:ro
# --build-arg PIP_CERT=/etc/ssl/host-certs/ca-certificates.crt). Not kept in the image.
ARG PIP_CERT
RUN python3 -m venv "$VIRTUAL_ENV" \
 && touch README.md \
 && pip install ".[postgres]" "gunicorn>=21" \
 && pip uninstall -y django-q-exporter && rm -rf build ./*.egg-info README.md
COPY README.md ./
COPY djq_contract ./djq_contract
COPY exporter ./exporter
COPY rsr_tasks ./rsr_tasks
RUN pip install --no-deps . && rm -rf build ./*.egg-info
COPY manage.py ./
# Numeric, so runAsNonRoot can verify it (k8s/deployment.yaml runs as the same uid).
USER 10001:10001
EXPOSE 9847 8000
ENTRYPOINT ["/usr/bin/tini", "--", "/app/k8s/entrypoint.sh"]
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "rsr_tasks.demo.wsgi:application"]
