"""An outage in front of the live API: a real HTTP server that is down for a while, on a test clock.

`OutageGate` listens on its own port and forwards every request to the live API, except while the
outage lasts: then it either refuses connections (nothing listens on the port yet) or answers
503. Time is the gate's own counter, moved only by `sleep()`, which the sender under test uses as
its sleep function: a four-minute outage takes no real time.
"""

from __future__ import annotations

import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OutageGate:
    """Down until `up_at` seconds of gate time: refusing connections or answering 503."""

    def __init__(self, upstream: str, up_at: float, refuse: bool) -> None:
        self.upstream = urlsplit(upstream)
        self.up_at = up_at
        self.refuse = refuse
        self.now = 0.0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.events: list[tuple[str, object]] = []  # ("sleep", s), ("503", n), ("warn", text)
        self.answered_503 = 0
        self.forwarded = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if not refuse:
            self._listen()

    def sleep(self, seconds: float) -> None:
        """The sender's sleep: moves gate time; the port starts listening when the outage ends."""
        self.events.append(("sleep", seconds))
        self.now += seconds
        if self._server is None and self.now >= self.up_at:
            self._listen()

    def warn(self, text: str) -> None:
        self.events.append(("warn", text))

    @property
    def down(self) -> bool:
        return self.now < self.up_at

    def _listen(self) -> None:
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if gate.down:
                    gate.answered_503 += 1
                    gate.events.append(("503", gate.answered_503))
                    self._answer(503, {"Content-Type": "application/problem+json"}, b"{}")
                    return
                gate.forwarded += 1
                conn = http.client.HTTPConnection(
                    gate.upstream.hostname, gate.upstream.port, timeout=10
                )
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                    conn.request("POST", self.path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    kept = {"Content-Type": response.getheader("Content-Type", "")}
                    self._answer(response.status, kept, data)
                finally:
                    conn.close()

            def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet test output

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> OutageGate:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
