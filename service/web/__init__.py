"""HTTP: request admission (keys, scopes, rate limits), headers, problem+json, request logs,
the cached-read lane and the body reader, the Flask API in ``web.api``, and its reference page
``/docs`` (``web.api_docs``: Swagger UI served by the app, no CDN).

Flask lives here and in ``service.app`` only. It may import reports, core, store, telemetry
and config; only ``service.app`` and ``service.cli`` import it.
"""
