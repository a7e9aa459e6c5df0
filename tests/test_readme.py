"""The README is true: every setting is listed, and its ingest example is accepted as written."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

from service.config import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table():
    missing = [f"MAILFLOW_{f.name.upper()}" for f in fields(Settings)
               if f"`MAILFLOW_{f.name.upper()}`" not in README]  # fmt: skip
    assert not missing, f"add to the README's configuration table: {missing}"


# The example's timestamp is the shell's current time; here it is the injected clock's.
NOW_IN_SHELL = """'"$(date -u +%FT%TZ)"'"""


def test_the_readme_ingest_example_is_accepted_as_written(client, run_worker, clock):
    body = re.search(r"-d '(\[.*?\])'\n", README, re.S).group(1)
    assert NOW_IN_SHELL in body, "the example's timestamp must be the current time"
    body = body.replace(NOW_IN_SHELL, clock.now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    response = client.post("/api/v1/traces", data=body, content_type="application/json")
    assert response.status_code == 202, response.data
    assert json.loads(re.search(r"# (\{\"accepted\".*\})", README).group(1)) == response.json
    run_worker()
    inbound = client.get("/api/v1/mailflow/snapshot").json["directions"]["inbound"]
    assert inbound["tls"]["TLS1.2"]["messages"] == 1
