"""The read side: the report documents (snapshot, TLS, connectors, insights) built from the
stored aggregates, and the cache of built views.

No Flask: it may import core, store and config, never web, worker or cli.
"""
