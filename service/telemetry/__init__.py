"""Metrics (counted per process, flushed to Redis, rendered for Prometheus) and JSON logging.

No Flask: it may import core, store and config, never web, reports, worker or cli.
"""
