"""The README is true: every setting is listed, and its ingest example is accepted as written."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from service.config import setting_names

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
# The configuration table lives in docs/configuration.md (the README links to it).
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()


def _table_rows(text: str) -> set[str]:
    return set(re.findall(r"^\| `(MAILFLOW_[A-Z0-9_]+)` \|", text, re.M))


def test_every_setting_is_in_the_configuration_table():
    # A row added to the README (where the table used to be) still counts until moved.
    rows = _table_rows(CONFIGURATION) | _table_rows(README)
    missing = [name for name in setting_names() if name not in rows]
    assert not missing, f"add to the configuration table in docs/configuration.md: {missing}"


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


# -- every example in the README and docs/ names commands, options and routes that exist ------

DOCS = sorted((Path(__file__).resolve().parents[1] / "docs").glob("*.md"))
PAGES = [("README.md", README), *((f"docs/{p.name}", p.read_text()) for p in DOCS)]
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
_DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def _commands(text: str, program: str) -> list[str]:
    """The command lines of fenced blocks that start with ``program`` (continuations joined,
    comments and a leading ``$ `` dropped)."""
    found = []
    for block in _FENCE.findall(text):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.strip().removeprefix("$ ")
            words = command.split()
            # `mailflow ingest: 89 lines read ...` is output shown, not a command.
            if words[:1] == [program] and len(words) > 1 and not words[1].endswith(":"):
                found.append(re.sub(r"\s+#.*$", "", command))
    return found


def _examples(program: str) -> list[tuple[str, str]]:
    return [(page, c) for page, text in PAGES for c in _commands(text, program)]


@pytest.mark.parametrize(("page", "command"), _examples("mailflow"))
def test_every_mailflow_command_shown_exists_with_its_options(page, command):
    from click.testing import CliRunner

    from service.cli.commands import cli

    words = shlex.split(command.split("|")[0])[1:]
    words = [re.sub(r"^\[(--[a-z-]+)\]$", r"\1", w) for w in words]  # `[--json]`: optional
    path = [w for w in words if not w.startswith("-")][:2]
    result = CliRunner().invoke(cli, [*path, "--help"])
    if result.exit_code != 0:  # `mailflow ingest FILE`: the command is the first word
        result = CliRunner().invoke(cli, [path[0], "--help"])
    assert result.exit_code == 0, f"{page}: {command}: {result.output}"
    for option in (w.split("=")[0] for w in words if w.startswith("--")):
        assert option in result.output, f"{page}: {command}: no option {option}"


@pytest.mark.parametrize(("page", "command"), _examples("curl"))
def test_every_curl_example_calls_a_route_that_exists(page, command, app):
    # Not shlex: a JSON body may span lines. The method and the URL are all it needs.
    method = (re.search(r"-X\s+([A-Z]+)", command) or re.search("()", "")).group(1) or "GET"
    # The base is a scheme and host, or a variable (`$URL/api/v1/...`).
    url = re.search(r"(?:https?://[^/\s'\"]+|\$\{?[A-Z_]+\}?)(/[^\s'\"]*)", command)
    assert url, f"{page}: {command}: no URL"
    path = url.group(1).split("?")[0]
    adapter = app.url_map.bind("127.0.0.1")
    adapter.match(path, method=method)  # raises NotFound / MethodNotAllowed


def test_no_command_shown_carries_a_fixed_date():
    """A date in an example is refused once it leaves retention: compute it instead."""
    dated = [(page, c) for page, text in PAGES for program in ("mailflow", "curl")
             for c in _commands(text, program) if _DATE.search(c)]  # fmt: skip
    assert not dated, dated
