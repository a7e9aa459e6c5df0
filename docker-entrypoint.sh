#!/bin/sh
# The container runs exactly what an operator runs: gunicorn for the API, `mailflow worker`
# for the worker. Anything else is passed to the mailflow command (e.g. `keys create ...`).
#
# `docker-entrypoint.sh healthcheck` is the image's HEALTHCHECK: it probes the role this
# container was started with, which the start below writes down (a health check is a separate
# process and cannot see the main one's arguments):
#   api     GET /readyz: 200 only while Redis answers and takes writes, holds its data, and a
#           worker heartbeat is fresh, i.e. while the answers this API gives are true;
#   worker  `mailflow worker --check`: this worker's heartbeat in Redis is fresh;
#   other   (a one-off command such as `keys create`) nothing to probe.
set -e
ROLE_FILE="${TMPDIR:-/tmp}/mailflow-role"

remember_role() {
  printf '%s\n' "$@" >"$ROLE_FILE"
}

healthcheck() {
  [ -f "$ROLE_FILE" ] || exit 0
  role=$(head -n 1 "$ROLE_FILE")
  case "$role" in
    api)
      exec python -c 'import os, sys, urllib.request
url = "http://127.0.0.1:%s/readyz" % os.environ.get("MAILFLOW_PORT", "8080")
try:
    urllib.request.urlopen(url, timeout=2)
except Exception as error:  # 503 (it says why), refused, timed out
    sys.exit("not ready: %s" % error)'
      ;;
    worker)
      # The worker's own arguments (e.g. --name worker-1) name the heartbeat to look for.
      set --
      first=yes
      while IFS= read -r arg; do
        if [ "$first" = yes ]; then first=no; else set -- "$@" "$arg"; fi
      done <"$ROLE_FILE"
      exec mailflow worker --check "$@"
      ;;
  esac
  exit 0
}

case "${1:-api}" in
  healthcheck)
    healthcheck
    ;;
  api)
    shift || true
    remember_role api
    exec gunicorn service.wsgi:app --config python:service.gunicorn_conf \
      --bind "0.0.0.0:${MAILFLOW_PORT:-8080}" "$@"
    ;;
  worker)
    shift
    remember_role worker "$@"
    exec mailflow worker "$@"
    ;;
  *)
    exec mailflow "$@"
    ;;
esac
