"""Defining a connector: what the API's PUT and the dashboard's form both do, in one place."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import redis

from service.core.connectors import ConnectorDefinition, checked_definition_name
from service.reports import precompute
from service.store import connectors_store, worker_signals


def define_connector(
    client: redis.Redis,
    tenant: str,
    today: date,
    direction: str,
    name: str,
    fields: Mapping[str, Any],
    max_connectors: int,
) -> tuple[str, ConnectorDefinition]:
    """Store the definition of ``fields`` (validated ``type``, ``forced_tls``, ``description``)
    for the connector ``name``, drop today's precomputed connector views and ask the worker to
    evaluate the tenant again; the name as stored and the definition. TextError (nothing
    stored) if ``name`` cannot be defined; DefinitionLimit (nothing stored) for a new
    definition beyond ``max_connectors``."""
    name = checked_definition_name(name)
    stored = ConnectorDefinition(fields["type"], fields["forced_tls"], fields["description"])
    stale = precompute.precomputed_keys(tenant, today, "connectors")
    connectors_store.put_definition(client, tenant, direction, name, stored, stale,
                                    max_connectors)  # fmt: skip
    worker_signals.request_evaluation(client, tenant)
    return name, stored
