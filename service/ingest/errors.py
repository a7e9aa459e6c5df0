"""Errors of the ingest tool that the command turns into exit statuses."""


class SendError(RuntimeError):
    """A failure that retrying cannot fix (bad key, wrong URL): the run stops with status 1."""
