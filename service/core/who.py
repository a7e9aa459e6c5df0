"""Who the mail was exchanged with: per remote domain and per SMTP AUTH user (docs/domains.md).

Every trace carries a who key (``traces.who_key``). The worker splits a batch's keys into
groups, one per kind (``DOMAINS``, ``AUTH_USERS``), UTC day and direction, and each group into
names (a domain, a user) with their messages per TLS version, per connector, and the remote
hosts (or client IPs) they came from. The names of a group are counted exactly up to a limit
per tenant, kind, direction and day; the rest are counted in one ``OTHER`` row, so every total
still equals the snapshot's.

Counter fields (one hash per tenant, kind and day): ``direction US name US marker US value``
where the marker is ``t`` (value: TLS version), ``c`` (value: a named connector) or ``s``
(value: a transport security class, ``SECURITY_MARK``). The ``t``
fields add up to the messages; the ``c`` fields split some of the same messages by connector,
and the rest used none (mail without a connector has no field of its own: most mail is such,
and every field of a day is read again by each report build). The remote hosts / client IPs
are not counted: the first ``EXTRAS_PER_NAME`` of a name and day are kept with its admission
(``keys.who_names``) and read for the rows of a page only.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass

from service.core.traces import BLOCKED, FIELD_SEP, RECORD_SEP, WHO_CLASS_SEP

OTHER = "\x1d"  # the stored name of the "(other ...)" row: no trace value can hold it
UNKNOWN = ""  # the stored name of traces without a remote domain
EXTRAS_PER_NAME = 10  # remote hosts / client IPs kept per name and day
TLS_MARK, CONNECTOR_MARK = "t", "c"
# Messages of a transport security class other than the one its version alone says
# (``transport_security.default_security_class``): dane, mta-sts, authenticated. The other
# classes follow from the ``t`` fields (docs/domains.md), so mail logged without peer
# authentication adds no field.
SECURITY_MARK = "s"


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


class GroupCounts:
    """What the traces of one group (kind, UTC day, direction) add: their counter fields, each
    name's as if it were admitted, and each name's remote hosts / client IPs. No object per
    name: the worker fills one group for hundreds of thousands of names a second.

    A name's extras are kept up to ``EXTRAS_PER_NAME``, in the order seen: admission grants a
    name's new extras in that order until it holds ``EXTRAS_PER_NAME``, so the first ones are
    all it can take (those it holds already are among them or leave room for them)."""

    __slots__ = ("counts", "direction", "extras")

    def __init__(self, direction: str) -> None:
        self.direction = direction
        self.counts: dict[str, int] = {}  # counter field -> messages, names as they are
        self.extras: dict[str, list[str]] = {}  # name -> its extras, each once

    def fields(self, admitted: Container[str]) -> dict[str, int]:
        """The group's counter fields; a name not ``admitted`` counts in the ``OTHER`` row.
        Names are refused only once a day's set is full: until then the fields as added."""
        refused = {name for name in self.extras if name not in admitted}
        if not refused:
            return self.counts
        fields: dict[str, int] = {}
        for field, n in self.counts.items():
            direction, name, marker, value = field.split(FIELD_SEP)
            if name in refused:
                field = FIELD_SEP.join((direction, OTHER, marker, value))
            fields[field] = fields.get(field, 0) + n
        return fields


Group = tuple[str, str, str]  # (kind name, day, direction)
_TLS_FIELD = f"{FIELD_SEP}{TLS_MARK}{FIELD_SEP}"
_CONNECTOR_FIELD = f"{FIELD_SEP}{CONNECTOR_MARK}{FIELD_SEP}"
_SECURITY_FIELD = f"{FIELD_SEP}{SECURITY_MARK}{FIELD_SEP}"
_Uses = tuple[dict[str, int], dict[str, list[str]]]  # a group's counts and extras


def who_groups(who: Mapping[str, int]) -> dict[Group, GroupCounts]:
    """Who keys with their messages, as uses per (kind, day, direction): what adding each
    key's domain and user one by one gives (tests/test_who_grouping.py holds the two equal). The worker
    groups every trace's key here (some 200,000 names a second): a method call, a tuple and a
    formatted string per key were a third of its fold; the groups' dicts are taken once per
    day and direction, and each field is one formatted string."""
    groups: dict[Group, GroupCounts] = {}
    # day RS direction -> its direction and US; the domains' and the users' counts and extras
    by_prefix: dict[str, tuple[str, _Uses, _Uses]] = {}
    tls_field, connector_field, security_field = _TLS_FIELD, _CONNECTOR_FIELD, _SECURITY_FIELD
    for key, messages in who.items():
        prefix, domain, tls, connector, host, user, ip = key.split(FIELD_SEP)
        if tls == BLOCKED:  # not a message delivered: the names' totals equal the snapshot's
            continue
        uses = by_prefix.get(prefix)
        if uses is None:
            day, direction = prefix.split(RECORD_SEP)
            domains = groups.setdefault((DOMAINS.name, day, direction), GroupCounts(direction))
            users = groups.setdefault((AUTH_USERS.name, day, direction), GroupCounts(direction))
            uses = by_prefix[prefix] = (direction + FIELD_SEP, (domains.counts, domains.extras),
                                        (users.counts, users.extras))  # fmt: skip
        klass = ""
        if WHO_CLASS_SEP in tls:  # the version, then the class (``traces.who_tls_segment``)
            tls, klass = tls.split(WHO_CLASS_SEP)
        head, of_domains, of_users = uses
        for (counts, extras), name, extra in ((of_domains, domain, host), (of_users, user, ip)):
            if extras is of_users[1] and not user:  # a trace without an SMTP AUTH user
                break
            if klass:
                field = f"{head}{name}{security_field}{klass}"
                counts[field] = counts.get(field, 0) + messages
            field = f"{head}{name}{tls_field}{tls}"
            counts[field] = counts.get(field, 0) + messages
            if connector:
                field = f"{head}{name}{connector_field}{connector}"
                counts[field] = counts.get(field, 0) + messages
            seen = extras.get(name)
            if seen is None:
                extras[name] = [extra] if extra else []
            elif extra and len(seen) < EXTRAS_PER_NAME and extra not in seen:
                seen.append(extra)
    # A group without names (a day and direction without SMTP AUTH users) is none.
    return {group: counts for group, counts in groups.items() if counts.extras}


def split_field(counter: str) -> tuple[str, str, str, str]:
    """(direction, name, marker, value) of a counter field."""
    direction, name, marker, value = counter.split(FIELD_SEP)
    return direction, name, marker, value
