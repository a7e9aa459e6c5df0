"""The secret that signs pagination cursors, the same in every API process and after restarts.

``MAILFLOW_SECRET_KEY`` when set (an operator who rotates secrets, or runs several Redis
deployments behind one API). Otherwise a random 32-byte secret kept in Redis
(``keys.cursor_secret``): the first process to need it creates it with SET NX, every other
process reads the one that won. Each process reads it once; when a cursor's signature does
not verify it reads it again, so a store replaced under a running process (a new secret)
costs one round trip per refused cursor, not wrong answers.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import TypeVar

import redis

from service.core.paging import CursorSignatureError
from service.store import keys

T = TypeVar("T")


def load_or_create(client: redis.Redis) -> bytes:
    """The stored secret, created now if there is none yet (read first: a store at its memory
    limit refuses the SET even when it would change nothing, and the secret exists by then)."""
    stored = client.get(keys.cursor_secret())
    if stored is not None:
        return stored if isinstance(stored, bytes) else str(stored).encode()
    candidate = secrets.token_hex(32)
    client.set(keys.cursor_secret(), candidate, nx=True)
    stored = client.get(keys.cursor_secret())
    if stored is None:  # deleted between the two calls: use ours, stored again
        client.set(keys.cursor_secret(), candidate)
        return candidate.encode()
    return stored if isinstance(stored, bytes) else str(stored).encode()


class CursorSecret:
    """One process's view of the cursor secret (in the app's extension state)."""

    def __init__(self, configured: str) -> None:
        self._configured = configured.encode() if configured else None
        self._stored: bytes | None = None
        self._lock = threading.Lock()

    def get(self, client: redis.Redis, fresh: bool = False) -> bytes:
        if self._configured is not None:
            return self._configured
        with self._lock:
            if self._stored is None or fresh:
                self._stored = load_or_create(client)
            return self._stored

    def verified(self, client: redis.Redis, decode: Callable[[bytes], T]) -> T:
        """``decode(secret)``, once more with the secret read again if the signature fails."""
        try:
            return decode(self.get(client))
        except CursorSignatureError:
            if self._configured is not None:
                raise
            return decode(self.get(client, fresh=True))
