"""Every Redis key name mailflow uses, built in this one module.

Keys of a tenant carry the hash tag ``{tenant}`` so that all of them live in one Redis Cluster
slot and a Lua script may touch any of them at once. Global keys (the tenant registry, worker
heartbeats) carry no tenant data.
"""

from __future__ import annotations

PREFIX = "mf"
CONSUMER_GROUP = "fold"


def _tenant(tenant: str) -> str:
    # Braces inside a tenant name would move the hash tag; tenant names are validated
    # elsewhere, this is the last line of defence.
    if "{" in tenant or "}" in tenant:
        raise ValueError(f"tenant name may not contain braces: {tenant!r}")
    return f"{PREFIX}:{{{tenant}}}"


def stream(tenant: str) -> str:
    """Stream of accepted, not yet folded traces (one entry per ingest call)."""
    return f"{_tenant(tenant)}:stream"


def seen(tenant: str, day: str) -> str:
    """Set of the digests of the trace ids first accepted on UTC ``day`` (by the service's
    clock, whatever day the traces name): one bucket of the dedupe window."""
    return f"{_tenant(tenant)}:seen:{day}"


def day_counts(tenant: str, day: str) -> str:
    """Hash of daily counters: field ``direction\\x1fconnector\\x1ftype\\x1ftls`` -> messages."""
    return f"{_tenant(tenant)}:day:{day}"


def day_version(tenant: str, day: str) -> str:
    """String: the data version of the last fold into ``day``'s counters; expires with them."""
    return f"{_tenant(tenant)}:dayversion:{day}"


def block_sum(tenant: str, first_day: str, last_day: str) -> str:
    """Hash: the counters of the days first..last summed (``sums``, packed) and the newest data
    version among those days when they were summed (``stamp``); see ``window_sums``."""
    return f"{_tenant(tenant)}:blocksum:{first_day}:{last_day}"


def meta(tenant: str) -> str:
    """Hash: ``version`` (bumped by every fold), ``data_as_of_ms`` (newest folded trace)."""
    return f"{_tenant(tenant)}:meta"


def view(tenant: str, name: str, *parts: str) -> str:
    """Cached, serialised report: hash of ``body``, ``etag``, ``version``."""
    suffix = ":".join((name, *parts))
    return f"{_tenant(tenant)}:view:{suffix}"


def view_staging(view_key: str, token: str) -> str:
    """A large view body on its way into ``view_key`` (same hash tag: same slot)."""
    return f"{view_key}:staging:{token}"


def refresh_lease(tenant: str) -> str:
    """Lease held by the one worker rebuilding this tenant's views and insights."""
    return f"{_tenant(tenant)}:lease:refresh"


def refreshed_recently(tenant: str) -> str:
    """Set for MAILFLOW_REFRESH_SECONDS after any worker rebuilt the tenant's views."""
    return f"{_tenant(tenant)}:refreshed"


def views_built_version(tenant: str) -> str:
    """String: a data version the tenant's precomputed views include (read before rebuilding
    them). Views behind ``meta``'s version need a rebuild, whichever worker folded."""
    return f"{_tenant(tenant)}:views:built"


def tenants_with_entries() -> str:
    """Set of tenants whose stream may hold entries no worker has read: the API adds a tenant
    after appending to its stream, a worker removes it before reading (no signal is lost)."""
    return f"{PREFIX}:tenants:new-entries"


def tenants_to_check() -> str:
    """Sorted set tenant -> epoch ms from which a worker must check it: views behind the data
    version, an evaluation due (new rules or definitions), folds in flight. Every mark raises
    the score, so a worker only removes a mark nobody renewed since it read it."""
    return f"{PREFIX}:tenants:check"


def tenants() -> str:
    """Set of every tenant that has ever ingested: the worker's list of streams to fold."""
    return f"{PREFIX}:tenants"


def worker_heartbeats() -> str:
    """Sorted set worker id -> last heartbeat (epoch seconds), read by /readyz."""
    return f"{PREFIX}:workers"


def instance_marker() -> str:
    """Set once when a store is first used; its absence on a used deployment means data loss."""
    return f"{PREFIX}:instance"


def active_insights(tenant: str) -> str:
    """Set of the ids of the tenant's active insights."""
    return f"{_tenant(tenant)}:insights:active"


def _api_key(key_id: str) -> str:
    # API keys are global, not per tenant. Each key id is its own hash tag, so the key record
    # and its rate counters share one Cluster slot (one pipeline may touch both).
    # Tenant names cannot contain ':' so ``{key:...}`` never collides with a tenant's tag.
    if not key_id.isalnum():
        raise ValueError(f"malformed API key id: {key_id!r}")
    return f"{PREFIX}:{{key:{key_id}}}"


def api_key(key_id: str) -> str:
    """Hash of one API key: ``tenant``, ``scopes``, ``hash`` (sha256 of the secret), ``name``,
    ``created_at``, ``revoked_at``. Never the secret itself."""
    return f"{_api_key(key_id)}:record"


def api_key_rate(key_id: str, kind: str, window: int) -> str:
    """Requests of ``kind`` (read | ingest | admin) made with the key in one fixed window."""
    return f"{_api_key(key_id)}:rate:{kind}:{window}"


def api_key_registry() -> str:
    """Set of every API key id: read by ``mailflow keys list`` only, never per request."""
    return f"{PREFIX}:apikeys"


# -- connector definitions, report snapshots, insights (reports & insights) -------------------


def connector_definitions(tenant: str) -> str:
    """Hash ``direction\\x1fname`` -> JSON ``{type, forced_tls, description}``."""
    return f"{_tenant(tenant)}:connectors"


def connector_registry(tenant: str) -> str:
    """Sorted set ``direction\\x1fname`` -> the newest UTC day (ordinal) a trace of that named
    connector was accepted for: the tenant's distinct connectors, at most MAILFLOW_MAX_CONNECTORS
    (see ``connector_registry``)."""
    return f"{_tenant(tenant)}:connectors:known"


def report_pin(tenant: str, report: str, *parts: str) -> str:
    """A report's rows frozen at one data version, so a paginating client sees each row once."""
    return f"{_tenant(tenant)}:pin:{':'.join((report, *parts))}"


def insights(tenant: str) -> str:
    """Hash insight id -> JSON document of the insight (active and resolved)."""
    return f"{_tenant(tenant)}:insights:all"


def insight_open(tenant: str) -> str:
    """Hash ``rule\\x1fdirection\\x1fconnector`` -> id of the active insight for that condition."""
    return f"{_tenant(tenant)}:insights:open"


def insight_feed(tenant: str) -> str:
    """Sorted set insight id -> change sequence of its latest transition (the SIEM feed)."""
    return f"{_tenant(tenant)}:insights:feed"


def insight_active_feed(tenant: str) -> str:
    """Sorted set: the ids of the active insights only, scored as in the feed, so listing
    ``state=active`` reads active insights only, however many were resolved before."""
    return f"{_tenant(tenant)}:insights:activefeed"


def insight_resolved(tenant: str) -> str:
    """Sorted set: the ids of resolved insights by the epoch ms of their resolution, so
    retention finds the old ones wherever they are in the feed."""
    return f"{_tenant(tenant)}:insights:resolved"


def insight_held(tenant: str) -> str:
    """Hash ``rule\\x1fdirection\\x1fconnector`` -> ``version ms`` of the newest evaluation
    that found that open condition holding (evaluations are applied in several calls)."""
    return f"{_tenant(tenant)}:insights:held"


def insight_rules(tenant: str) -> str:
    """Hash rule id -> JSON of the tenant's settings (``enabled``, ``min_percent``, ...)."""
    return f"{_tenant(tenant)}:insights:rules"


def insight_evaluated(tenant: str) -> str:
    """String: the UTC day and data version of the tenant's last insight evaluation."""
    return f"{_tenant(tenant)}:insights:evaluated"


def insight_sequence(tenant: str) -> str:
    """Counter: the tenant's insight change sequence (the feed's score), only ever increased."""
    return f"{_tenant(tenant)}:insights:seq"


def metrics() -> str:
    """Hash of every process's counters, in Prometheus series syntax -> value."""
    return f"{PREFIX}:metrics"


def invalidation_channel() -> str:
    """Pub/sub channel: names of keys whose cached copies in API processes must be dropped."""
    return f"{PREFIX}:invalidate"


def cursor_secret() -> str:
    """The random secret that signs pagination cursors when MAILFLOW_SECRET_KEY is not set:
    made once (SET NX) by the first API process, read by every other one."""
    return f"{PREFIX}:cursor-secret"


def dashboard_session(session_id: str) -> str:
    """Hash of one dashboard session: the key id and the sha256 of its secret (never the
    secret), the tenant, the CSRF token, sign-in and last-use times. Global, like the keys it
    refers to: its own hash tag, expiring by itself (EXPIRE, a duration)."""
    if not session_id.isalnum():
        raise ValueError(f"malformed dashboard session id: {session_id!r}")
    return f"{PREFIX}:{{session:{session_id}}}"


# -- tenant administration: reset and delete (store/tenants.py) -------------------------------


def day_counter_keys(tenant: str, day: str) -> list[str]:
    """Every key holding counters of trace day ``day``, deleted together by a reset of that
    day (the messages counters first). A new kind of per-day counter belongs in this list."""
    return [day_counts(tenant, day)]


def dedupe_resets(tenant: str) -> str:
    """Hash UTC trace day -> how many times that day was reset. A trace of a reset day is
    deduplicated under a digest salted with this number, so the ids seen before the reset
    count as new once (see ``store.dedupe_resets``)."""
    return f"{_tenant(tenant)}:dedupe:resets"


def tenant_pattern(tenant: str, kind: str = "*") -> str:
    """SCAN MATCH pattern of the tenant's keys (``kind``: e.g. ``view:*``; default all).
    Tenant names are ``[a-z0-9_-]``, so nothing in them is a glob character."""
    return f"{_tenant(tenant)}:{kind}"
