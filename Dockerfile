# Image for the web and worker containers (same image, switched by IS_WORKER).
# Built by docker-compose.yml and used by k8s/deployment.yaml.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 APP_DIR=/app
# curl for k8s/worker.sh (the exec readiness probe and the compose healthcheck);
# tini as PID 1: it forwards SIGTERM to entrypoint.sh and reaps the orphans that
# django-q's worker processes can leave behind (a shell as PID 1 reaps only its own).
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 app && useradd --uid 10001 --gid app --no-create-home app
WORKDIR /app
COPY pyproject.toml README.md ./
COPY exporter ./exporter
COPY rsr_tasks ./rsr_tasks
# Before pip install: the package ships them too (share/django-q-exporter).
COPY k8s/entrypoint.sh k8s/worker.sh ./k8s/
RUN pip install ".[postgres]" "gunicorn>=21"
COPY manage.py ./
# Numeric, so runAsNonRoot can verify it (k8s/deployment.yaml runs as the same uid).
USER 10001:10001
EXPOSE 9847 8000
ENTRYPOINT ["/usr/bin/tini", "--", "/app/k8s/entrypoint.sh"]
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "rsr_tasks.demo.wsgi:application"]
