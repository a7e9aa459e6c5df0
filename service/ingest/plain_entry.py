"""`mailflow ingest --dry-run FILE...` started without click.

A dry run over one rotated log is mostly start-up, and click with what it imports (`inspect`,
`uuid`, `gettext`, `threading`) was ~9 ms of a ~95 ms run. A command line of `--dry-run` and
files only, with nothing in the environment that click would read for it, needs none of click:
it is run here with the command's defaults. Any other command line (another option, `--help`,
a file that cannot be opened, shell completion) goes to the click command, which says what it
always said; ``tests/ingest/test_ingest_plain_entry.py`` holds both ways to the same output.
"""

from __future__ import annotations

import errno
import os
import sys

from service.ingest.startup import ImportsWithoutCollection

DRY_RUN = "--dry-run"
RETENTION_ENV = "MAILFLOW_RETENTION_DAYS"  # the one variable click reads that a dry run uses


def plain_dry_run(args: list[str]) -> int | None:
    """Run the dry run ``args`` (the command's arguments) ask for and return its exit status;
    None, having done nothing, when they are not `--dry-run` and files alone."""
    files = tuple(arg for arg in args if arg != DRY_RUN)
    if len(files) == len(args) or not files or os.name == "nt":
        return None  # Windows: click expands wildcards in the arguments
    if any(arg.startswith("-") and arg != "-" for arg in files):
        return None  # an option, or `--`: click's to read
    if any(_is_completion(name) for name in os.environ):
        return None
    if sys.stderr is None:
        return None  # no stderr at all (fd 2 closed): click knows to write nothing
    with ImportsWithoutCollection():  # see service.ingest.startup
        # The default format's parser, imported here to be frozen with the rest.
        import service.ingest.postfix  # noqa: F401
        from service.ingest.runner import (
            DEFAULT_RETENTION_DAYS,
            MAX_RETENTION_DAYS,
            UsageProblem,
            ingest_logs,
        )
    retention = _retention_days(os.environ.get(RETENTION_ENV), DEFAULT_RETENTION_DAYS,
                                MAX_RETENTION_DAYS)  # fmt: skip
    if retention is None:
        return None
    try:
        return ingest_logs(files, echo=_echo_err, dry_run=True, retention_days=retention)
    except UsageProblem:
        return None  # raised before any line is read: click reports it, as it always has
    except KeyboardInterrupt:
        _echo_err("\nAborted!")  # click's words and status for an interrupted command
        return 1
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        # Whoever read stderr has gone: as click, exit 1 without a complaint at exit.
        sys.stdout = _QuietFlush(sys.stdout)  # type: ignore[assignment]
        sys.stderr = _QuietFlush(sys.stderr)  # type: ignore[assignment]
        return 1


def _retention_days(value: str | None, default: int, most: int) -> int | None:
    """``--retention-days`` from the environment as click reads it, ``default`` without it;
    None for a value that is not plainly a number in range (click then says why)."""
    if value is None:
        return default
    if value.isascii() and value.isdigit() and 1 <= int(value) <= most:
        return int(value)
    return None


def _is_completion(name: str) -> bool:
    """A shell asking click to complete a command line (`_MAILFLOW_COMPLETE`, ...)."""
    return name.startswith("_") and name.endswith("_COMPLETE")


def _echo_err(text: str) -> None:
    """``click.echo(text, err=True)`` for the summary's plain ASCII text."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class _QuietFlush:
    """A standard stream whose flush says nothing once its reader has gone (click's
    ``PacifyFlushWrapper``): the interpreter flushes it again at exit."""

    def __init__(self, stream: object) -> None:
        self.stream = stream

    def flush(self) -> None:
        try:
            self.stream.flush()  # type: ignore[attr-defined]
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise

    def __getattr__(self, name: str) -> object:
        return getattr(self.stream, name)
