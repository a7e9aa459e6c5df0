"""Who the mail was exchanged with: per remote domain and per SMTP AUTH user (docs/domains.md).

Every trace carries a who key (``traces.who_key``). The worker splits a batch's keys into
groups, one per kind (``DOMAINS``, ``AUTH_USERS``), UTC day and direction, and each group into
names (a domain, a user) with their messages per TLS version, per connector, and the remote
hosts (or client IPs) they came from. The names of a group are counted exactly up to a limit
per tenant, kind, direction and day; the rest are counted in one ``OTHER`` row, so every total
still equals the snapshot's.

Counter fields (one hash per tenant, kind and day): ``direction US name US marker US value``
where the marker is ``t`` (value: TLS version) or ``c`` (value: a named connector). The ``t``
fields add up to the messages; the ``c`` fields split some of the same messages by connector,
and the rest used none (mail without a connector has no field of its own: most mail is such,
and every field of a day is read again by each report build). The remote hosts / client IPs
are not counted: the first ``EXTRAS_PER_NAME`` of a name and day are kept with its admission
(``keys.who_names``) and read for the rows of a page only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from service.core.traces import BLOCKED, FIELD_SEP, RECORD_SEP

OTHER = "\x1d"  # the stored name of the "(other ...)" row: no trace value can hold it
UNKNOWN = ""  # the stored name of traces without a remote domain
EXTRAS_PER_NAME = 10  # remote hosts / client IPs kept per name and day
TLS_MARK, CONNECTOR_MARK = "t", "c"


@dataclass(frozen=True)
class WhoKind:
    """One breakdown: what its names are, how its special rows are shown."""

    name: str  # in key names and view names
    other_label: str
    unknown_label: str | None  # None: traces without a name are not counted in this kind
    extras: str  # what a name's remote hosts / client IPs are called in the report


DOMAINS = WhoKind("domains", "(other domains)", "(unknown)", "remote_hosts")
AUTH_USERS = WhoKind("auth", "(other users)", None, "client_ips")
KINDS = (DOMAINS, AUTH_USERS)


class NameCounts:
    """What one name of one group adds: its (TLS version, connector, extra, messages) uses.
    A plain list: the worker makes one per name of every fold, thousands a call."""

    __slots__ = ("uses",)

    def __init__(self) -> None:
        self.uses: list[tuple[str, str, str, int]] = []

    def add(self, tls: str, connector: str, extra: str, messages: int) -> None:
        self.uses.append((tls, connector, extra, messages))

    @property
    def extras(self) -> list[str]:
        """The remote hosts / client IPs, each once, in the order seen."""
        return list(dict.fromkeys(use[2] for use in self.uses if use[2]))


Group = tuple[str, str, str]  # (kind name, day, direction)


def who_groups(who: Mapping[str, int]) -> dict[Group, dict[str, NameCounts]]:
    """Who keys with their messages, as names per (kind, day, direction)."""
    groups: dict[Group, dict[str, NameCounts]] = {}
    for key, messages in who.items():
        day, rest = key.split(RECORD_SEP, 1)
        direction, domain, tls, connector, host, user, ip = rest.split(FIELD_SEP)
        if tls == BLOCKED:  # not a message delivered: the names' totals equal the snapshot's
            continue
        _name(groups, (DOMAINS.name, day, direction), domain).add(tls, connector, host, messages)
        if user:
            _name(groups, (AUTH_USERS.name, day, direction), user).add(tls, connector, ip,
                                                                      messages)  # fmt: skip
    return groups


def _name(groups: dict[Group, dict[str, NameCounts]], group: Group, name: str) -> NameCounts:
    names = groups.get(group)
    if names is None:
        names = groups[group] = {}
    counts = names.get(name)
    if counts is None:
        counts = names[name] = NameCounts()
    return counts


def counter_fields(
    direction: str, name: str, counts: NameCounts, extras: frozenset[str] | None
) -> Iterator[tuple[str, int]]:
    """The counter fields of one name; ``extras`` the ones admitted for it (kept with the
    admission, not here), None: the name was not admitted, so its messages count in the
    ``OTHER`` row."""
    stored = name if extras is not None else OTHER
    tls_prefix = f"{direction}{FIELD_SEP}{stored}{FIELD_SEP}{TLS_MARK}{FIELD_SEP}"
    connector_prefix = f"{direction}{FIELD_SEP}{stored}{FIELD_SEP}{CONNECTOR_MARK}{FIELD_SEP}"
    for tls, connector, _, n in counts.uses:  # a field may come twice: the caller adds up
        yield tls_prefix + tls, n
        if connector:
            yield connector_prefix + connector, n


def split_field(counter: str) -> tuple[str, str, str, str]:
    """(direction, name, marker, value) of a counter field."""
    direction, name, marker, value = counter.split(FIELD_SEP)
    return direction, name, marker, value
