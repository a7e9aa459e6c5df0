"""`mailflow ingest --format tlsrpt`: reports from JSON, gzip, report e-mails (as they are),
mbox files and Maildir folders reach the API; reading the same mailbox again changes nothing."""

from __future__ import annotations

import gzip
import json
import mailbox
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from service.ingest.command import ingest
from service.store import tlsrpt_store
from service.store.connection import connect_url
from tests.tlsrpt_reports import (
    day_after,
    expected_sessions,
    json_of,
    report_email,
    report_on,
    shared_samples,
    two_policies_on,
)


def _run(live_api, *paths: Path | str, dry_run: bool = False):
    args = [*map(str, paths), "--format", "tlsrpt", "--url", live_api.url, "--key", live_api.key,
            "--max-retries", "0"]  # fmt: skip
    return CliRunner().invoke(ingest, [*args, "--dry-run"] if dry_run else args)


def _sessions(redis_url: str, day: str) -> dict[str, tuple[int, int]]:
    client = connect_url(redis_url)
    try:
        counts = tlsrpt_store.read_days(client, "default", [day]).get(day, {})
    finally:
        client.close()
    out: dict[str, tuple[int, int]] = {}
    for field, count in counts.items():
        kind, domain, *_ = field.split("\x1f")
        ok, failed = out.get(domain, (0, 0))
        if kind in "sf":
            out[domain] = (ok + count, failed) if kind == "s" else (ok, failed + count)
    return out


def test_every_sample_file_as_it_is(live_api, redis_server) -> None:
    for sample in shared_samples():
        document = json_of(sample)
        live_api.clock.now = day_after(document)
        day = (live_api.clock.now - timedelta(days=1)).date().isoformat()
        first = _run(live_api, sample)
        assert first.exit_code == 0, first.output
        assert "1 TLS-RPT reports found" in first.output
        # the Google e-mail carries the report of the extracted JSON: counted by whichever
        # came first, the same numbers either way
        assert _sessions(redis_server.url, day) == expected_sessions(document), sample.name
        again = _run(live_api, sample)
        assert "counted: 0  duplicates: 1" in again.output, again.output
        assert _sessions(redis_server.url, day) == expected_sessions(document)


def _mailboxes(tmp_path: Path, messages: list[bytes]) -> tuple[Path, Path]:
    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    box = mailbox.mbox(tmp_path / "reports.mbox", create=True)
    for raw in messages:
        maildir.add(raw)
        box.add(raw)
    box.flush()
    box.close()
    return tmp_path / "Maildir", tmp_path / "reports.mbox"


def test_maildir_mbox_eml_json_and_gzip_then_again(live_api, redis_server, tmp_path) -> None:
    yesterday = live_api.clock.now - timedelta(days=1)
    day = yesterday.date().isoformat()
    one = report_on(yesterday, "mail-1", domains=("a.example",), ok=5, failed=1)
    two = two_policies_on(yesterday)
    three = report_on(yesterday, "file-3", domains=("c.example",), ok=7, failed=0)
    four = report_on(yesterday, "file-4", domains=("d.example",), ok=2, failed=2)
    not_a_report = b"From: someone@example.org\nSubject: hello\n\nnot a report\n"
    maildir, mbox = _mailboxes(tmp_path, [report_email(one), report_email(two), not_a_report])
    eml = tmp_path / "one.eml"
    eml.write_bytes(report_email(one))
    plain = tmp_path / "three.json"
    plain.write_text(json.dumps(three))
    packed = tmp_path / "four.json.gz"
    packed.write_bytes(gzip.compress(json.dumps(four).encode()))

    first = _run(live_api, maildir, mbox, eml, plain, packed)
    assert first.exit_code == 0, first.output
    assert "7 TLS-RPT reports found" in first.output, first.output
    assert "2 messages without a report" in first.output
    assert "counted: 4  duplicates: 3" in first.output, first.output
    expected = {"a.example": (5, 1), "alpha.example": (900, 12), "beta.example": (40, 5),
                "c.example": (7, 0), "d.example": (2, 2)}  # fmt: skip
    assert _sessions(redis_server.url, day) == expected

    again = _run(live_api, maildir, mbox, eml, plain, packed)
    assert again.exit_code == 0, again.output
    assert "counted: 0  duplicates: 7" in again.output, again.output
    assert _sessions(redis_server.url, day) == expected


def test_a_refused_report_is_named_and_sets_the_exit_status(live_api, tmp_path) -> None:
    bad = report_on(live_api.clock.now - timedelta(days=1), "bad")
    bad["policies"][0]["summary"]["total-failure-session-count"] = -1
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    checked = _run(live_api, path, dry_run=True)
    assert checked.exit_code == 1 and "1 would be refused" in checked.output, checked.output
    sent = _run(live_api, path)
    assert sent.exit_code == 1, sent.output
    assert "HTTP 422" in sent.output
    assert "/policies/0/summary/total-failure-session-count" in sent.output
    folder = tmp_path / "not-a-maildir"
    folder.mkdir()
    assert _run(live_api, folder).exit_code == 1
