"""The committed spec is the one the code generates: docs that are true."""

from __future__ import annotations

import json
from pathlib import Path

from service.cli.commands import spec_json

COMMITTED = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_code():
    generated = json.loads(spec_json())
    committed = json.loads(COMMITTED.read_text())
    assert committed == generated, "run `mailflow openapi` (make openapi) and commit the result"


def test_every_api_operation_documents_problem_json_errors():
    spec = json.loads(spec_json())
    problem = spec["components"]["responses"]["DEFAULT_ERROR"]["content"]
    assert list(problem) == ["application/problem+json"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert operation.get("summary"), (method, path)
            assert "default" in operation["responses"], (method, path)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and "content" in response:
                    assert list(response["content"]) == ["application/problem+json"], (path, status)


def test_swagger_ui_is_served(client):
    response = client.get("/docs")
    assert response.status_code == 200 and b"swagger" in response.data.lower()
