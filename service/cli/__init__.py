"""The ``mailflow`` command and its groups: run, serve, worker, notifier, keys, demo, openapi,
ingest.

The top of the house: it may import every other package (web to serve the API, worker to run
it, store and core for the tools). Nothing imports ``service.cli``.
"""

from service.ingest.startup import ImportsWithoutCollection

with ImportsWithoutCollection():  # see service.ingest.startup
    from service.cli.entry import main

# Not `typing.TYPE_CHECKING`: a dry run imports no typing (service.ingest.runner).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from service.cli.commands import cli

__all__ = ["cli", "main"]


def __getattr__(name: str) -> object:
    """``from service.cli import cli``: the click group, imported only when asked for."""
    if name != "cli":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with ImportsWithoutCollection():
        from service.cli.commands import cli
    return cli
