"""Where log lines come from: files (plain, gzip, xz), standard input, or a growing log.

Compression is recognised by its magic bytes rather than the file name, because rotated logs
are named every way (`mail.log.2.gz`, `mail.log-20240101`, `maillog.xz`) and stdin has none.
Undecodable bytes become U+FFFD: one bad byte must not stop a run.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# Not typing's: a dry run does not import typing (~3 ms of its start-up); the names are for
# the type checker only (mypy takes any constant of this name as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, TextIO

_GZIP_MAGIC = b"\x1f\x8b"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_BZ2_MAGIC = b"BZh"
MAX_LINE = 1 << 20  # bytes a follower buffers while waiting for the end of a line


def _decompressed(raw: io.BufferedReader) -> BinaryIO:
    head = raw.peek(6)[:6]
    # Each codec is imported only when its magic is seen: plain logs load none of them.
    if head.startswith(_GZIP_MAGIC):
        import gzip

        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if head.startswith(_XZ_MAGIC):
        import lzma

        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    if head.startswith(_BZ2_MAGIC):
        import bz2

        return bz2.BZ2File(raw)  # type: ignore[return-value]
    return raw  # type: ignore[return-value]


@contextmanager
def open_text(path: str) -> Iterator[TextIO]:
    """Open `path` (or `-` for stdin) as text, decompressing gzip, xz or bzip2 transparently."""
    raw: io.BufferedReader
    if path == "-":
        raw = io.BufferedReader(sys.stdin.buffer)  # type: ignore[arg-type]
        close_raw = False
    else:
        raw = open(path, "rb")  # noqa: SIM115 - closed below, also when decompression fails
        close_raw = True
    try:
        text = io.TextIOWrapper(_decompressed(raw), encoding="utf-8", errors="replace")
        yield text
    finally:
        if close_raw:
            raw.close()


class Follower:
    """Reads what is appended to a log, like `tail -F`: survives rotation and truncation.

    `poll()` does one non-blocking round and returns the complete lines of at most one chunk
    (`chunk_size` bytes) that appeared since the last call; an empty list means there is nothing
    new. The caller decides how long to wait between rounds (tests call it directly).
    Rotation (the path now names another file) is handled by draining the old file first, then
    reading the new one from its start; truncation (the file got shorter) restarts at 0.
    """

    def __init__(self, path: str, from_end: bool = False, chunk_size: int = 1 << 20) -> None:
        self.path = path
        self.from_end = from_end
        self.chunk_size = chunk_size
        self.rotations = 0
        self.truncations = 0
        self._fh: BinaryIO | None = None
        self._identity: tuple[int, int] | None = None
        self._partial = b""

    def poll(self) -> list[str]:
        lines: list[str] = []
        if self._fh is None and not self._open(first=True):
            return lines
        assert self._fh is not None
        if not self._read_some(lines):
            return lines  # more is waiting: the next poll goes on from here
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return lines  # rotated away and not yet recreated: keep the old file open
        if (st.st_dev, st.st_ino) != self._identity:
            # Rotated: whatever the old file got before the rename is read first.
            if not self._read_some(lines):
                return lines  # the old file is not drained yet; the next poll goes on
            if self._partial:
                lines.append(self._partial.decode("utf-8", "replace"))
                self._partial = b""
            self._fh.close()
            self._fh = None
            self.rotations += 1
            if self._open(first=False):
                self._read_some(lines)
        elif st.st_size < self._fh.tell():
            # Truncated in place (copytruncate): start over, the partial line is gone.
            self.truncations += 1
            self._fh.seek(0)
            self._partial = b""
            self._read_some(lines)
        return lines

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _open(self, first: bool) -> bool:
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - kept open across polls, closed in close()
        except FileNotFoundError:
            return False
        st = os.fstat(fh.fileno())
        self._identity = (st.st_dev, st.st_ino)
        if first and self.from_end:
            fh.seek(0, os.SEEK_END)
        self._fh = fh
        return True

    def _read_some(self, lines: list[str]) -> bool:
        """Append the complete lines of at most one chunk; True when the file is drained.

        One chunk per poll keeps memory flat however much the log already holds (following a
        multi-gigabyte log used to read all of it into one list first), and lets the caller
        send what it has before reading on.
        """
        assert self._fh is not None
        while True:
            chunk = self._fh.read(self.chunk_size)
            if not chunk:
                return True
            data = self._partial + chunk
            parts = data.split(b"\n")
            # The last piece has no newline yet: the writer may be mid-line.
            self._partial = parts.pop()
            if len(self._partial) > MAX_LINE:
                parts.append(self._partial)  # a runaway line: pass it on rather than grow
                self._partial = b""
            lines.extend(p.decode("utf-8", "replace") + "\n" for p in parts)
            drained = len(chunk) < self.chunk_size
            if parts or drained:
                return drained
            # A chunk inside one long line: read on (bounded by MAX_LINE), so an empty
            # answer keeps meaning "nothing new".
