"""Memory of one day's counters at 500 connectors, with and without transport security classes.

python -m bench.security_memory

One day's counter hash is written in the layout the fold leaves (service.core.traces builds
the field names), on a private Redis, and measured with MEMORY USAGE (every element sampled):

- versions only: what a day holds when traces carry no tls_auth / tls_policy (the layout
  before classes existed: one field per direction, connector and TLS version);
- every class: each TLS version also under dane, mta-sts and authenticated (encrypted is the
  version's own field), the worst case of the class counters;
- every class and downgrade: each of those also marked downgraded;
- blocked: a day's blocked hash at its bound (MAILFLOW_BLOCKED_FIELDS_PER_DAY fields).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import redis

from service.config import Settings
from service.core.tls import TLS_VERSIONS
from service.core.traces import blocked_segments, counter_field, security_segments
from service.store.embedded import EmbeddedRedis, free_port

CONNECTORS = 500
DIRECTIONS = ("inbound", "outbound")
VERIFIED_BY = ((None, None), ("verified", "dane"), ("verified", "mta-sts"), ("verified", None))


def _fields(downgrades: bool, classes: bool) -> list[str]:
    fields = []
    for n in range(CONNECTORS):
        for direction in DIRECTIONS:
            for tls in TLS_VERSIONS:
                variants = VERIFIED_BY if classes and tls != "none" else VERIFIED_BY[:1]
                for auth, policy in variants:
                    marks = (False, True) if downgrades else (False,)
                    for downgraded in marks:
                        segment = security_segments(tls, auth, policy, downgraded)
                        fields.append(counter_field(direction, f"Partner {n:03d}", "partner",
                                                    segment))  # fmt: skip
    return fields


def _blocked_fields(limit: int) -> list[str]:
    return [counter_field("outbound", f"Partner {n % CONNECTORS:03d}", "partner",
                          blocked_segments("dane", f"d{n}.example", f"TLSA lookup error {n}"))
            for n in range(limit)]  # fmt: skip


def measure() -> list[dict[str, object]]:
    cases = {
        "versions only (before)": _fields(downgrades=False, classes=False),
        "every class": _fields(downgrades=False, classes=True),
        "every class and downgrade": _fields(downgrades=True, classes=True),
        "blocked, at the per-day bound": _blocked_fields(Settings().blocked_fields_per_day),
    }
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedRedis(Path(folder), port=free_port())
        server.start()
        client = redis.Redis.from_url(server.url)
        try:
            for name, fields in cases.items():
                key = "{bench}:day:2026-11-30"
                client.delete(key)
                for start in range(0, len(fields), 1000):
                    client.hset(key, mapping={f: 12345 for f in fields[start : start + 1000]})
                used = int(client.memory_usage(key, samples=0) or 0)
                rows.append({"day's hash": name, "fields": len(fields),
                             "KiB": round(used / 1024, 1),
                             "bytes per field": round(used / len(fields), 1)})  # fmt: skip
        finally:
            client.close()
            server.stop()
    return rows


def main() -> None:
    rows = measure()
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v)
                                for v in row.values()) + " |")  # fmt: skip


if __name__ == "__main__":
    main()
