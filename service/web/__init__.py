"""HTTP: request admission (keys, scopes, rate limits), headers, problem+json, request logs,
the cached-read lane and the body reader, and the Flask API in ``web.api``.

Flask lives here and in ``service.app`` only. It may import reports, core, store, telemetry
and config; only ``service.app`` and ``service.cli`` import it.
"""
