#!/bin/sh
# Probe for the django-q worker: succeeds only when the probe server answers 200.
# Used by Kubernetes exec probes and the docker-compose healthcheck.
# Environment: PROBE_HOST (127.0.0.1), PROBE_PORT (the port of
#              DJANGO_Q_EXPORTER_LISTEN_ADDRESS, else 9847), PROBE_PATH (/healthz),
#              PROBE_TIMEOUT (seconds, 2). `python -m exporter check` uses the same.
#   TLS:  https when DJANGO_Q_EXPORTER_TLS_CERT_FILE is set (the server's own setting);
#         PROBE_CA_FILE verifies the server against that CA (default: no verification,
#         see below); PROBE_CLIENT_CERT_FILE + PROBE_CLIENT_KEY_FILE for mutual TLS.
#   Auth: the bearer token of DJANGO_Q_EXPORTER_AUTH_TOKEN_FILE, else
#         DJANGO_Q_EXPORTER_AUTH_TOKEN, is sent (needed with --auth-probes yes); it goes
#         to curl on stdin, never on its command line (visible in ps).
# Exit 0 only on HTTP 200; otherwise 1 and one line on stderr saying why.
listen="${DJANGO_Q_EXPORTER_LISTEN_ADDRESS:-}"
host="${PROBE_HOST:-127.0.0.1}"
port="${PROBE_PORT:-${listen##*:}}"
port="${port:-9847}"
path="${PROBE_PATH:-/healthz}"
timeout="${PROBE_TIMEOUT:-2}"
scheme=http

set -- --silent --output /dev/null --write-out '%{http_code} %{errormsg}' \
    --max-time "$timeout" --connect-timeout "$timeout" --config -
if [ -n "${DJANGO_Q_EXPORTER_TLS_CERT_FILE:-}" ]; then
    scheme=https
    if [ -n "${PROBE_CA_FILE:-}" ]; then
        set -- "$@" --cacert "$PROBE_CA_FILE"
    else
        # No verification by default: the target is this same pod on 127.0.0.1 (no
        # network hop to intercept), and the certificate is issued for the Service
        # name, which 127.0.0.1 never matches.
        set -- "$@" --insecure
    fi
    if [ -n "${PROBE_CLIENT_CERT_FILE:-}" ]; then
        set -- "$@" --cert "$PROBE_CLIENT_CERT_FILE"
        if [ -n "${PROBE_CLIENT_KEY_FILE:-}" ]; then
            set -- "$@" --key "$PROBE_CLIENT_KEY_FILE"
        fi
    fi
fi
url="${scheme}://${host}:${port}${path}"

if [ -n "${DJANGO_Q_EXPORTER_AUTH_TOKEN_FILE:-}" ]; then
    if ! token=$(cat -- "$DJANGO_Q_EXPORTER_AUTH_TOKEN_FILE" 2>/dev/null) || [ -z "$token" ]; then
        echo "worker.sh: $url not probed: cannot read the bearer token from" \
            "$DJANGO_Q_EXPORTER_AUTH_TOKEN_FILE" >&2
        exit 1
    fi
else
    token="${DJANGO_Q_EXPORTER_AUTH_TOKEN:-}"
fi

# curl's config on stdin: the token never appears in argv. printf is a builtin, and
# sed escapes what curl's quoted config strings interpret (backslash, double quote).
config() {
    if [ -n "$token" ]; then
        printf '%s\n' "$token" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' \
            -e 's/[\\"]/\\&/g' -e 's/^/header = "Authorization: Bearer /' -e 's/$/"/'
    fi
}

out=$(config | curl "$@" "$url" 2>/dev/null)
rc=$?
code="${out%% *}"
detail="${out#* }"
if [ "$rc" -ne 0 ]; then
    case "$rc" in
        7) why="connection refused"; detail="" ;;
        28) why="no answer within ${timeout}s"; detail="" ;;
        6) why="host not resolved"; detail="" ;;
        60) why="TLS: server certificate not accepted with PROBE_CA_FILE" ;;
        77) why="TLS: cannot use PROBE_CA_FILE ${PROBE_CA_FILE:-}" ;;
        58) why="TLS: cannot use PROBE_CLIENT_CERT_FILE/PROBE_CLIENT_KEY_FILE" ;;
        35|52|56)
            # A server requiring client certificates rejects a TLS 1.3 client after
            # the handshake, often by just closing: a reset or an empty reply (56/52).
            if [ "$scheme" = https ] && [ -z "${PROBE_CLIENT_CERT_FILE:-}" ] && {
                [ -n "${DJANGO_Q_EXPORTER_TLS_CLIENT_CA_FILE:-}" ] ||
                    case "$detail" in *"certificate required"*) true ;; *) false ;; esac
            }; then
                why="TLS: the server requires a client certificate (set PROBE_CLIENT_CERT_FILE and PROBE_CLIENT_KEY_FILE)"
            elif [ "$rc" -eq 35 ]; then
                why="TLS handshake failed"
            elif [ "$rc" -eq 56 ]; then
                why="connection failed while receiving"
            elif [ "$scheme" = https ]; then
                why="the server closed the connection without answering"
            else
                why="empty reply (an HTTPS server? DJANGO_Q_EXPORTER_TLS_CERT_FILE switches to https)"
            fi ;;
        *) why="curl exit code $rc" ;;
    esac
    if [ -n "$detail" ] && [ "$detail" != "$out" ]; then  # curl's own words, one line
        why="$why (curl $rc: $detail)"
    fi
    echo "worker.sh: $url unreachable: $why" >&2
    exit 1
fi
if [ "$code" = "200" ]; then
    exit 0
fi
echo "worker.sh: $url answered HTTP $code" >&2
exit 1
