"""Shortcuts the parsers take on their hot path give exactly what the general code gives."""

from __future__ import annotations

import ipaddress
import itertools
import random

from service.ingest.traces import _is_plain_ipv4, clean_ip


def by_ipaddress(ip: str) -> str | None:
    """What clean_ip gave before it had a shortcut: ipaddress decides every address."""
    if ip.lower().startswith("ipv6:"):
        ip = ip[5:]
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


def test_the_ipv4_shortcut_agrees_with_ipaddress() -> None:
    odd = ["1.2.3.4", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3",
           "1.2.3.4.5", "1..3.4", " 1.2.3.4", "1.2.3.4\n", "\u0661.2.3.4", "\u00b2.2.3.4",
           "1.2.3.+4", "1_0.2.3.4", "1.2.3.4%eth0", "::1", "IPv6:::1", "::ffff:1.2.3.4", ""]  # fmt: skip
    octets = ["0", "1", "00", "01", "99", "099", "255", "256", "1000", "-1", "+1", " 1"]
    grid = [".".join(q) for q in itertools.product(octets, repeat=4)]
    rng = random.Random(20)
    noise = ["".join(rng.choice("0123456789.:a_ +-") for _ in range(rng.randint(1, 15)))
             for _ in range(20_000)]  # fmt: skip
    cases = odd + grid + noise
    assert sum(_is_plain_ipv4(ip) for ip in cases) > 200  # the shortcut is taken
    wrong = [ip for ip in cases if clean_ip.__wrapped__(ip) != by_ipaddress(ip)]
    assert wrong == []
