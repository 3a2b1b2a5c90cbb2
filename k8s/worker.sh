#!/bin/sh
# Probe for the django-q worker: succeeds only when the probe server answers 200.
# Used by Kubernetes exec probes and the docker-compose healthcheck.
# Environment: PROBE_HOST (127.0.0.1), PROBE_PORT (the port of
#              DJANGO_Q_EXPORTER_LISTEN_ADDRESS, else 9847), PROBE_PATH (/healthz),
#              PROBE_TIMEOUT (seconds, 2). `python -m exporter check` uses the same.
# Exit 0 only on HTTP 200; otherwise 1 and one line on stderr saying why.
listen="${DJANGO_Q_EXPORTER_LISTEN_ADDRESS:-}"
host="${PROBE_HOST:-127.0.0.1}"
port="${PROBE_PORT:-${listen##*:}}"
port="${port:-9847}"
path="${PROBE_PATH:-/healthz}"
timeout="${PROBE_TIMEOUT:-2}"
url="http://${host}:${port}${path}"

code=$(curl --silent --output /dev/null --write-out '%{http_code}' \
    --max-time "$timeout" --connect-timeout "$timeout" "$url" 2>/dev/null)
rc=$?
if [ "$rc" -ne 0 ]; then
    case "$rc" in
        7) why="connection refused" ;;
        28) why="no answer within ${timeout}s" ;;
        6) why="host not resolved" ;;
        *) why="curl exit code $rc" ;;
    esac
    echo "worker.sh: $url unreachable: $why" >&2
    exit 1
fi
if [ "$code" = "200" ]; then
    exit 0
fi
echo "worker.sh: $url answered HTTP $code" >&2
exit 1
