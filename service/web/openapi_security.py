"""The OpenAPI side of admission (``service.web.auth``): the bearer scheme, and security plus
401/403/429 (and 408/503 for requests with a body) on every /api/v1 operation.

An apispec plugin (``Api(spec_kwargs={"extra_plugins": [...]})``): apispec hands it each
operation as a blueprint registers it, so a new endpoint is documented like it is enforced,
without doing anything. The security stays on the operations (not the spec's root): the
probes and /metrics take no key.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec, BasePlugin

from service.core.tlsrpt import INTAKE_PATH
from service.web.auth import is_api_path

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_INT_HEADER = {"schema": {"type": "integer", "minimum": 0}}
_RATE_HEADERS = {
    "RateLimit-Limit": {**_INT_HEADER, "description": "Requests allowed per window"},
    "RateLimit-Remaining": {**_INT_HEADER, "description": "Requests left in this window"},
    "RateLimit-Reset": {**_INT_HEADER, "description": "Seconds until the window resets"},
}
_SECURITY_RESPONSES = {
    "401": ("Unauthorized", "Missing, malformed, unknown or revoked API key",
            {"WWW-Authenticate": {"schema": {"type": "string"}}}),
    "403": ("Forbidden", "The key lacks the scope this operation needs",
            {"WWW-Authenticate": {"schema": {"type": "string"}}}),
    "429": ("TooManyRequests", "Over the key's rate limit, or (requests with a body) the "
            "tenant already sends as many bodies as it may at once; retry after `Retry-After` "
            "seconds",
            {"Retry-After": {**_INT_HEADER, "description": "Seconds to wait"}, **_RATE_HEADERS}),
}  # fmt: skip
# Requests with a body (every write) are read whole before they run (service.web.body_reads).
_BODY_RESPONSES = {
    "408": ("BodyTimeout", "The request body did not arrive within "
            "`MAILFLOW_BODY_READ_TIMEOUT_SECONDS`; the connection is closed", {}),
    "503": ("Unavailable", "The service or its data store cannot take the request now; retry "
            "after `Retry-After` seconds",
            {"Retry-After": {**_INT_HEADER, "description": "Seconds to wait"}}),
}  # fmt: skip
_WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
_METHODS = ("get", "head", "post", "put", "patch", "delete")


class SecurityDocs(BasePlugin):
    """The bearer scheme and its responses in the components; security and 401/403/429 (and
    408/503 on writes) on every /api/v1 operation."""

    def init_spec(self, spec: APISpec) -> None:
        spec.components.security_scheme("bearerAuth", {
            "type": "http", "scheme": "bearer",
            "description": "An API key from `mailflow keys create`: `Authorization: Bearer mf_...`. "
            "GET/HEAD need scope `read`, POST /api/v1/traces `ingest`, other writes `admin`; "
            "everything under /api/v1/webhooks `admin`.",
        })  # fmt: skip
        for name, description, headers in (
            *_SECURITY_RESPONSES.values(),
            *_BODY_RESPONSES.values(),
        ):
            spec.components.response(name, {"description": description, "content": _PROBLEM,
                                            "headers": headers})  # fmt: skip

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if path is None or operations is None or not is_api_path(path):
            return
        for method in _METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            # A TLS-RPT intake URL carries its credential, the token, in its path.
            intake = path.startswith(INTAKE_PATH)
            operation["security"] = [] if intake else [{"bearerAuth": []}]
            responses = operation.setdefault("responses", {})
            # The operation's own statuses, which apispec has not yet turned into strings.
            documented = {str(int(c)) if isinstance(c, int) else str(c) for c in responses}
            extra = _BODY_RESPONSES if method in _WRITE_METHODS else {}
            for status, (name, _, _) in {**_SECURITY_RESPONSES, **extra}.items():
                if status not in documented:
                    responses[status] = {"$ref": f"#/components/responses/{name}"}
