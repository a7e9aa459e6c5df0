"""Transport security end to end: a log through the real `mailflow ingest` into a live API,
folded by the worker's own loop. The snapshot, the flyout, the connector report (JSON, CSV, its
`security=` filter, each connector's own report), the Transit security report and the blocked
records must equal the truth counted here on its own: from the generator's record of what it
wrote, or for the real samples from a naive reader of their lines (per direction, per connector,
per class, blocked apart); a second ingest changes nothing. And the downgrade insight, opened
and resolved from Postfix logs on the injected clock.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import itertools
import lzma
import re
import tarfile
import urllib.parse
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from service.ingest.command import ingest
from tests.worker_loop import LoopDriver

from . import exim_blocked_log, transport_log
from .support import SHARED, get, get_text
from .test_ingest_samples import reference_hops

CLASSES = ("dane", "mta-sts", "authenticated", "encrypted", "none")
AUTHENTICATED = ("dane", "mta-sts", "authenticated")
# The server did not offer TLS: Postfix's "was not offered by host", Exim's "did not offer TLS".
NO_TLS_OFFERED = re.compile(r"not offered by host|did not offer TLS")
# Time for the loop to fold what was sent and refresh the views (MAILFLOW_REFRESH_SECONDS, 2 s).
A_PASS = timedelta(seconds=5)


def security_class(fields: dict[str, Any]) -> str:
    """The table of docs/transit-security.md ("The class of a delivered message"), row by row."""
    if fields.get("tls_version") in (None, "none"):
        return "none"
    auth, policy = fields.get("tls_auth"), fields.get("tls_policy")
    if auth in ("trusted", "untrusted", "anonymous"):
        return "encrypted"
    vouching = {"dane": "dane", "mta-sts": "mta-sts", "verify": "authenticated",
                "secure": "authenticated"}  # fmt: skip
    if policy in vouching:
        return vouching[policy]
    return "authenticated" if auth == "verified" else "encrypted"


@dataclass
class Expected:
    """What the reports must say, counted from the generator's record of what it wrote."""

    # (direction, connector) -> class -> delivered messages
    delivered: dict[tuple[str, str | None], Counter[str]] = field(default_factory=dict)
    # (direction, connector) -> blocked messages
    blocked: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    # (direction, recipient domain, policy) -> (messages, distinct errors)
    blocked_detail: dict[tuple[str, str | None, str | None], tuple[int, set[str]]] = field(
        default_factory=dict
    )

    def add_delivered(self, direction: str, connector: str | None, klass: str) -> None:
        self.delivered.setdefault((direction, connector), Counter())[klass] += 1

    def add_blocked(self, direction: str, connector: str | None, record: dict[str, Any]) -> None:
        self.blocked[direction, connector] += 1
        key = (direction, record.get("recipient_domain"), record.get("tls_policy"))
        messages, errors = self.blocked_detail.get(key, (0, set()))
        self.blocked_detail[key] = (messages + 1, errors | {record["blocked_reason"]})

    def classes(self, direction: str) -> Counter[str]:
        total: Counter[str] = Counter()
        for (d, _), counts in self.delivered.items():
            if d == direction:
                total.update(counts)
        return total


# -- driving the real chain ---------------------------------------------------------------------


def ingest_log(live_api: Any, path: Path, *options: str) -> str:
    result = CliRunner().invoke(
        ingest, [str(path), "--url", live_api.url, "--key", live_api.key, *options]
    )
    assert result.exit_code == 0, result.output
    return str(result.stderr)


def fold(loop: LoopDriver) -> None:
    loop.run(A_PASS)


def reports(live_api: Any, days: int) -> dict[str, Any]:
    window = f"days={days}"
    rows = get(live_api, f"/api/v1/connectors?{window}&limit=1000")["rows"]
    return {
        # each connector's own report (`-`: mail without a connector)
        "own": {
            (r["direction"], r["name"]): get(
                live_api,
                f"/api/v1/connectors/{r['direction']}/"
                f"{urllib.parse.quote(r['name'] or '-')}?{window}",
            )
            for r in rows
        },
        "snapshot": get(live_api, f"/api/v1/mailflow/snapshot?{window}"),
        "connectors": {"rows": rows},
        "csv": get_text(live_api, f"/api/v1/connectors?{window}&limit=1000&format=csv"),
        "transit": get(live_api, f"/api/v1/mailflow/transit-security?{window}"),
        "flyout": get(live_api, f"/api/v1/mailflow/tls?{window}"),
        "blocked": get(live_api, f"/api/v1/mailflow/blocked?{window}"),
        "security=": {
            kind: connectors_having(live_api, window, kind) for kind in (*CLASSES, "blocked")
        },  # fmt: skip
    }


def connectors_having(live_api: Any, window: str, kind: str) -> list[tuple[str, str]]:
    rows = get(live_api, f"/api/v1/connectors?{window}&limit=1000&security={kind}")["rows"]
    return sorted((r["direction"], r["name"] or "") for r in rows)


def ingest_twice_and_check(
    live_api: Any,
    loop: LoopDriver,
    path: Path,
    expected: Expected,
    options: Iterable[str] = (),
    days: int = 1,
) -> dict[str, Any]:
    """Ingest, fold, check every report; ingest again, fold, and find every report unchanged."""
    first = ingest_log(live_api, path, *options)
    sent = sum(expected.blocked.values()) + sum(
        sum(c.values()) for c in expected.delivered.values()
    )
    # Every trace the parser emits is taken: the API refuses none of them.
    assert f"sent: {sent}  accepted: {sent}  duplicates: 0  rejected: 0  failed: 0" in first, first
    fold(loop)
    before = reports(live_api, days)
    check_reports(before, expected)
    again = ingest_log(live_api, path, *options)
    assert f"sent: {sent}  accepted: 0  duplicates: {sent}  rejected: 0  failed: 0" in again
    fold(loop)
    assert reports(live_api, days) == before
    return before


# -- checking the reports -----------------------------------------------------------------------


def check_split(summary: dict[str, Any], counts: Counter[str]) -> None:
    """A class split (`security` of the snapshot, a row's `security`) against the true counts."""
    classes = summary if "dane" in summary else summary["classes"]
    assert list(classes) == list(CLASSES)
    messages = sum(counts.values())
    assert {k: classes[k]["messages"] for k in CLASSES} == {k: counts[k] for k in CLASSES}
    for klass in CLASSES:
        exact = 100 * counts[klass] / messages if messages else 0.0
        assert abs(classes[klass]["percent"] - exact) < 0.1, klass
    total = round(sum(c["percent"] for c in classes.values()), 1)
    assert total == (100.0 if messages else 0.0)


def check_reports(got: dict[str, Any], expected: Expected) -> None:
    for direction, report in itertools.product(("inbound", "outbound"), ("snapshot", "flyout")):
        counts = expected.classes(direction)
        summary = got[report]["directions"][direction]
        # Blocked messages were never delivered: not among the messages.
        assert summary["messages"] == sum(counts.values()), (direction, report)
        check_split(summary["security"], counts)
        assert summary["security"]["authenticated_messages"] == sum(
            counts[k] for k in AUTHENTICATED
        )
    check_blocked_records(got["blocked"], expected)
    check_connector_rows(got["connectors"]["rows"], expected)
    check_connector_rows(list(got["own"].values()), expected, named_by=list(got["own"]))
    # The `security=` filter keeps the connectors with at least one message of the kind.
    for kind, rows in got["security="].items():
        if kind == "blocked":
            having = {key for key, n in expected.blocked.items() if n}
        else:
            having = {key for key, counts in expected.delivered.items() if counts[kind]}
        assert rows == sorted((d, name or "") for d, name in having), kind
    check_csv(got["csv"], got["connectors"]["rows"])
    check_transit(got["transit"], expected)


def check_blocked_records(body: dict[str, Any], expected: Expected) -> None:
    assert not body["truncated"]
    per_connector: Counter[tuple[str, str | None]] = Counter()
    detail: dict[tuple[str, str | None, str | None], tuple[int, set[str]]] = {}
    for record in body["records"]:
        per_connector[record["direction"], record["connector"]] += record["messages"]
        key = (record["direction"], record["recipient_domain"], record["policy"])
        messages, errors = detail.get(key, (0, set()))
        detail[key] = (messages + record["messages"], errors | {record["reason"]})
    assert per_connector == expected.blocked
    assert detail == expected.blocked_detail


def check_connector_rows(
    rows: list[dict[str, Any]],
    expected: Expected,
    named_by: list[tuple[str, str | None]] | None = None,
) -> None:
    """The rows of the connector report, or connectors' own reports (`named_by` their keys)."""
    keys = named_by or [(r["direction"], r["name"]) for r in rows]
    assert set(keys) == set(expected.delivered) | set(expected.blocked)
    for key, row in zip(keys, rows, strict=True):
        counts = expected.delivered.get(key, Counter())
        assert (row["messages"], row["blocked"]) == (sum(counts.values()), expected.blocked[key])
        check_split(row["security"], counts)
        shares = {k: row["security"][k]["percent"] for k in CLASSES}
        assert row["dane_percent"] == shares["dane"], key
        assert row["mta_sts_percent"] == shares["mta-sts"], key
        assert row["encrypted_only_percent"] == shares["encrypted"], key
        assert row["authenticated_percent"] == round(sum(shares[k] for k in AUTHENTICATED), 1)


def check_csv(text: str, rows: list[dict[str, Any]]) -> None:
    by_label = {f"{r['direction'].capitalize()} - {r['name'] or '(no connector)'}": r for r in rows}
    lines = list(csv.DictReader(io.StringIO(text)))
    assert len(lines) == len(rows)
    for line in lines:
        row = by_label[line["Connector direction and name"]]
        assert line["Volume"] == str(row["messages"])
        assert line["Blocked"] == str(row["blocked"])
        columns = {"Authenticated %": "authenticated_percent", "DANE %": "dane_percent",
                   "MTA-STS %": "mta_sts_percent", "Encrypted only %": "encrypted_only_percent"}  # fmt: skip
        for header, name in columns.items():
            assert line[header] == f"{row[name]:.1f}", header


def check_transit(body: dict[str, Any], expected: Expected) -> None:
    for direction in ("inbound", "outbound"):
        section = body["directions"][direction]
        sent: Counter[str] = Counter()
        for day in section["sent"]:
            counts = Counter({k: day["classes"][k]["messages"] for k in CLASSES})
            check_split(day, counts)  # each day's percents
            sent += counts
        assert +sent == +expected.classes(direction), direction
        got = {(r["recipient_domain"], r["policy"]): (r["messages"], set(r["errors"]))
               for r in section["blocked"]}  # fmt: skip
        truth = {(domain, policy): value
                 for (d, domain, policy), value in expected.blocked_detail.items()
                 if d == direction}  # fmt: skip
        assert got == truth, direction
        not_offered: Counter[str | None] = Counter()
        for (d, domain, _), (messages, errors) in expected.blocked_detail.items():
            if d == direction and any(NO_TLS_OFFERED.search(e) for e in errors):
                not_offered[domain] += messages
        offered = {r["recipient_domain"]: r["blocked_not_offered"]
                   for r in section["no_tls_offered"] if r["blocked_not_offered"]}  # fmt: skip
        assert offered == dict(not_offered), direction
        if direction == "outbound":  # and the mail delivered without TLS, per recipient domain
            plaintext = sum(r["delivered_without_tls"] for r in section["no_tls_offered"])
            assert plaintext == expected.classes(direction)["none"]


# -- the generated Postfix log ------------------------------------------------------------------


@pytest.fixture
def loop(redis_client, settings, clock) -> LoopDriver:  # type: ignore[no-untyped-def]
    return LoopDriver(redis_client, settings, clock)


def start_of_day(clock: Any) -> datetime:
    """Midnight of the clock's day; the clock moves to its last hour, so the day's log is past."""
    midnight = clock.now.replace(hour=0, minute=0, second=0, microsecond=0)
    clock.now = midnight + timedelta(hours=23, minutes=30)
    return midnight + timedelta(minutes=1)


def connector_rules(assigned: dict[str, tuple[str, str, str]]) -> str:
    """The TOML mapping that puts each recipient domain on its (direction, connector, type)."""
    rules: dict[tuple[str, str, str], list[str]] = {}
    for domain, rule in assigned.items():
        rules.setdefault(rule, []).append(domain)
    return "".join(
        f'[[rule]]\nconnector = "{name}"\ntype = "{kind}"\ndirection = "{direction}"\n'
        f"recipient_domain = {domains!r}\n\n".replace("'", '"')
        for (direction, name, kind), domains in rules.items()
    )


POSTFIX_CONNECTORS = {
    # every other message of a direction goes through a connector, the rest through none
    "inbound": ("Partner in", "partner"),
    "outbound": ("Partner out", "partner"),
}


def test_generated_postfix_log_end_to_end(live_api, loop, tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = transport_log.generate(start=start_of_day(live_api.clock))
    assert log.clock.date() == live_api.clock.now.date() and log.clock < live_api.clock.now
    path = tmp_path / "mail.log"
    path.write_text("".join(log.lines))
    # The test decides the connectors: alternate messages of each direction, by recipient domain.
    assigned: dict[str, tuple[str, str, str]] = {}
    expected = Expected()
    seen: Counter[str] = Counter()
    for truth in log.truth:
        seen[truth.direction] += 1
        connector = None
        if seen[truth.direction] % 2:
            name, kind = POSTFIX_CONNECTORS[truth.direction]
            assigned[truth.recipient_domain] = (truth.direction, name, kind)
            connector = name
        if truth.outcome == "blocked":
            record = {"recipient_domain": truth.recipient_domain, **truth.fields}
            expected.add_blocked(truth.direction, connector, record)
        else:
            expected.add_delivered(truth.direction, connector, security_class(truth.fields))
    rules = tmp_path / "connectors.toml"
    rules.write_text(connector_rules(assigned))
    # Not vacuous: the classes the generator meant (three messages of each kind), counted by
    # hand from its tables; Postfix never names MTA-STS (docs/ingest-transport-security.md).
    assert expected.classes("inbound") == {"encrypted": 9, "authenticated": 3, "none": 3}
    assert expected.classes("outbound") == {"dane": 9, "authenticated": 9, "encrypted": 18,
                                            "none": 9}  # fmt: skip
    assert sum(expected.blocked.values()) == 3 * len(transport_log.BLOCKED)
    assert len(expected.delivered) == 4 and len(expected.blocked) == 2

    got = ingest_twice_and_check(live_api, loop, path, expected, ["--connectors", str(rules)])
    assert got["transit"]["directions"]["outbound"]["no_tls_offered"]  # not vacuous either
    # The worker's loop evaluated the insights too: mail blocked for a TLS policy, per connector.
    items = get(live_api, "/api/v1/insights?limit=1000")["items"]
    blocked = {(i["connector"]["name"], i["measured"]["matching_messages"],
                i["measured"]["messages"]) for i in items if i["rule"] == "connector-tls-blocked"}  # fmt: skip
    assert blocked == {
        (name or "-", n, n + sum(expected.delivered[d, name].values()))
        for (d, name), n in expected.blocked.items()
    }


# -- the generated Exim log ---------------------------------------------------------------------


def test_generated_exim_log_end_to_end(live_api, loop, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Exim's blocked messages and its plaintext fallback, all mapped to one connector."""
    start = start_of_day(live_api.clock).replace(tzinfo=None)
    log = exim_blocked_log.generate(start=start)
    path = tmp_path / "mainlog"
    path.write_text("".join(log.lines))
    rules = tmp_path / "connectors.toml"
    rules.write_text('[[rule]]\nconnector = "Internet out"\ntype = "onpremises"\n'
                     'direction = "outbound"\nrouter = "dnslookup"\n')  # fmt: skip
    expected = Expected()
    for record in log.truth.values():
        expected.add_blocked(record["direction"], record["connector"], record)
    # The one delivered message: TLS failed where it was not required, delivered in clear.
    expected.add_delivered("outbound", "Internet out", "none")
    assert sum(expected.blocked.values()) == len(exim_blocked_log.BLOCKED)
    ingest_twice_and_check(
        live_api,
        loop,
        path,
        expected,
        ["--format", "exim", "--host", "mx1", "--connectors", str(rules)],  # fmt: skip
    )


# -- the downgrade insight from a Postfix log ---------------------------------------------------

BANK = '[[rule]]\nconnector = "Bank"\ntype = "partner"\ndirection = "outbound"\n' \
       'recipient_domain = "example"\n'  # fmt: skip
DOWNGRADE = "connector-tls-downgrade"


def postfix_deliveries(
    path: Path, days: Iterable[tuple[datetime, int, str | None, str | None]], first: int
) -> int:
    """A Postfix log of (day, messages, trust word, `tls=` value) deliveries; queue ids from
    `first` on (unique across the test's logs). Returns the next free number."""
    lines: list[str] = []
    n = first
    for when, count, word, tls in days:
        log = transport_log.Log(clock=when)
        for _ in range(count):
            transport_log.outbound_message(log, n, word, tls, {})
            n += 1
        lines += log.lines
    path.write_text("".join(lines))
    return n


def downgrades(live_api: Any, state: str = "active") -> list[dict[str, Any]]:
    items = get(live_api, f"/api/v1/insights?state={state}&limit=1000")["items"]
    return [i for i in items if i["rule"] == DOWNGRADE]


@pytest.mark.parametrize(
    ("word", "tls", "unauthenticated", "downgraded"),
    [
        ("Trusted", "may", 3, 0),  # encrypted only: the name no longer verified
        (None, "may:none", 3, 3),  # STARTTLS stripped: plaintext, and Postfix says so
        ("Trusted", "dane:halfdane", 3, 3),  # MX records no longer DNSSEC-signed
        ("Verified", "dane:encrypt", 0, 3),  # no usable TLSA record: the logged downgrade alone
    ],
)
def test_downgrade_insight_from_a_postfix_log(  # type: ignore[no-untyped-def]
    live_api, loop, tmp_path, word, tls, unauthenticated, downgraded
) -> None:
    """14 days of DANE-verified deliveries through a partner connector, then a day with
    deliveries that are encrypted only, plaintext or logged as downgraded: the worker's loop
    opens the downgrade insight; once verified mail is all there is again (today and
    yesterday), it resolves."""
    clock = live_api.clock
    rules = tmp_path / "connectors.toml"
    rules.write_text(BANK)
    options = ["--connectors", str(rules)]
    an_hour_ago = clock.now - timedelta(hours=1)
    history = [(an_hour_ago - timedelta(days=back), 4, "Verified", "dane")
               for back in range(15, 1, -1)]  # fmt: skip
    n = postfix_deliveries(tmp_path / "history.log", history, first=1)
    ingest_log(live_api, tmp_path / "history.log", *options)
    fold(loop)
    assert downgrades(live_api) == []

    n = postfix_deliveries(tmp_path / "today.log", [(an_hour_ago, 3, word, tls),
                                                   (an_hour_ago, 2, "Verified", "dane")], n)  # fmt: skip
    ingest_log(live_api, tmp_path / "today.log", *options)
    fold(loop)
    [insight] = downgrades(live_api)
    assert insight["severity"] == "high"
    assert insight["connector"] == {"name": "Bank", "type": "partner"}
    assert insight["measured"] == {"messages": 56, "matching_messages": 56, "percent": 100.0,
                                   "recent_messages": 5,
                                   "recent_unauthenticated": unauthenticated,
                                   "recent_downgraded": downgraded}  # fmt: skip

    for day in (1, 2):  # verified again; yesterday's encrypted-only mail keeps it open a day
        clock.advance(days=1)
        n = postfix_deliveries(tmp_path / f"day{day}.log",
                               [(clock.now - timedelta(hours=1), 4, "Verified", "dane")], n)  # fmt: skip
        ingest_log(live_api, tmp_path / f"day{day}.log", *options)
        fold(loop)
        open_now = [i["id"] for i in downgrades(live_api)]
        assert open_now == ([insight["id"]] if day == 1 else []), day
    assert [i["id"] for i in downgrades(live_api, "resolved")] == [insight["id"]]


# -- the real samples ---------------------------------------------------------------------------

POSTFIX_SAMPLES = SHARED / "samples" / "postfix"
# The samples' peers split by address: the lower half of IPv4 through a connector, the rest not.
LOW = ipaddress.ip_network("0.0.0.0/1")
LOW_CONNECTOR = {"inbound": "Low in", "outbound": "Low out"}
LOW_RULES = "".join(
    f'[[rule]]\nconnector = "{name}"\ntype = "partner"\ndirection = "{direction}"\nip = "{LOW}"\n\n'
    for direction, name in LOW_CONNECTOR.items()
)
# Postfix's own reasons for a TLS policy deferral (not the remote server's words after "said:").
TLS_POLICY_DEFERRAL = re.compile(
    r"status=(?:deferred|bounced) \((?:(?!said:).)*(?:TLS|certificate)"
)


def peer_connector(direction: str, ip: str) -> str | None:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    return LOW_CONNECTOR[direction] if address in LOW else None


def postfix_sample_truth(lines: list[str]) -> Expected:
    """The truth of a Postfix log without `tls=` fields, by the naive reader of the samples
    test: a hop is `none` without TLS, `authenticated` when its TLS line says Verified, else
    `encrypted`."""
    assert not any(", tls=" in x for x in lines)  # else the reader would need the policy
    # These samples hold no deferral for a TLS policy: nothing may be counted blocked.
    assert not any(TLS_POLICY_DEFERRAL.search(x) for x in lines)
    expected = Expected()
    for hop in reference_hops(lines):
        klass = (
            "none"
            if hop.tls == "none"
            else ("authenticated" if hop.trust == "Verified" else "encrypted")
        )
        expected.add_delivered(hop.direction, peer_connector(hop.direction, hop.peer_ip), klass)
    return expected


def at_noon_after(clock: Any, last_day: datetime) -> None:
    clock.now = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), UTC) + \
        timedelta(hours=12)  # fmt: skip


@pytest.mark.skipif(not POSTFIX_SAMPLES.is_dir(), reason="shared/ samples are not present")
def test_pixelpark_sample_end_to_end(live_api, loop, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = POSTFIX_SAMPLES / "pixelpark_postfix-logsums_test_mail.log.xz"
    with lzma.open(path, "rt", errors="replace") as fh:
        lines = fh.read().splitlines(keepends=True)
    expected = postfix_sample_truth(lines)
    assert sum(sum(c.values()) for c in expected.delivered.values()) > 150
    # 2023-03-14T00:00+01:00 to 2023-03-16T23:59+01:00: four UTC days.
    at_noon_after(live_api.clock, datetime(2023, 3, 16).date())
    rules = tmp_path / "connectors.toml"
    rules.write_text(LOW_RULES)
    ingest_twice_and_check(live_api, loop, path, expected, ["--connectors", str(rules)], days=5)


@pytest.mark.skipif(not POSTFIX_SAMPLES.is_dir(), reason="shared/ samples are not present")
def test_lightmeter_sample_end_to_end(live_api, loop, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with tarfile.open(POSTFIX_SAMPLES / "lightmeter" / "complete.tar.gz") as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        text = "".join(  # oldest first
            tar.extractfile(members[name]).read().decode("utf-8", "replace")  # type: ignore[union-attr]
            for name in ("mail.log.1", "mail.log")
        )
    path = tmp_path / "mail.log"
    path.write_text(text)
    lines = text.splitlines(keepends=True)
    expected = postfix_sample_truth(lines)
    assert expected.classes("outbound")["encrypted"] > 30
    # BSD syslog, Jan 27 to Jan 28: read as 2021, UTC.
    at_noon_after(live_api.clock, datetime(2021, 1, 28).date())
    rules = tmp_path / "connectors.toml"
    rules.write_text(LOW_RULES)
    ingest_twice_and_check(live_api, loop, path, expected,
                           ["--connectors", str(rules), "--year", "2021"], days=3)  # fmt: skip


EXIM_SAMPLES = SHARED / "samples" / "exim"
# `<id> <= sender ... H=name [ip]...` / `<id> => rcpt ... H=name [ip] ...` (FORMATS.md)
EXIM_ARRIVAL = re.compile(r"^\S+ \S+ (\S+) (<=|=>) .*? H=\S+(?: \([^)]*\))? \[([^\]]+)\]")
EXIM_BLOCKED = re.compile(r"^\S+ \S+ (\S+) (?:==|\*\*) \S+@(\S+) .*? H=\S+ \[([^\]]+)\]:? ?: "
                          r"((?:TLS session|a TLS session is required|DANE error).*)$")  # fmt: skip
EXIM_CV = {"yes": "authenticated", "dane": "dane", "no": "encrypted", None: "encrypted"}


def exim_sample_truth(lines: list[str]) -> Expected:
    """Each `<=` / `=>` line from or to a peer that is not this host: `none` without `X=`,
    else by `CV=`; a version Exim's test suite masks (`TLS1.x`) is not a version and the
    line is not counted. Deferrals and failures for Exim's own TLS reasons: blocked, once per
    message and host."""
    expected = Expected()
    blocked: set[tuple[str, str]] = set()
    for line in lines:
        if m := EXIM_ARRIVAL.match(line):
            _, arrow, ip = m.groups()
            if ip.startswith("127.") or "X=TLS1.x" in line:
                continue
            cv = re.search(r" CV=(\w+)", line)
            klass = EXIM_CV[cv.group(1) if cv else None] if " X=" in line else "none"
            expected.add_delivered("inbound" if arrow == "<=" else "outbound", None, klass)
        elif (b := EXIM_BLOCKED.match(line)) and (b.group(1), b.group(3)) not in blocked:
            blocked.add((b.group(1), b.group(3)))
            reason = b.group(4)
            policy = (
                "dane"
                if reason.startswith("DANE")
                else (
                    "verify" if "verif" in reason else None  # docs: a failed verification
                )
            )
            record = {"recipient_domain": b.group(2), "tls_policy": policy,
                      "blocked_reason": reason}  # fmt: skip
            expected.add_blocked("outbound", None, record)
    return expected


@pytest.mark.skipif(not EXIM_SAMPLES.is_dir(), reason="shared/ samples are not present")
@pytest.mark.parametrize("name", ["exim_testsuite_log_1157.log", "exim_testsuite_log_2012.log",
                                  "exim_testsuite_log_2102.log"])  # fmt: skip
def test_exim_sample_end_to_end(live_api, loop, name) -> None:  # type: ignore[no-untyped-def]
    path = EXIM_SAMPLES / name
    lines = path.read_text(errors="replace").splitlines(keepends=True)
    expected = exim_sample_truth(lines)
    at_noon_after(live_api.clock, datetime(1999, 3, 2).date())  # the test suite's date
    ingest_twice_and_check(live_api, loop, path, expected, ["--format", "exim", "--host", "mx1"],
                           days=2)  # fmt: skip
