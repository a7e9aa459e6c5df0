"""Reading logs: compressed files and stdin, and following a log through rotation."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import sys

import pytest

from service.ingest.pipeline import CountingSink, FollowLoop
from service.ingest.postfix import PostfixParser
from service.ingest.readers import Follower, open_text
from service.ingest.syslog import TimestampParser

from .support import FIXTURES

TEXT = "first line\nsecond line ü\n"


@pytest.mark.parametrize(
    "compress",
    [lambda b: b, gzip.compress, lzma.compress, bz2.compress],
    ids=["plain", "gzip", "xz", "bzip2"],
)
def test_open_text_by_magic_not_name(tmp_path, compress) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "mail.log.1"  # no telling extension
    path.write_bytes(compress(TEXT.encode()))
    with open_text(str(path)) as fh:
        assert fh.read() == TEXT


def test_stdin_gzip(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fake = io.TextIOWrapper(io.BytesIO(gzip.compress(TEXT.encode())))
    monkeypatch.setattr(sys, "stdin", fake)
    with open_text("-") as fh:
        assert fh.read() == TEXT


def test_bad_bytes_do_not_stop_reading(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.log"
    path.write_bytes(b"ok\n\xff\xfe broken\nafter\n")
    with open_text(str(path)) as fh:
        assert fh.read().splitlines() == ["ok", "\ufffd\ufffd broken", "after"]


def test_follower_partial_lines_rotation_and_truncation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "mail.log"
    log.write_text("a\nb")
    f = Follower(str(log))
    assert f.poll() == ["a\n"]  # `b` has no newline yet: the writer may be mid-line
    with log.open("a") as fh:
        fh.write("c\nd\n")
    assert f.poll() == ["bc\n", "d\n"]
    assert f.poll() == []
    # Rotation: the old file gets a last line after the rename, then a new file appears.
    os.rename(log, tmp_path / "mail.log.1")
    with (tmp_path / "mail.log.1").open("a") as fh:
        fh.write("e\n")
    assert f.poll() == ["e\n"]  # the path is gone for now: keep reading the old file
    log.write_text("f\n")
    assert f.poll() == ["f\n"]
    assert f.rotations == 1
    # Truncation in place (copytruncate).
    log.write_text("")
    assert f.poll() == []
    with log.open("a") as fh:
        fh.write("g\n")
    assert f.poll() == ["g\n"]
    assert f.truncations == 1
    f.close()


def test_follower_waits_for_a_missing_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "later.log"
    f = Follower(str(log))
    assert f.poll() == []
    log.write_text("x\n")
    assert f.poll() == ["x\n"]
    f.close()


def test_follower_from_end(tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "mail.log"
    log.write_text("old\n")
    f = Follower(str(log), from_end=True)
    assert f.poll() == []
    with log.open("a") as fh:
        fh.write("new\n")
    assert f.poll() == ["new\n"]
    f.close()


class ListSink:
    def __init__(self) -> None:
        self.added: list = []  # type: ignore[type-arg]
        self.flushes = 0

    def add(self, traces):  # type: ignore[no-untyped-def]
        self.added.extend(traces)

    def flush(self) -> None:
        self.flushes += 1


def test_follow_loop_keeps_sessions_across_reads_and_rotation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lines = (FIXTURES / "postfix_scenarios.log").read_text().splitlines(keepends=True)
    log = tmp_path / "mail.log"
    log.write_text("")
    now = [1000.0]
    sink = ListSink()
    parser = PostfixParser(TimestampParser(year=2025))
    loop = FollowLoop([Follower(str(log))], parser, sink, clock=lambda: now[0])
    # Write the log in three pieces, rotating in the middle of an SMTP session (line 6 is the
    # TLS line of smtpd[200]; its client= line lands in the new file).
    with log.open("a") as fh:
        fh.writelines(lines[:6])
    assert loop.step() == 6
    os.rename(log, tmp_path / "mail.log.1")
    log.write_text("".join(lines[6:50]))
    assert loop.step() == 44
    with log.open("a") as fh:
        fh.writelines(lines[50:])
    loop.step()
    # Idle: after a second without data the partial batch is flushed.
    flushes = sink.flushes
    now[0] += 0.5
    assert loop.step() == 0
    assert sink.flushes == flushes
    now[0] += 1.0
    loop.step()
    assert sink.flushes == flushes + 1
    loop.finish()
    alpha = [t for t in sink.added if t.get("remote_ip") == "192.0.2.10"]
    assert [t["tls_version"] for t in alpha] == ["TLS1.2"]
    assert len(sink.added) == 13


def test_follow_loop_idle_time_expires_waiting_traces(tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "mail.log"
    log.write_text("Mar  3 10:00:02 mx1 postfix/smtpd[1]: AAAA1: client=a.example[192.0.2.1]\n")
    now = [0.0]
    sink = CountingSink(None)
    loop = FollowLoop(
        [Follower(str(log))], PostfixParser(TimestampParser(year=2025)), sink, clock=lambda: now[0]
    )
    loop.step()
    assert sink.tally.traces == 0  # waiting for qmgr
    now[0] += 400  # the log stays quiet longer than the hold window
    loop.step()
    assert sink.tally.traces == 1
    loop.finish()
