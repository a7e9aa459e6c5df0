"""Redis: the keys (``keys``), the Lua scripts (``scripts`` and ``lua/``), and one module per
stored thing; the connection, the embedded and local-cluster servers.

It may import core and config, never web, reports, worker, telemetry or cli.
"""
