"""HTTP: request admission (keys, scopes, rate limits), headers, problem+json, request logs,
the cached-read lane and the body reader, the Flask API in ``web.api``, its reference page
``/docs`` (``web.api_docs``: Swagger UI served by the app, no CDN), and beside them the
dashboard for people in ``web.dashboard`` (which may use the API's schemas; the API never
imports it).

Flask lives here and in ``service.app`` only. It may import reports, core, store, telemetry
and config; only ``service.app`` and ``service.cli`` import it.
"""
