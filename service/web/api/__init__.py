"""The REST API: one blueprint per resource, its schemas, body and window parsing, responses
and the per-app context.

Part of ``service.web``: it may import the rest of web, reports, core, store, telemetry and
config.
"""
