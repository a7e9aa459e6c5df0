"""Correlation state stays bounded on long logs (the 10-million-line run is in the benchmark)."""

from __future__ import annotations

import tracemalloc

from service.ingest.pipeline import CountingSink, FollowLoop
from service.ingest.postfix import Limits, PostfixParser
from service.ingest.readers import MAX_LINE, Follower
from service.ingest.synthetic import postfix_lines


def run(messages: int, limits: Limits | None = None) -> tuple[PostfixParser, list[int], int]:
    parser = PostfixParser(limits=limits)
    sizes: list[int] = []
    traces = 0
    for i, line in enumerate(postfix_lines(messages)):
        parser.feed(line)
        if i % 1000 == 0:
            sizes.append(parser.state_size())
            traces += len(parser.take())
    traces += len(parser.flush())
    return parser, sizes, traces


def test_state_is_flat_over_200k_lines() -> None:
    parser, sizes, traces = run(18_500)  # about 200,000 lines, 5 hours of log time
    assert parser.lines > 195_000
    assert traces == 2 * 18_500  # one inbound and one outbound trace per message
    half = len(sizes) // 2
    # One message a second: ~300 s of waiting inbound traces, 50 smtpd pids, 20 smtp pids
    # x 7 relays, and the 1-in-47 messages whose `removed` line is lost, until their 3 h TTL.
    assert max(sizes) < 2_000
    # The second half (after the TTLs have started expiring) holds no more than the first.
    assert max(sizes[half:]) <= max(sizes[:half]) * 1.2
    assert parser.evicted == 0


def test_caps_bound_state_even_without_expiry() -> None:
    limits = Limits(
        hold=1e9,
        session_ttl=1e9,
        tls_ttl=1e9,
        queue_ttl=1e9,
        max_sessions=10,
        max_pending=20,
        max_tls=5,
        max_queue=30,
    )
    parser, sizes, traces = run(2_000, limits)
    assert max(sizes) <= 10 + 20 + 5 + 30
    assert parser.evicted > 0
    assert traces == 2 * 2_000  # evicting waiting inbound traces emits them, never loses them


def write_log(path, messages: int) -> int:  # type: ignore[no-untyped-def]
    with path.open("w") as fh:
        fh.writelines(postfix_lines(messages))
    return int(path.stat().st_size)


def test_follow_reads_a_large_existing_log_in_bounded_polls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "mail.log"
    size = write_log(log, 4_000)  # ~4 MB already in the log when following starts
    chunk = 64 << 10
    follower = Follower(str(log), chunk_size=chunk)
    polls: list[int] = []  # characters each poll handed over
    lines = 0
    while got := follower.poll():
        polls.append(sum(map(len, got)))
        lines += len(got)
    follower.close()
    assert size > 40 * chunk
    assert lines == len(log.read_text().splitlines())  # nothing lost between polls
    assert max(polls) <= chunk + MAX_LINE  # one chunk (plus a line it split), never the file


def test_follow_memory_stays_below_the_size_of_the_log(tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "mail.log"
    size = write_log(log, 4_000)  # ~5 MB
    peaks, counted = [], []
    for traced in (False, True):  # the first pass fills the parsers' domain and IP caches
        sink = CountingSink(None)
        loop = FollowLoop([Follower(str(log), chunk_size=64 << 10)], PostfixParser(), sink)
        if traced:
            tracemalloc.start()
        try:
            while loop.step():
                pass
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
            loop.finish()
        counted.append(sink.tally.traces)
    assert counted == [2 * 4_000] * 2
    assert peaks[1] < size / 3, f"peak {peaks[1]:,} bytes for a {size:,}-byte log"
