"""Connector definitions, and reading the counters a connector report is built from."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from service.core.connectors import ConnectorDefinition, definition_field, parse_definitions
from service.store import day_chunks, keys
from service.store.scripts import script


@dataclass(frozen=True)
class ReportCounters:
    """Counters of some days, reduced by the script, with the definitions and data version
    they were read together with (one atomic call)."""

    version: int
    data_as_of_ms: int | None
    definitions: dict[tuple[str, str], ConnectorDefinition]
    packed: list[str]  # one per day; window_sums.read_window_sum: one, the window's sum


def read_report_counters(
    client: redis.Redis, tenant: str, days: Sequence[str], mode: str, prefix: str = ""
) -> ReportCounters:
    """The counters of ``days`` reduced by ``mode`` (see read_report.lua), with the definitions
    and data version, read in calls of bounded size (``day_chunks``)."""

    def read_chunk(chunk: Sequence[str], first: bool) -> list[Any]:
        key_names = [keys.meta(tenant), keys.connector_definitions(tenant)]
        key_names += [keys.day_counts(tenant, day) for day in chunk]
        return list(script(client, "read_report")(keys=key_names,
                                                  args=[mode, prefix, int(first)]))  # fmt: skip

    chunks = day_chunks.chunk_days(client, tenant, days) or [[]]
    parts, version = day_chunks.read_consistently(chunks, read_chunk, lambda p: int(p[0]))
    as_of = parts[0][1]
    return ReportCounters(
        version=version,
        data_as_of_ms=int(as_of) if as_of else None,
        definitions=definitions_from_flat(parts[0][2]),
        packed=[p.decode() for part in parts for p in part[3:]],
    )


def definitions_from_flat(flat: list[Any]) -> dict[tuple[str, str], ConnectorDefinition]:
    docs = {flat[i].decode(): orjson.loads(flat[i + 1]) for i in range(0, len(flat), 2)}
    return parse_definitions(docs)


def get_definition(
    client: redis.Redis, tenant: str, direction: str, name: str
) -> ConnectorDefinition | None:
    raw = client.hget(keys.connector_definitions(tenant), definition_field(direction, name))
    if raw is None:
        return None
    return parse_definitions({definition_field(direction, name): orjson.loads(raw)})[
        (direction, name)
    ]


def put_definition(
    client: redis.Redis,
    tenant: str,
    direction: str,
    name: str,
    definition: ConnectorDefinition | None,
    stale_views: Sequence[str] = (),
    limit: int | None = None,
) -> bool:
    """Store (or with None, delete) a definition, bump the data version and empty the cached
    views named in ``stale_views``; True if anything changed. A new definition beyond
    ``limit`` (MAILFLOW_MAX_CONNECTORS: each is a row of every report) is DefinitionLimit;
    a delete needs no limit."""
    body = orjson.dumps(definition.as_dict()) if definition is not None else b""
    changed = script(client, "put_definition")(
        keys=[keys.connector_definitions(tenant), keys.meta(tenant), *stale_views],
        args=[
            definition_field(direction, name),
            body,
            uuid.uuid4().hex,
            keys.invalidation_channel(),
            limit if limit is not None else 2**53,
        ],  # fmt: skip
    )
    if changed == -1:
        raise DefinitionLimit(
            f"the tenant has {limit} connector definitions, the most MAILFLOW_MAX_CONNECTORS "
            "allows; delete one first"
        )
    return bool(changed)


class DefinitionLimit(ValueError):
    """A new connector definition beyond the tenant's limit."""


def defined_types(client: redis.Redis, tenant: str) -> dict[tuple[str, str], str]:
    """(direction, name) -> type of every defined connector, for the ingest path.

    Cached per client (per process): a request costs one HGET of the definitions token, and
    an HGETALL only after the definitions changed. The token is random, so a store that was
    wiped and refilled can never match a stale cache entry.
    """
    token = client.hget(keys.meta(tenant), "definitions_token")
    if token is None:
        return {}
    cache: dict[str, tuple[Any, dict[tuple[str, str], str]]] | None = getattr(
        client, "_mailflow_definitions", None
    )
    if cache is None:
        cache = {}
        client._mailflow_definitions = cache  # type: ignore[attr-defined]
    cached = cache.get(tenant)
    if cached is not None and cached[0] == token:
        return cached[1]
    definitions = definitions_from_flat(
        [x for pair in client.hgetall(keys.connector_definitions(tenant)).items() for x in pair]
    )
    types = {key: d.type for key, d in definitions.items()}
    cache[tenant] = (token, types)
    return types
