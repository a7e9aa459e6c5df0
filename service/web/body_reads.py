"""Request bodies: read whole, within a deadline, by a bounded share of the web threads.

Why it is done here, and so (gunicorn's gthread worker, as ``mailflow serve`` runs it):

- gthread hands a connection to one of its few pool threads (``MAILFLOW_WEB_THREADS``, 4) as
  soon as the first bytes arrive, and that thread reads headers and body with blocking
  ``recv`` calls and no read timeout. A client that declares 100 kB and sends one byte holds
  the thread for as long as it likes; eight such uploads held every thread of two processes and
  every other tenant timed out. Reading the body before taking a thread would need another
  worker model (an event loop that buffers whole requests, like nginx's request buffering);
  gthread has no hook for it. So the thread is taken, but both how long and how many are bounded.
- How long: the body is read here, before the app runs, under a deadline
  (``MAILFLOW_BODY_READ_TIMEOUT_SECONDS``). A per-``recv`` socket timeout would not do: a client
  trickling one byte just inside it resets it forever. At the deadline one watchdog thread per
  process shuts the socket's read side (``SHUT_RD``), which wakes the blocked ``recv`` at once
  with end-of-file; the request is answered 408 and the connection closed.
- How many: a request is admitted (key, scope, rate limit: ``auth.admit``) before its body is
  read, so unknown keys never hold a thread; then at most ``MAILFLOW_BODY_READS_PER_TENANT``
  bodies of one tenant, and at most all threads but one, are read at a time in a process. The
  excess is answered at once (429 for the tenant over its share, 503 when every body slot is
  taken), both with ``Retry-After``, so there is always a thread for reads and ``/readyz``.
- Whenever a body is left unread (a refusal, 408, 413), the socket's read side is shut before
  answering: otherwise gunicorn would drain the rest of the body (up to 5 s on a pool thread)
  and then linger up to 2 s closing the connection in its main loop, stalling every connection
  of the process. With ``SHUT_RD`` both see end-of-file at once.

The app then reads the body from memory, never from the socket. Outside gunicorn (tests, other
servers) there is no socket to watch: bodies are still read first, without the deadline.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, request

from service.web import auth
from service.web.context import state_of
from service.web.errors import Problem

StartResponse = Callable[..., Any]
_BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_AFTER_SECONDS = "1"


@dataclass
class _Watch:
    sock: socket.socket
    due: float
    expired: bool = field(default=False)


class BodyDeadlines:
    """One daemon thread per process that shuts the read side of sockets past their deadline."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._watches: set[int] = set()
        self._by_id: dict[int, _Watch] = {}
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, seconds: float) -> _Watch:
        watch = _Watch(sock, time.monotonic() + seconds)
        with self._changed:
            self._by_id[id(watch)] = watch
            if self._thread is None:  # started in the worker process, after gunicorn's fork
                self._thread = threading.Thread(target=self._run, name="body-deadlines",
                                                daemon=True)  # fmt: skip
                self._thread.start()
            if len(self._by_id) == 1:
                # Woken only when it waits for nothing: every deadline is as far ahead as this
                # one, so a watcher already waiting wakes before it is due anyway.
                self._changed.notify()
        return watch

    def release(self, watch: _Watch) -> bool:
        """Stop watching; True when the deadline had already passed (the socket is shut)."""
        with self._changed:
            self._by_id.pop(id(watch), None)
            return watch.expired

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for key, watch in list(self._by_id.items()):
                    if watch.due <= now:
                        watch.expired = True
                        del self._by_id[key]
                        with contextlib.suppress(OSError):  # the client may be gone already
                            watch.sock.shutdown(socket.SHUT_RD)
                next_due = min((w.due for w in self._by_id.values()), default=None)
                self._changed.wait(None if next_due is None else max(next_due - now, 0.001))


class BodySlots:
    """How many bodies are being read in this process, in all and per tenant.

    A request over a limit is refused at once when the reads that hold the slots are old (a
    slow upload), but waits up to ``grace_seconds`` while one of them is young: a client sending
    a few bodies in parallel at full speed collides for a moment, and deserves no 429. The
    moment is not short in a busy process: a 1 MB body arriving at full speed over loopback took
    over 50 ms while other threads parsed JSON (each ``recv`` gives up the GIL and waits to get
    it back), and the ingest benchmark's four connections then saw a 429.
    """

    def __init__(self, total: int, per_tenant: int, grace_seconds: float = 0.25) -> None:
        self.total = total
        self.per_tenant = per_tenant
        self.grace_seconds = grace_seconds
        self._freed = threading.Condition()
        self._started: dict[str, list[float]] = {}  # tenant -> when each of its reads began

    def take(self, tenant: str) -> float | Problem:
        """The slot taken for ``tenant`` (give it back), or the refusal to answer with."""
        give_up_at = time.monotonic() + self.grace_seconds
        with self._freed:
            while True:
                now = time.monotonic()
                mine = self._started.get(tenant, [])
                everyone = [start for starts in self._started.values() for start in starts]
                if len(mine) < self.per_tenant and len(everyone) < self.total:
                    self._started.setdefault(tenant, []).append(now)
                    return now
                holders = mine if len(mine) >= self.per_tenant else everyone
                if now >= give_up_at or all(now - start >= self.grace_seconds
                                            for start in holders):  # fmt: skip
                    return self._refusal(len(mine) >= self.per_tenant)
                self._freed.wait(give_up_at - now)

    def give_back(self, tenant: str, slot: float) -> None:
        with self._freed:
            starts = self._started[tenant]
            starts.remove(slot)
            if not starts:
                del self._started[tenant]
            self._freed.notify_all()

    def _refusal(self, tenant_full: bool) -> Problem:
        if tenant_full:
            return Problem(429, f"this tenant already sends {self.per_tenant} request bodies to "
                           "this server process at once; retry when one is done",
                           slug="too-many-uploads",
                           headers={"Retry-After": RETRY_AFTER_SECONDS})  # fmt: skip
        return Problem(
            503,
            "every thread that may read a request body is busy; retry",
            slug="busy",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )


def body_slots_for(threads: int, per_tenant: int) -> BodySlots:
    """All threads but one may read bodies; a tenant half of them unless configured."""
    total = max(1, threads - 1)
    return BodySlots(total, min(total, per_tenant or max(1, threads // 2)))


def has_body(environ: dict[str, Any]) -> bool:
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return True
    try:
        return int(environ.get("CONTENT_LENGTH") or 0) > 0
    except ValueError:
        return True  # a malformed length: let the app refuse it, and never drain it


def connection_socket(environ: dict[str, Any]) -> socket.socket | None:
    """The client's socket under gunicorn, when it carries this request alone: HTTP/1.x. An
    HTTP/2 connection multiplexes streams, and shutting it would end them all."""
    http1 = environ.get("SERVER_PROTOCOL", "").startswith("HTTP/1")
    if not http1 or environ.get("HTTP_VERSION") == "2":
        return None
    return environ.get("gunicorn.socket")


def stop_reading(environ: dict[str, Any]) -> None:
    """Shut the read side of the connection: its unread body is neither drained nor waited for."""
    sock = connection_socket(environ)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RD)


class BodyReads:
    """WSGI middleware, outermost: every request body is read here first (see the module doc)."""

    def __init__(self, app: Flask, inner: Callable[[dict[str, Any], StartResponse], Any]):
        self.state = state_of(app)
        self.inner = inner
        settings = self.state.settings
        self.timeout = settings.body_read_timeout_seconds
        self.max_bytes = settings.max_body_bytes
        self.slots = body_slots_for(settings.web_threads, settings.body_reads_per_tenant)
        self.deadlines = BodyDeadlines()
        app.before_request(answer_form_refusal)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not has_body(environ):
            return self.inner(environ, start_response)  # type: ignore[no-any-return]
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "")
        if not auth.is_api_path(path) and method == "POST" and _is_small_form(environ):
            return self._read_form(environ, start_response)
        if not auth.is_api_path(path) or method in _BODILESS_METHODS:
            return self._answer_unread(environ, start_response)  # no body is read there
        try:
            grant = auth.admit(self.state, environ.get("HTTP_AUTHORIZATION", ""), method, path,
                               self.state.clock())  # fmt: skip
        except Exception as error:  # noqa: BLE001 - the full path answers it, as always
            environ[auth.HANDOFF] = error
            return self._answer_unread(environ, start_response)
        slot = self.slots.take(grant.tenant)
        if isinstance(slot, Problem):
            return self._refuse(environ, start_response, slot, grant)
        try:
            outcome = self._read(environ)
        finally:
            self.slots.give_back(grant.tenant, slot)
        if isinstance(outcome, Problem):
            return self._refuse(environ, start_response, outcome, grant)
        environ["wsgi.input"] = io.BytesIO(outcome)
        environ["CONTENT_LENGTH"] = str(len(outcome))
        environ.pop("HTTP_TRANSFER_ENCODING", None)  # now a body of known length, in memory
        environ["wsgi.input_terminated"] = True
        environ[auth.HANDOFF] = grant
        return self.inner(environ, start_response)  # type: ignore[no-any-return]

    def _read(self, environ: dict[str, Any]) -> bytes | Problem:
        """The whole body, or the Problem to answer instead (408, 413, 400)."""
        declared = _declared_length(environ)
        if declared is not None and declared > self.max_bytes:
            return Problem(413, f"body of {declared} bytes exceeds the limit of "
                           f"{self.max_bytes} bytes")  # fmt: skip
        sock = connection_socket(environ)
        watch = self.deadlines.watch(sock, self.timeout) if sock is not None else None
        wanted = self.max_bytes + 1 if declared is None else declared
        body = b""
        failure: Exception | None = None
        try:
            # One call: gunicorn then receives in large pieces. The watchdog bounds its time.
            body = environ["wsgi.input"].read(wanted)
        except Exception as error:  # noqa: BLE001 - a malformed chunk, a reset: the client's fault
            failure = error
        finally:
            expired = watch is not None and self.deadlines.release(watch)
        if expired:
            return Problem(408, f"the request body did not arrive within {self.timeout:g} s",
                           slug="body-timeout", title="Request body too slow")  # fmt: skip
        if failure is not None:
            return Problem(400, "the request body could not be read (malformed chunked "
                           "encoding or a broken connection)", slug="unreadable-body")  # fmt: skip
        received = len(body)
        if received > self.max_bytes:
            return Problem(413, f"body exceeds the limit of {self.max_bytes} bytes")
        if declared is not None and received < declared:
            return Problem(400, f"the body ended after {received} of the {declared} bytes "
                           "its Content-Length declares", slug="unreadable-body")  # fmt: skip
        return body

    def _refuse(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        problem: Problem,
        grant: auth.Grant,
    ) -> Iterable[bytes]:
        environ[auth.HANDOFF] = auth.Refused(grant, problem)
        return self._answer_unread(environ, start_response)

    def _read_form(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """A dashboard form (sign-in, sign-out, an admin form): a few hundred bytes, read
        under the same deadline and within the same thread budget as every body, before any
        key is known (signing in is what presents one)."""
        slot = self.slots.take(FORM_SLOT)
        if isinstance(slot, Problem):
            return self._refuse_form(environ, start_response, slot)
        try:
            outcome = self._read(environ)
        finally:
            self.slots.give_back(FORM_SLOT, slot)
        if isinstance(outcome, Problem):
            return self._refuse_form(environ, start_response, outcome)
        environ["wsgi.input"] = io.BytesIO(outcome)
        environ["CONTENT_LENGTH"] = str(len(outcome))
        environ["wsgi.input_terminated"] = True
        return self.inner(environ, start_response)  # type: ignore[no-any-return]

    def _refuse_form(
        self, environ: dict[str, Any], start_response: StartResponse, problem: Problem
    ) -> Iterable[bytes]:
        """The form's refusal (503 or 429 with Retry-After, 408, 413, 400), answered by the app
        as the API's are: passing an empty form on would be answered "CSRF check failed"."""
        environ[FORM_REFUSAL] = problem
        return self._answer_unread(environ, start_response)

    def _answer_unread(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """The app's answer to a request whose body nobody reads; the connection then closes."""
        environ["wsgi.input"] = io.BytesIO()
        environ["CONTENT_LENGTH"] = "0"
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        try:
            return self.inner(environ, start_response)  # type: ignore[no-any-return]
        finally:
            stop_reading(environ)


# Dashboard forms outside /api/v1: url-encoded, of a known length, at most this long. Anything
# else sent there is left unread, and the form handler refuses the empty form.
FORM_MAX_BYTES = 16 * 1024
FORM_SLOT = "(dashboard forms)"  # the share of body slots forms take, as if one tenant
FORM_REFUSAL = "mailflow.form_refusal"  # environ: the Problem a form's body read ended with


def answer_form_refusal() -> None:
    """before_request: raise the Problem a dashboard form's body read ended with, if any, so the
    app answers it (problem+json, its headers) before any page handler reads the empty form."""
    problem = request.environ.pop(FORM_REFUSAL, None)
    if problem is not None:
        raise problem


def _is_small_form(environ: dict[str, Any]) -> bool:
    media_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    declared = _declared_length(environ)
    return (media_type == "application/x-www-form-urlencoded" and declared is not None
            and declared <= FORM_MAX_BYTES)  # fmt: skip


def _declared_length(environ: dict[str, Any]) -> int | None:
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
