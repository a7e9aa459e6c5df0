"""The all-valid batch: a whole ingest body checked at C speed, or handed back to the exact path.

Nearly every batch a mail server's shipper sends is entirely valid. For those, msgspec decodes
and type-checks the whole body in one C call (enums, lengths, unknown and missing fields), and
column-wise passes do the rest of the contract (time window, TLS spelling, domains, addresses,
connector definitions, the text rule), producing the columns storage needs. The moment
anything is doubtful — a record msgspec refuses, a field that may appear twice, a backslash
anywhere, a non-ASCII string that is not NFC or holds a forbidden character, a name with
whitespace at an end, a timestamp outside the window — this returns None and the caller runs the exact
per-record path (``normalize_trace``), which names every bad record and field. So this path
never decides what is wrong, only that nothing is; a property test holds it to the exact path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from operator import attrgetter
from typing import Annotated, Any, Literal, NoReturn

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from service.core.text import is_clean_text
from service.core.tls import canonical_tls_version
from service.core.traces import (
    _RFC3339,
    CONNECTOR_TYPES,
    DIRECTIONS,
    DOMAIN_FIELDS,
    FIELD_SEP,
    MAX_AUTH_USER,
    MAX_CIPHER,
    MAX_CONNECTOR,
    MAX_DOMAIN,
    MAX_ID,
    MAX_STRING,
    RECORD_SEP,
    AcceptedBatch,
    IngestWindow,
    TraceError,
    _normalised_domain,
    _normalised_ip,
    blocked_segments,
    counter_field,
    normalize_trace,
    security_segments,
    who_tls_segment,
)
from service.core.transport_security import (
    MAX_POLICY_SPELLING,
    OUTCOMES,
    TLS_AUTHS,
    canonical_tls_policy,
)


def _bounded_text(limit: int) -> Any:
    """A non-empty string of at most ``limit`` characters. ASCII control characters need no
    check here: JSON allows them in strings only escaped, and a body with a backslash or a raw
    DEL goes the exact path; non-ASCII strings are checked after decoding (``_text_rule_holds``)."""
    return Annotated[str, Meta(min_length=1, max_length=limit)]


class _Trace(Struct, forbid_unknown_fields=True, gc=False):
    """The trace contract as far as types can say it. Optional fields default to UNSET, so a
    field sent as null is told apart from one not sent (needed to count fields, below)."""

    timestamp: str
    direction: Literal[DIRECTIONS]  # type: ignore[valid-type]
    tls_version: str | None
    id: _bounded_text(MAX_ID) | None | UnsetType = UNSET  # type: ignore[valid-type]
    connector: _bounded_text(MAX_CONNECTOR) | None | UnsetType = UNSET  # type: ignore[valid-type]
    connector_type: Literal[CONNECTOR_TYPES] | None | UnsetType = UNSET  # type: ignore[valid-type]
    cipher: _bounded_text(MAX_CIPHER) | None | UnsetType = UNSET  # type: ignore[valid-type]
    message_id: _bounded_text(MAX_STRING) | None | UnsetType = UNSET  # type: ignore[valid-type]
    auth_user: _bounded_text(MAX_AUTH_USER) | None | UnsetType = UNSET  # type: ignore[valid-type]
    sender_domain: Annotated[str, Meta(max_length=MAX_DOMAIN + 1)] | None | UnsetType = UNSET
    recipient_domain: Annotated[str, Meta(max_length=MAX_DOMAIN + 1)] | None | UnsetType = UNSET
    remote_host: Annotated[str, Meta(max_length=MAX_DOMAIN + 1)] | None | UnsetType = UNSET
    remote_ip: Annotated[str, Meta(max_length=64)] | None | UnsetType = UNSET
    # orjson reads an integer past 64 bits as a float (which the exact path refuses); msgspec
    # would keep it as an int, so the batch path declines such sizes.
    size_bytes: Annotated[int, Meta(ge=0, le=2**63 - 1)] | None | UnsetType = UNSET
    # Transport security (service.core.transport_security).
    tls_auth: Literal[TLS_AUTHS] | None | UnsetType = UNSET  # type: ignore[valid-type]
    tls_policy: Annotated[str, Meta(max_length=MAX_POLICY_SPELLING)] | None | UnsetType = UNSET
    tls_downgraded: bool | None | UnsetType = UNSET
    outcome: Literal[OUTCOMES] | None | UnsetType = UNSET  # type: ignore[valid-type]
    blocked_reason: _bounded_text(MAX_STRING) | None | UnsetType = UNSET  # type: ignore[valid-type]


class _Wrapped(Struct, forbid_unknown_fields=True, gc=False):
    traces: list[_Trace]


FIELDS: tuple[str, ...] = _Trace.__struct_fields__
_ARRAY = msgspec.json.Decoder(list[_Trace] | _Wrapped)
_LINE = msgspec.json.Decoder(_Trace)
_ENCODER = msgspec.json.Encoder()
_NONE = (None, UNSET)
_NONE_SET = frozenset(_NONE)
_ZERO = timedelta(0)
_SHAPE = attrgetter("direction", "connector", "connector_type", "tls_version",
                    "tls_auth", "tls_policy", "tls_downgraded", "outcome")  # fmt: skip
_REASON = attrgetter("blocked_reason")
_SENDER, _RECIPIENT, _HOST = (attrgetter(name) for name in DOMAIN_FIELDS)
_IP, _ID, _SIZE = attrgetter("remote_ip"), attrgetter("id"), attrgetter("size_bytes")
_CONNECTOR, _CIPHER = attrgetter("connector"), attrgetter("cipher")
_MESSAGE_ID = attrgetter("message_id")
_AUTH_USER = attrgetter("auth_user")
_DIRECTION = attrgetter("direction")


def accept_valid_batch(
    body: bytes,
    ndjson: bool,
    max_records: int,
    window: IngestWindow,
    defined_types: Mapping[tuple[str, str], str] | None = None,
) -> AcceptedBatch | None:
    """The batch as storage columns if every record is valid, else None (use the exact path)."""
    try:
        if ndjson:
            records = [_LINE.decode(line) for line in body.split(b"\n") if line.strip()]
            wrapped = False
        else:
            document = _ARRAY.decode(body)
            wrapped = isinstance(document, _Wrapped)
            records = document.traces if isinstance(document, _Wrapped) else document
    except Exception:  # noqa: BLE001 - whatever msgspec refuses (a ValidationError, invalid
        # UTF-8, an integer past 64 bits ...), the exact path judges and names
        return None
    if not 0 < len(records) <= max_records or _more_strings_than_decoded(body, records, wrapped):
        return None
    if not _text_rule_holds(body, records):
        return None
    try:
        return _columns(records, window, defined_types or {})
    except TraceError:
        return None


def _more_strings_than_decoded(body: bytes, records: list[_Trace], wrapped: bool) -> bool:
    """msgspec, like orjson, keeps the last of a repeated field: tell whether any may be.

    Without backslashes every quote in the body opens or closes a string, and the strings are
    the field names plus the string values. The decoded records hold each field once: if the
    body has more strings than they account for, something was repeated. A body with any
    backslash is left to the exact path (a ``\\u`` escape could spell a field name).
    """
    if b"\\" in body or b"\x7f" in body:
        return True
    # The records encoded again hold each field once, and (as the body has no backslash) a
    # quote only around each name and string value: one C pass, whatever fields the
    # contract has (counting them field by field cost more with every field added).
    names = 1 if wrapped else 0  # "traces" is one more name
    return body.count(b'"') != _ENCODER.encode(records).count(b'"') + 2 * names


def _text_rule_holds(body: bytes, records: list[_Trace]) -> bool:
    """Whether the exact path would keep every free-text string (id, connector, cipher,
    message id) as it is: names without whitespace at the ends, non-ASCII strings already NFC
    and free of refused characters (service.core.text). The other strings need no look: the
    exact path does not normalise them, and both paths judge them with the same functions.
    """
    names = {*map(_CONNECTOR, records), *map(_CIPHER, records)}  # a few distinct ones
    ids = list(map(_ID, records))
    if body.isascii():
        # Without backslashes (see _more_strings_than_decoded) the only whitespace a string can hold
        # raw is the space: one join and one search look at every id at C speed.
        try:
            joined = " ".join(ids)
        except TypeError:  # some ids absent or null
            joined = " ".join(value for value in ids if value.__class__ is str)
        if "  " in joined or joined[:1] == " " or joined[-1:] == " ":
            return False
        return all(value.__class__ is not str or value == value.strip() for value in names)
    for value in chain(names, ids):
        if value.__class__ is str and value != value.strip():
            return False
    strings = (map(_MESSAGE_ID, records), map(_REASON, records), map(_AUTH_USER, records))
    for value in chain(names, ids, *strings):
        if value.__class__ is str and not value.isascii() and not is_clean_text(value):
            return False
    return True


def _columns(
    records: list[_Trace], window: IngestWindow, defined_types: Mapping[tuple[str, str], str]
) -> AcceptedBatch:
    """Column by column, so that each step is one C-level pass over the batch."""
    days, epochs = _instants([record.timestamp for record in records], window)
    shapes = list(map(_SHAPE, records))  # once: a shape has eight fields since classes
    field_of = {shape: _counter_field(shape, defined_types) for shape in set(shapes)}
    fields = list(map(field_of.__getitem__, shapes))
    if any(f[0] == _BLOCKED for f in field_of.values()) or not _NONE_SET.issuperset(
        map(_REASON, records)
    ):
        _blocked_fields(records, fields)
    # Each distinct name and address checked and normalised once, for the who keys too.
    names = _checked({*map(_SENDER, records), *map(_RECIPIENT, records), *map(_HOST, records)},
                     _normalised_domain)  # fmt: skip
    addresses = _checked(set(map(_IP, records)), _normalised_ip)
    ids = list(map(_ID, records))
    for position, trace_id in enumerate(ids):
        if trace_id is None or trace_id is UNSET:  # derived from the content, as exactly
            ids[position] = normalize_trace(_as_dict(records[position]), window, defined_types).id
    blake2b = hashlib.blake2b
    return AcceptedBatch(
        days=days,
        digests=[blake2b(trace_id.encode(), digest_size=16).digest() for trace_id in ids],
        counting_keys=list(map(RECORD_SEP.join, zip(days, fields, strict=True))),
        epochs_ms=epochs,
        who_keys=_who_keys(days, records, fields, names, addresses),
    )


def _who_keys(
    days: list[str],
    records: list[_Trace],
    fields: list[str],
    names: Mapping[Any, str],
    addresses: Mapping[Any, str],
) -> list[str]:
    """Each record's ``who_key``, column by column at C speed: the values are valid already,
    and ``names`` / ``addresses`` hold each distinct domain / IP normalised (``_checked``)."""
    directions = list(map(_DIRECTION, records))
    domains = [recipient if direction == "outbound" else sender
               for direction, sender, recipient in zip(directions, map(_SENDER, records),
                                                       map(_RECIPIENT, records), strict=True)]  # fmt: skip
    # The version segment, as the exact path takes it (a blocked message's is BLOCKED).
    tls_of = {counter: who_tls_segment(counter) for counter in set(fields)}
    tls = list(map(tls_of.__getitem__, fields))
    columns = (directions, list(map(names.__getitem__, domains)), tls,
               _normalised(list(map(_CONNECTOR, records)), str),
               list(map(names.__getitem__, map(_HOST, records))),
               _normalised(list(map(_AUTH_USER, records)), str),
               list(map(addresses.__getitem__, map(_IP, records))))  # fmt: skip
    joined = map(FIELD_SEP.join, zip(*columns, strict=True))
    return list(map(RECORD_SEP.join, zip(days, joined, strict=True)))


def _checked(values: set[Any], normalise: Any) -> dict[Any, str]:
    """Each of ``values`` normalised as the exact path does ('' for an absent one), if the exact
    path takes them all; one it refuses declines the batch. Takes ``values`` over."""
    values.discard(None)
    values.discard(UNSET)
    # One C-level pass (the normalisers are lru-cached): with 20,000 remote domains a batch of
    # 5,000 traces holds some 8,800 distinct names, and a Python loop over them was a tenth of
    # the API's profile.
    done = dict(zip(values, map(normalise, values), strict=True))
    if None in done.values():
        _refuse()
    done[None] = done[UNSET] = ""
    return done


def _normalised(column: list[Any], normalise: Any) -> list[str]:
    """``column`` with absent values as '' and the others normalised."""
    done = {value: "" if value in _NONE else normalise(value) or "" for value in set(column)}
    return list(map(done.__getitem__, column))


def _instants(stamps: list[str], window: IngestWindow) -> tuple[list[str], list[int]]:
    """(the tenant's days, epoch milliseconds) of the timestamps, if all are valid and in the window."""
    if not all(map(_RFC3339.fullmatch, stamps)):
        _refuse()
    try:  # RFC 3339 in the shapes fromisoformat reads; lower-case "t" / "z" go the exact way
        whens = list(map(datetime.fromisoformat, stamps))
    except ValueError:
        _refuse()
    if min(whens) < window.earliest or max(whens) > window.latest:
        _refuse()
    epochs = [round(seconds * 1000) for seconds in map(datetime.timestamp, whens)]
    if window.zone is not UTC:  # a tenant with local days (service.core.local_days)
        return _local_days(whens, epochs, window), epochs
    if set(map(datetime.utcoffset, whens)) == {_ZERO}:
        return [stamp[:10] for stamp in stamps], epochs
    return [when.astimezone(UTC).date().isoformat() for when in whens], epochs


# A zone changes its offset at most twice a year (Morocco's Ramadan pause: a month apart), so
# a batch spanning less than this with one offset at both ends has that offset throughout.
_ONE_OFFSET_SPAN = timedelta(days=7)
_DAY_MS = 86_400_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _local_days(whens: list[datetime], epochs: list[int], window: IngestWindow) -> list[str]:
    """Each instant's local day in the window's zone, as ``window.day_of`` names it: for a
    batch under one offset, by integer arithmetic on the epoch milliseconds (a conversion per
    distinct day, not per trace)."""
    first, last = min(whens), max(whens)
    offset = first.astimezone(window.zone).utcoffset()
    if (
        offset is None
        or last - first >= _ONE_OFFSET_SPAN
        or last.astimezone(window.zone).utcoffset() != offset
    ):
        return list(map(window.day_of, whens))
    shift = int(offset.total_seconds() * 1000)
    names: dict[int, str] = {}
    days = []
    for position, epoch_ms in enumerate(epochs):
        number, rest = divmod(epoch_ms + shift, _DAY_MS)
        if rest == 0:  # a local midnight, perhaps only by rounding up: ask the exact way
            days.append(window.day_of(whens[position]))
            continue
        name = names.get(number)
        if name is None:
            name = names[number] = date.fromordinal(_EPOCH_ORDINAL + number).isoformat()
        days.append(name)
    return days


# What _counter_field says of a blocked message's shape, before the field's resolved
# "direction US connector US type": the field names its recipient domain and reason too, so
# it is finished record by record (_blocked_fields). No counter field starts with NUL.
_BLOCKED = "\x00"


def _blocked_fields(records: list[_Trace], fields: list[str]) -> None:
    """The counter fields of the blocked messages, in place, by the exact rules; a reason on
    a message not blocked is refused."""
    for position, record in enumerate(records):
        reason = record.blocked_reason
        if fields[position][0] != _BLOCKED:
            if reason not in _NONE:
                _refuse()
            continue
        if not isinstance(reason, str) or record.tls_auth not in _NONE:
            _refuse()
        if record.tls_downgraded is True:
            _refuse()
        if canonical_tls_version(record.tls_version) != "none":
            _refuse()
        policy = None
        if record.tls_policy not in _NONE:
            policy = canonical_tls_policy(record.tls_policy)
            if policy is None:
                _refuse()
        domain = record.recipient_domain
        domain = None if domain in _NONE else _normalised_domain(domain)
        fields[position] = FIELD_SEP.join((fields[position][1:],
                                           blocked_segments(policy, domain, reason)))  # fmt: skip


def _counter_field(shape: tuple[Any, ...], defined_types: Mapping[tuple[str, str], str]) -> str:
    """The counter a (direction, connector, type, TLS spelling, authentication, policy
    spelling, downgrade, outcome) adds to, by the exact rules."""
    direction, connector, connector_type, raw_tls, tls_auth, raw_policy, downgraded, outcome = shape
    if connector_type is UNSET:
        connector_type = None
    if connector in _NONE:
        if connector_type is not None:
            _refuse()
        connector = None
    else:
        defined = defined_types.get((direction, connector))
        if defined is not None:
            if connector_type is not None and connector_type != defined:
                _refuse()
            connector_type = defined
        elif connector_type is None:
            _refuse()
    tls = canonical_tls_version(raw_tls)
    if tls is None:
        _refuse()
    if outcome == "blocked":  # finished by _blocked_fields
        return _BLOCKED + FIELD_SEP.join((direction, connector or "", connector_type or ""))
    if tls_auth in _NONE and raw_policy in _NONE and downgraded in _NONE:
        return counter_field(direction, connector, connector_type, tls)
    return counter_field(direction, connector, connector_type, _security(tls, tls_auth,
                         raw_policy, downgraded))  # fmt: skip


def _security(tls: str, tls_auth: Any, raw_policy: Any, downgraded: Any) -> str:
    """The TLS segment with class, by the exact rules (``_transport_security``)."""
    if tls_auth in _NONE:
        tls_auth = None
    elif tls == "none":
        _refuse()
    policy = None
    if raw_policy not in _NONE:
        policy = canonical_tls_policy(raw_policy)
        if policy is None or (policy == "none" and tls != "none"):
            _refuse()
    return security_segments(tls, tls_auth, policy, downgraded is True)


def _as_dict(record: _Trace) -> dict[str, Any]:
    values = msgspec.structs.astuple(record)
    return {name: value for name, value in zip(FIELDS, values, strict=True) if value is not UNSET}


def _refuse() -> NoReturn:
    raise TraceError("", "left to the exact path")
