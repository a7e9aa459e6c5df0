"""A real webhook receiver on loopback for the tests, and a DNS the tests answer themselves.

The receiver verifies every delivery with the ``standardwebhooks`` package (an implementation
of the specification we did not write) and keeps what arrived, in order. Its answers are a
function the test sets: a status, optionally a ``Retry-After``, or holding the request until
the test lets it go.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    path: str
    verified: bool
    status: int  # what the receiver answered

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    secrets: list[str] = field(default_factory=list)  # any of them verifies a delivery
    answer: Callable[[Received], int | tuple[int, dict[str, str]]] = lambda _: 200
    received: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)  # see hold

    def verified(self, body: bytes, headers: dict[str, str]) -> bool:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers, json_parse=False)
                return True
            except Exception:  # noqa: BLE001 - WebhookVerificationError and malformed headers
                continue
        return False

    def delivered(self) -> list[Received]:
        """What was answered 2xx, in order of arrival."""
        return [r for r in self.received if 200 <= r.status < 300]


@contextmanager
def receiver(hold: bool = False, tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1; with ``hold`` each request waits for ``release`` (a test
    stops a notifier while a post is in flight); with ``tls`` it speaks HTTPS."""
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            me = state["r"]
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            got = Received(headers.get("webhook-id", ""), headers, body, self.path,
                           me.verified(body, headers), 0)  # fmt: skip
            me.arrived.set()
            if hold:
                me.release.wait(30)
            answer = me.answer(got)
            status, extra = answer if isinstance(answer, tuple) else (answer, {})
            got.status = status
            me.received.append(got)
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls is not None else "http"
    state["r"] = Receiver(f"{scheme}://127.0.0.1:{server.server_port}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        state["r"].release.set()
        server.shutdown()
        thread.join()
        server.server_close()


@dataclass
class FakeDns:
    """A resolver the test controls: name -> addresses; unknown names do not resolve."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"no such host {host}")
        return list(self.answers[host])
