"""The `ingest` command end to end, without a server: dry run, NDJSON output, errors."""

from __future__ import annotations

import gzip
import json

from click.testing import CliRunner

from service.ingest.command import Progress, ingest

from .support import FIXTURES

LOG = str(FIXTURES / "postfix_scenarios.log")


def run(*args: str, **kw):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(ingest, list(args), **kw)


def test_dry_run_summary() -> None:
    result = run(LOG, "--dry-run", "--year", "2025")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # the summary is on stderr
    err = result.stderr
    assert "89 lines read" in err
    assert "traces: 13" in err
    assert "inbound: TLS1.0 1, TLS1.1 1, TLS1.2 1, TLS1.3 2, none 2" in err
    assert "postscreen" in err and "dry run: nothing sent" in err


def test_output_ndjson_from_gzip_stdin() -> None:
    data = gzip.compress((FIXTURES / "postfix_scenarios.log").read_bytes())
    result = run("-", "--output", "ndjson", "--year", "2025", input=data)
    assert result.exit_code == 0, result.output
    traces = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(traces) == 13
    assert {t["direction"] for t in traces} == {"inbound", "outbound"}


def test_same_ids_twice_and_for_rotated_overlap(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lines = (FIXTURES / "postfix_scenarios.log").read_text().splitlines(keepends=True)
    old, new = tmp_path / "mail.log.1", tmp_path / "mail.log"
    old.write_text("".join(lines[:70]))
    new.write_text("".join(lines[30:]))
    once = run(LOG, "--output", "ndjson", "--year", "2025").stdout.splitlines()
    twice = run(str(old), str(new), "--output", "ndjson", "--year", "2025").stdout.splitlines()
    ids_once = {json.loads(x)["id"] for x in once}
    ids_twice = [json.loads(x)["id"] for x in twice]
    assert set(ids_twice) == ids_once  # overlap re-emits traces, with the same ids


def test_usage_errors_exit_2() -> None:
    assert run(LOG).exit_code == 2  # no key, not a dry run
    assert run("/no/such/file", "--dry-run").exit_code == 2
    assert run(LOG, "--dry-run", "--timezone", "Mars/Olympus").exit_code == 2
    assert run(LOG, "--key", "k", "--url", "ftp://x").exit_code == 2


def test_unreachable_api_exits_3_after_retries() -> None:
    result = run(LOG, "--key", "k", "--url", "http://127.0.0.1:9", "--max-retries", "0")
    assert result.exit_code == 3
    assert "failed: 13" in result.stderr


def test_progress_only_when_enabled() -> None:
    class Stream:
        def __init__(self) -> None:
            self.text = ""

        def write(self, s: str) -> None:
            self.text += s

        def flush(self) -> None:
            pass

    now = [0.0]
    on, off = Stream(), Stream()
    Progress(off, False, clock=lambda: now[0]).update(10, 1, 0)
    bar = Progress(on, True, clock=lambda: now[0])
    now[0] = 2.0
    bar.update(1000, 5, 1)
    bar.update(2000, 5, 1)  # too soon after the last redraw
    bar.done()
    assert off.text == ""
    assert "1,000 lines (500/s)  5 traces  1 errors" in on.text
    assert "2,000" not in on.text


def test_url_and_key_from_the_environment() -> None:
    env = {"MAILFLOW_URL": "http://127.0.0.1:9", "MAILFLOW_KEY": "k"}
    result = run(LOG, "--max-retries", "0", env=env)
    assert result.exit_code == 3  # the key was found (no usage error); the URL is unreachable
    assert "failed: 13" in result.stderr
