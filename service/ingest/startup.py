"""Start-up of a command: its imports without the cyclic garbage collector.

What importing makes (modules, classes, functions, click's command tree) lives as long as the
process, yet the collector passes over it ~25 times while a dry run's imports run: ~2.5 ms of
a 0.1 s `mailflow ingest --dry-run`, finding nothing. Collection is off while the imports run,
and what they made is then frozen (``gc.freeze``: never scanned again); only switching it off
would leave one pass over all of it for later, which costs more than the 25.

A class rather than ``contextlib.contextmanager``: importing contextlib (and collections) first
would itself cost collections before this could switch them off.
"""

from __future__ import annotations

import gc
from types import TracebackType


class ImportsWithoutCollection:
    """``with ImportsWithoutCollection(): import ...``: collection off for the block, what
    exists after it frozen, collection back as the caller had it."""

    def __enter__(self) -> None:
        self.enabled = gc.isenabled()
        gc.disable()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        gc.freeze()
        if self.enabled:
            gc.enable()
