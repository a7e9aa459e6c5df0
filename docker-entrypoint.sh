#!/bin/sh
# The container runs exactly what an operator runs: gunicorn for the API, `mailflow worker`
# for the worker. Anything else is passed to the mailflow command (e.g. `keys create ...`).
set -e
case "${1:-api}" in
  api)
    shift || true
    exec gunicorn service.wsgi:app --config python:service.gunicorn_conf \
      --bind "0.0.0.0:${MAILFLOW_PORT:-8080}" "$@"
    ;;
  worker)
    shift
    exec mailflow worker "$@"
    ;;
  *)
    exec mailflow "$@"
    ;;
esac
