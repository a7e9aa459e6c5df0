"""Correlation state stays bounded on long logs (the 10-million-line run is in the benchmark)."""

from __future__ import annotations

from service.ingest.postfix import Limits, PostfixParser
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
