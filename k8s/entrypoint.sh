#!/bin/sh
# Container start script. With IS_WORKER set (1/true/yes) it runs the probe
# server and the django-q cluster side by side, forwards SIGTERM/SIGINT to
# both and exits with qcluster's exit code when qcluster exits. Otherwise it
# runs the web command given as arguments.
set -u
cd "${APP_DIR:-/app}" 2>/dev/null || true
PYTHON="${PYTHON:-python}"

case "$(printf '%s' "${IS_WORKER:-}" | tr '[:upper:]' '[:lower:]')" in
    1|true|yes|on) ;;
    *)
        if [ "$#" -eq 0 ]; then
            echo "entrypoint.sh: not a worker (IS_WORKER unset) and no web command given" >&2
            exit 64
        fi
        exec "$@"
        ;;
esac

probe_pid=""
cluster_pid=""
stopping=""
# shellcheck disable=SC2317  # called by the trap
stop() {
    stopping=1
    for pid in $cluster_pid $probe_pid; do
        kill -TERM "$pid" 2>/dev/null
    done
}
# Trap before starting anything: a SIGTERM during start-up (pod deleted while it
# starts) must not orphan the children.
trap stop TERM INT

"$PYTHON" -m exporter serve &
probe_pid=$!
"$PYTHON" manage.py qcluster &
cluster_pid=$!
if [ -n "$stopping" ]; then
    stop  # the signal came before qcluster existed
fi

# wait returns early when a trapped signal arrives: keep waiting for qcluster.
wait "$cluster_pid"
status=$?
while kill -0 "$cluster_pid" 2>/dev/null; do
    wait "$cluster_pid"
    status=$?
done
kill -TERM "$probe_pid" 2>/dev/null
wait "$probe_pid" 2>/dev/null
echo "entrypoint.sh: qcluster exited with status $status" >&2
exit "$status"
