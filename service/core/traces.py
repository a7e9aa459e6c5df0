"""Validation and normalisation of ingested traces, record by record: the exact path.

marshmallow's load is about 17,000 records/s per core, a quarter of what ingestion must do, so
records are checked here by hand. This module is the contract: ``service.web.api.schemas.TraceSchema``
declares its fields for the OpenAPI spec from the names and limits below and leaves the rules
and the normalisation to ``normalize_trace``; a property test holds the declarations to this
path (whatever one rejects the other rejects). A wholly valid batch is checked faster still,
column-wise (``service.core.trace_batch``), and held to this path by another property test;
any batch with a bad record comes here, to be named.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

import orjson

from service.core.local_days import day_start, local_date, local_today
from service.core.text import TextError, checked_text
from service.core.tls import canonical_tls_version
from service.core.transport_security import (
    MAX_POLICY_SPELLING,
    OUTCOMES,
    TLS_AUTHS,
    TLS_POLICIES,
    canonical_tls_policy,
    default_security_class,
    security_class,
)

DIRECTIONS = ("inbound", "outbound")
CONNECTOR_TYPES = ("partner", "onpremises")
MAX_ID = 128
MAX_CONNECTOR = 128
MAX_STRING = 998  # RFC 5322's line limit: nothing legitimate in a trace is longer
MAX_DOMAIN = 253
MAX_CIPHER = 128
FUTURE_TOLERANCE = timedelta(minutes=15)
FUTURE_MINUTES = FUTURE_TOLERANCE // timedelta(minutes=1)

MAX_AUTH_USER = 256  # an SMTP AUTH identity (SASL user name, Exim's A=<authenticator>:<id>)
OPTIONAL_STRINGS = {"cipher": MAX_CIPHER, "message_id": MAX_STRING, "auth_user": MAX_AUTH_USER}
DOMAIN_FIELDS = ("sender_domain", "recipient_domain", "remote_host")
# Names and ids: no whitespace at either end (see service.core.text).
TRIMMED_FIELDS = frozenset({"id", "connector", "cipher"})
KNOWN_FIELDS = frozenset(
    {"id", "timestamp", "direction", "connector", "connector_type", "tls_version", "size_bytes",
     "remote_ip", *OPTIONAL_STRINGS, *DOMAIN_FIELDS}
)  # fmt: skip
# Transport security (service.core.transport_security): all optional.
SECURITY_FIELDS = ("tls_auth", "tls_policy", "tls_downgraded", "outcome", "blocked_reason")
KNOWN_FIELDS |= frozenset(SECURITY_FIELDS)
# The TLS segment of a blocked message's counter field: never a TLS version. A blocked
# message's field is "direction US connector US type US blocked US policy US domain US reason".
BLOCKED = "blocked"
DOWNGRADED = "downgraded"

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_UTC_OFFSETS = frozenset({"Z", "z", "+00:00", "-00:00"})


def _domain_pattern(letter: str, length: str = "") -> str:
    """Dot-separated labels of letters, digits and inner hyphens, an optional final dot."""
    label = f"[{letter}0-9](?:[{letter}0-9-]{{0,61}}[{letter}0-9])?"
    return rf"^{length}(?:{label}\.)*{label}\.?$"


# Checked after lower-casing, with the length; the spec states the length as maxLength and
# lets either case through, as the lower-casing here does.
_DOMAIN = re.compile(_domain_pattern("a-z", length=r"(?=.{1,253}\.?$)"))
DOMAIN_PATTERN = _domain_pattern("A-Za-z")

# Separators inside stream records and counter fields. Control characters are rejected in
# every string field (``service.core.text``), so they can never occur inside a value.
FIELD_SEP = "\x1f"
RECORD_SEP = "\x1e"


class TraceError(Exception):
    """One field of one record is wrong; ``field`` names it for the 202/422 error list."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class IngestWindow:
    """The times a trace may carry, fixed once per request from the clock."""

    earliest: datetime
    latest: datetime
    # The tenant's time zone: a trace counts on the local date of its timestamp there, and
    # the window starts at a local midnight (service.core.local_days).
    zone: tzinfo = UTC

    @classmethod
    def at(cls, now: datetime, retention_days: int, zone: tzinfo = UTC) -> IngestWindow:
        if zone is not UTC:
            first = local_today(now, zone) - timedelta(days=retention_days - 1)
            return cls(day_start(first, zone), now + FUTURE_TOLERANCE, zone)
        today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return cls(today - timedelta(days=retention_days - 1), now + FUTURE_TOLERANCE)

    def day_of(self, when: datetime) -> str:
        """The day a trace at ``when`` counts on: its local date in the tenant's zone."""
        return local_date(when, self.zone).isoformat()


@dataclass(slots=True)
class AcceptedTrace:
    """A valid trace, reduced to what storage needs."""

    id: str
    day: str  # the tenant's local day (UTC by default), YYYY-MM-DD
    epoch_ms: int
    counter_field: str  # direction, connector, type, TLS version: one daily counter
    record: dict[str, Any]  # the normalised trace, kept in the stream for replay
    who: str = ""  # the per-domain / per-user counting key (``who_key``)

    @property
    def digest(self) -> bytes:
        """What the dedupe set stores: 16 bytes instead of the id itself."""
        return hashlib.blake2b(self.id.encode(), digest_size=16).digest()

    @property
    def counting_key(self) -> str:
        """``day RS counter_field``: the daily counter this trace adds one to. Epoch
        milliseconds have 13 digits for every date the retention window allows (2001-2286)."""
        return f"{self.day}{RECORD_SEP}{self.counter_field}"


@dataclass(slots=True)
class AcceptedBatch:
    """Accepted traces as the columns storage sends to Redis, one entry per trace."""

    days: list[str]
    digests: list[bytes]
    counting_keys: list[str]
    epochs_ms: list[int]
    who_keys: list[str] = field(default_factory=list)  # per trace (``who_key``), or empty

    @classmethod
    def of(cls, traces: Iterable[AcceptedTrace]) -> AcceptedBatch:
        batch = cls([], [], [], [])
        for trace in traces:
            batch.days.append(trace.day)
            batch.digests.append(trace.digest)
            batch.counting_keys.append(trace.counting_key)
            batch.epochs_ms.append(trace.epoch_ms)
            batch.who_keys.append(trace.who)
        return batch

    def __len__(self) -> int:
        return len(self.days)

    def select(self, positions: Iterable[int]) -> AcceptedBatch:
        chosen = list(positions)
        return AcceptedBatch([self.days[i] for i in chosen], [self.digests[i] for i in chosen],
                             [self.counting_keys[i] for i in chosen],
                             [self.epochs_ms[i] for i in chosen],
                             [self.who_keys[i] for i in chosen] if self.who_keys else [])  # fmt: skip


def counter_field(
    direction: str, connector: str | None, connector_type: str | None, tls: str
) -> str:
    return FIELD_SEP.join((direction, connector or "", connector_type or "", tls))


def split_counter_field(field: str) -> tuple[str, str | None, str | None, str]:
    direction, connector, connector_type, tls = field.split(FIELD_SEP, 4)[:4]
    return direction, connector or None, connector_type or None, tls


def security_segments(
    tls: str, tls_auth: str | None, tls_policy: str | None, downgraded: bool
) -> str:
    """The TLS segment of a delivered message's counter field: the version, then its class and
    the downgrade mark only when they say more than the version alone (so counters without
    them keep their shape, and their size)."""
    klass = security_class(tls, tls_auth, tls_policy)
    if downgraded:
        return FIELD_SEP.join((tls, klass, DOWNGRADED))
    if klass != default_security_class(tls):
        return f"{tls}{FIELD_SEP}{klass}"
    return tls


def blocked_segments(policy: str | None, domain: str | None, reason: str) -> str:
    """The TLS segment and what follows of a blocked message's counter field."""
    return FIELD_SEP.join((BLOCKED, policy or "", domain or "", reason))


def split_security_field(field: str) -> tuple[str, str | None, str | None, str, str, bool]:
    """(direction, connector, type, TLS version, class, downgraded) of a delivered message's
    counter field, whether or not it carries a class."""
    parts = field.split(FIELD_SEP)
    direction, connector, connector_type, tls = parts[:4]
    klass = parts[4] if len(parts) > 4 else default_security_class(tls)
    return direction, connector or None, connector_type or None, tls, klass, len(parts) > 5


def is_blocked_field(field: str) -> bool:
    """Whether a counting key's field is a blocked message's (whatever other fields, of other
    shapes, the fold is given)."""
    if BLOCKED not in field:  # most fields: no split needed to tell
        return False
    parts = field.split(FIELD_SEP, 4)
    return len(parts) > 3 and parts[3] == BLOCKED


OTHER = "(other)"  # the recipient domain and reason of blocked messages past a day's bound


def blocked_overflow_field(field: str) -> str:
    """Where a blocked message is counted once its day holds as many distinct blocked fields
    as it may: the same direction, connector, type and policy; domain and reason ``(other)``."""
    return FIELD_SEP.join((*field.split(FIELD_SEP, 5)[:5], OTHER, OTHER))


def split_blocked_field(field: str) -> tuple[str, str | None, str | None, str | None, str, str]:
    """(direction, connector, type, policy, recipient domain, reason) of a blocked field."""
    direction, connector, ctype, _, policy, domain, reason = field.split(FIELD_SEP, 6)
    return direction, connector or None, ctype or None, policy or None, domain, reason


def normalize_trace(
    obj: Any, window: IngestWindow, defined_types: Mapping[tuple[str, str], str] | None = None
) -> AcceptedTrace:
    """Check one record against the trace contract; raise TraceError naming the first bad field.

    ``defined_types`` maps (direction, connector) of the tenant's defined connectors to their
    type: a trace naming one takes that type, and may omit ``connector_type``.
    """
    if not isinstance(obj, dict):
        raise TraceError("", "a trace must be a JSON object")
    if not KNOWN_FIELDS.issuperset(obj):
        raise TraceError(sorted(obj.keys() - KNOWN_FIELDS)[0], "unknown field")
    record: dict[str, Any] = {}

    timestamp, epoch_ms, day = _timestamp(obj.get("timestamp"), window)
    record["timestamp"] = timestamp

    direction = obj.get("direction")
    if direction not in DIRECTIONS:
        raise TraceError("direction", f"required; one of {', '.join(DIRECTIONS)}")
    record["direction"] = direction

    connector = obj.get("connector")
    connector_type = obj.get("connector_type")
    if connector is not None:
        connector = _string("connector", connector, MAX_CONNECTOR)
        defined = defined_types.get((direction, connector)) if defined_types else None
        if defined is not None:
            if connector_type is not None and connector_type != defined:
                raise TraceError("connector_type", f"contradicts the definition of {direction} "
                                 f"connector {connector!r}: it is {defined}")  # fmt: skip
            connector_type = defined
        elif connector_type not in CONNECTOR_TYPES:
            raise TraceError(
                "connector_type", f"required with a connector; one of {', '.join(CONNECTOR_TYPES)}"
            )
    elif connector_type is not None:
        raise TraceError("connector_type", "only allowed together with a connector")
    record["connector"] = connector
    if connector is not None:
        record["connector_type"] = connector_type

    if "tls_version" not in obj:
        raise TraceError("tls_version", "required (null means no TLS)")
    raw_tls = obj["tls_version"]
    if raw_tls is not None and not isinstance(raw_tls, str):
        raise TraceError("tls_version", "must be a string or null")
    tls = canonical_tls_version(raw_tls)
    if tls is None:
        assert raw_tls is not None  # null is "none", never unknown
        raise TraceError("tls_version", f"unknown TLS version {raw_tls[:40]!r}; use TLS1.0, "
                         "TLS1.1, TLS1.2, TLS1.3, SSL3 or none")  # fmt: skip
    record["tls_version"] = tls

    for name, limit in OPTIONAL_STRINGS.items():
        value = obj.get(name)
        if value is not None:
            record[name] = _string(name, value, limit)
    for name in DOMAIN_FIELDS:
        value = obj.get(name)
        if value is not None:
            record[name] = _domain(name, value)
    remote_ip = obj.get("remote_ip")
    if remote_ip is not None:
        record["remote_ip"] = _ip(remote_ip)
    size = obj.get("size_bytes")
    if size is not None:
        if type(size) is not int or size < 0:  # bool is an int subclass: not a size
            raise TraceError("size_bytes", "must be an integer ≥ 0")
        record["size_bytes"] = size
    security = _transport_security(obj, record, tls)

    trace_id = obj.get("id")
    if trace_id is None:
        # Derived from the canonical content: the same record sent twice is one trace.
        trace_id = (
            "sha256:"
            + hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()
        )
    else:
        trace_id = _string("id", trace_id, MAX_ID)
    record["id"] = trace_id

    field = counter_field(
        direction, connector, record.get("connector_type"), tls if security is None else security
    )
    return AcceptedTrace(
        id=trace_id,
        day=day,
        epoch_ms=epoch_ms,
        counter_field=field,
        record=record,
        who=who_key(
            day,
            direction,
            record.get(remote_domain_field(direction)),
            who_tls_segment(field),  # the version (and class), or BLOCKED (not counted per name)
            connector,
            record.get("remote_host"),
            record.get("auth_user"),
            record.get("remote_ip"),
        ),
    )


def _transport_security(obj: Mapping[str, Any], record: dict[str, Any], tls: str) -> str | None:
    """Check the transport security fields against each other and the TLS version and put them
    in ``record``; the counter field's segments from the TLS version on, None when the version
    alone is the segment. Null is absent."""
    tls_auth = obj.get("tls_auth")
    if tls_auth is not None:
        if tls_auth not in TLS_AUTHS:
            raise TraceError("tls_auth", f"one of {', '.join(TLS_AUTHS)}")
        if tls == "none":
            raise TraceError("tls_auth", "only with TLS: tls_version is none")
        record["tls_auth"] = tls_auth
    policy = obj.get("tls_policy")
    if policy is not None:
        if not isinstance(policy, str):
            raise TraceError("tls_policy", "must be a string")
        canonical = canonical_tls_policy(policy) if len(policy) <= MAX_POLICY_SPELLING else None
        if canonical is None:
            raise TraceError("tls_policy", f"unknown policy {policy[:40]!r}; use "
                             f"{', '.join(TLS_POLICIES)}")  # fmt: skip
        if canonical == "none" and tls != "none":
            raise TraceError("tls_policy", f"none contradicts tls_version {tls}")
        policy = record["tls_policy"] = canonical
    downgraded = obj.get("tls_downgraded")
    if downgraded is not None:
        if type(downgraded) is not bool:
            raise TraceError("tls_downgraded", "must be true or false")
        if downgraded:  # false is the default: the same record as without it (and one id)
            record["tls_downgraded"] = True
    outcome = obj.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        raise TraceError("outcome", f"one of {', '.join(OUTCOMES)}")
    reason = obj.get("blocked_reason")
    if outcome != "blocked":
        if reason is not None:
            raise TraceError("blocked_reason", "only with outcome blocked")
        if tls_auth is None and policy is None and not downgraded:
            return None
        return security_segments(tls, tls_auth, policy, bool(downgraded))
    # Blocked: nothing was delivered, so there is no TLS session to describe.
    if tls != "none":
        raise TraceError("tls_version", "must be null for a blocked message")
    if downgraded:
        raise TraceError("tls_downgraded", "describes a delivery; not with outcome blocked")
    if reason is None:
        raise TraceError("blocked_reason", "required with outcome blocked")
    record["outcome"] = outcome
    record["blocked_reason"] = _string("blocked_reason", reason, MAX_STRING)
    return blocked_segments(policy, record.get("recipient_domain"), record["blocked_reason"])


def _timestamp(value: Any, window: IngestWindow) -> tuple[str, int, str]:
    """(the timestamp in UTC as RFC 3339, epoch milliseconds, UTC day) of a valid timestamp."""
    if value is None:
        raise TraceError(
            "timestamp", "required; RFC 3339 with an offset, e.g. 2026-11-27T10:00:00Z"
        )
    if not isinstance(value, str):
        raise TraceError("timestamp", "must be an RFC 3339 string")
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise TraceError("timestamp", "not RFC 3339 with an offset (e.g. 2026-11-27T10:00:00Z)")
    date, time_of_day, fraction, offset = match.groups()
    fraction = fraction[:7] if fraction else ""  # datetime keeps microseconds, no more
    is_utc = offset in _UTC_OFFSETS
    try:
        when = datetime.fromisoformat(
            f"{date}T{time_of_day}{fraction}{'+00:00' if is_utc else offset}"
        )
    except ValueError:
        raise TraceError("timestamp", "not a valid date and time") from None
    if when < window.earliest:
        raise TraceError("timestamp", f"before the retention window (earliest "
                         f"{window.earliest.date().isoformat()})")  # fmt: skip
    if when > window.latest:
        raise TraceError("timestamp", f"more than {FUTURE_MINUTES} minutes in the future")
    epoch_ms = round(when.timestamp() * 1000)
    if is_utc:  # the common case needs no conversion: rebuild the string from its parts
        stamp, day = f"{date}T{time_of_day}{fraction}Z", date
    else:
        utc = when.astimezone(UTC)
        stamp, day = utc.isoformat().replace("+00:00", "Z"), utc.date().isoformat()
    if window.zone is not UTC:  # a tenant with local days: the local date (the same record)
        day = window.day_of(when)
    return stamp, epoch_ms, day


def _string(name: str, value: Any, limit: int) -> str:
    """The value in NFC, by the text rule (service.core.text); its length counted after."""
    if not isinstance(value, str):
        raise TraceError(name, "must be a string")
    if not value:
        raise TraceError(name, "must not be empty")
    if len(value) > 4 * limit:  # NFC makes a string at most 4 times shorter: spare the work
        raise TraceError(name, f"longer than {limit} characters")
    try:
        value = checked_text(value, trimmed=name in TRIMMED_FIELDS)
    except TextError as error:
        raise TraceError(name, str(error)) from None
    if len(value) > limit:
        raise TraceError(name, f"longer than {limit} characters")
    return value


def _domain(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TraceError(name, "must be a string")
    normalised = _normalised_domain(value)
    if normalised is None:
        _string(name, value, MAX_DOMAIN + 1)  # the more specific message, where there is one
        raise TraceError(name, "not a valid domain name (use the ASCII xn-- form for IDNs)")
    return normalised


# Mail logs repeat the same few thousand peers and domains: remember the verdicts.
@lru_cache(maxsize=65536)
def _normalised_domain(value: str) -> str | None:
    lowered = value.lower()
    if not lowered.isascii() or not _DOMAIN.match(lowered):
        return None
    return lowered.rstrip(".")


def _ip(value: Any) -> str:
    if not isinstance(value, str):
        raise TraceError("remote_ip", "must be a string")
    normalised = _normalised_ip(value)
    if normalised is None:
        raise TraceError("remote_ip", "not a valid IPv4 or IPv6 address")
    return normalised


@lru_cache(maxsize=65536)
def _normalised_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        return None


# -- who: the remote domain and the SMTP AUTH user of a trace (docs/domains.md) ---------------

WHO_PARTS = ("day", "direction", "domain", "tls", "connector", "host", "auth_user", "ip")


def remote_domain_field(direction: str) -> str:
    """The trace field naming the remote domain: whom outbound mail went to, whom inbound
    mail came from."""
    return "recipient_domain" if direction == "outbound" else "sender_domain"


def who_key(
    day: str,
    direction: str,
    domain: str | None,
    tls: str,
    connector: str | None,
    host: str | None,
    auth_user: str | None,
    ip: str | None,
) -> str:
    """``day RS direction US domain US tls US connector US host US auth_user US ip``: what the
    per-domain and per-user counters of one trace need (absent values empty). Traces with the
    same key are counted together, so a batch carries one line per distinct key."""
    rest = (direction, domain or "", tls, connector or "", host or "", auth_user or "", ip or "")
    return f"{day}{RECORD_SEP}{FIELD_SEP.join(rest)}"


# Between a who key's TLS version and its transport security class (no version holds it).
WHO_CLASS_SEP = ":"


def who_tls_segment(field: str) -> str:
    """The TLS segment of a who key from a trace's counter field: its version, then its
    transport security class only when that says more than the version alone (so most keys
    keep their shape); BLOCKED for a blocked message."""
    parts = field.split(FIELD_SEP, 5)
    tls = parts[3]
    if tls == BLOCKED or len(parts) < 5 or parts[4] == default_security_class(tls):
        return tls
    return f"{tls}{WHO_CLASS_SEP}{parts[4]}"
