"""The ``mailflow`` command and its groups: run, serve, worker, notifier, keys, demo, openapi,
ingest.

The top of the house: it may import every other package (web to serve the API, worker to run
it, store and core for the tools). Nothing imports ``service.cli``.
"""

from service.ingest.startup import ImportsWithoutCollection

with ImportsWithoutCollection():  # click and the commands: see service.ingest.startup
    from service.cli.commands import cli, main

__all__ = ["cli", "main"]
