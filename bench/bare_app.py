"""The yardstick: a bare Flask JSON endpoint, served under the same gunicorn settings."""

from flask import Flask, Response

app = Flask(__name__)
BODY = b'{"status":"ok","payload":"' + b"x" * 900 + b'"}'  # about a snapshot's size


@app.get("/healthz")
def healthz() -> Response:
    return Response(b"{}", mimetype="application/json")


@app.get("/json")
def json_endpoint() -> Response:
    return Response(BODY, mimetype="application/json")
