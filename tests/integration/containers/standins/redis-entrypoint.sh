#!/bin/sh
# redis-server as the official redis image starts it: protected mode off unless the
# arguments name a config file.
set -eu
if [ "${1:-}" = redis-server ]; then
    shift
    case "${1:-}" in
        *.conf) exec redis-server "$@" ;;
        *) exec redis-server --protected-mode no "$@" ;;
    esac
fi
exec "$@"
