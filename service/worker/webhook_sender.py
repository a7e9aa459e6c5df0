"""One HTTP POST of a webhook delivery, to the address that was checked.

The host is resolved once (``service.core.webhook_targets.resolve_target``) and the connection
goes to that address, while TLS verifies the certificate for the URL's host name (SNI) and the
``Host`` header names it: a DNS answer that changes after the check reaches nothing. http.client
never follows a redirect; a 3xx is an answer like any other (a failure, see webhook_delivery).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass

from service.core.webhook_targets import Target

TIMEOUT_SECONDS = 10.0
MAX_ANSWER_BYTES = 64 * 1024  # of an answer's body, kept for the delivery log: the start
ERROR_TEXT_MAX = 300
USER_AGENT = "mailflow-webhooks/1"


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no answer (refused, timed out, TLS failed)
    latency_ms: int
    retry_after: str | None = None
    error: str | None = None


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=context)
        self._address = target.address
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def post(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    timeout: float = TIMEOUT_SECONDS,
    tls: ssl.SSLContext | None = None,
) -> Answer:
    """POST ``body`` to ``target``; never raises for what the network or receiver does."""
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = _PinnedHTTPSConnection(target, timeout, tls or ssl.create_default_context())
    else:
        connection = _PinnedHTTPConnection(target, timeout)
    started = time.perf_counter()
    try:
        connection.request("POST", target.path, body=body, headers={
            "Content-Type": "application/json", "User-Agent": USER_AGENT, **headers,
        })  # fmt: skip
        response = connection.getresponse()
        response.read(MAX_ANSWER_BYTES)
        return Answer(response.status, _ms_since(started), response.getheader("Retry-After"))
    except (OSError, http.client.HTTPException) as error:
        text = f"{type(error).__name__}: {error}"[:ERROR_TEXT_MAX]
        return Answer(None, _ms_since(started), error=text)
    finally:
        connection.close()


def _ms_since(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
