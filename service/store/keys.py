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


def day_blocked(tenant: str, day: str) -> str:
    """Hash of a day's messages blocked by a TLS policy: field ``direction\x1fconnector\x1f
    type\x1fblocked\x1fpolicy\x1frecipient domain\x1freason`` -> messages (bounded, see
    ``aggregates.fold``)."""
    return f"{_tenant(tenant)}:dayblocked:{day}"


def day_blocked_version(tenant: str, day: str) -> str:
    """String: the data version of the last fold into ``day``'s blocked counters."""
    return f"{_tenant(tenant)}:dayblockedversion:{day}"


def block_sum(tenant: str, first_day: str, last_day: str) -> str:
    """Hash: the counters of the days first..last summed (``sums``, packed) and the newest data
    version among those days when they were summed (``stamp``); see ``window_sums``."""
    return f"{_tenant(tenant)}:blocksum:{first_day}:{last_day}"


def day_rows(tenant: str, day: str) -> str:
    """Hash: ``day``'s rows of the connector report grouped by day (``rows``, ``messages``: JSON
    parts) and the day version and definitions token they were built at (``stamp``); see
    ``store.day_rows``."""
    return f"{_tenant(tenant)}:dayrows:{day}"


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


# -- TLS-RPT (RFC 8460) reports: see service.store.tlsrpt_store -----------------------------


def tlsrpt_report(tenant: str, identity: str) -> str:
    """Hash of one received TLS-RPT report: ``gz`` (its JSON, gzip), ``day``, ``entry``,
    ``received_at``. Its existence is what makes a repeated posting a duplicate."""
    return f"{_tenant(tenant)}:tlsrpt:report:{identity}"


def tlsrpt_day(tenant: str, day: str) -> str:
    """Hash of one UTC day's TLS-RPT counters: field ``kind\\x1f...`` -> sessions (see
    ``service.core.tlsrpt.counter_increments``)."""
    return f"{_tenant(tenant)}:tlsrpt:day:{day}"


def tlsrpt_day_reports(tenant: str, day: str) -> str:
    """Hash of the reports counted on one UTC day: identity -> ``organization\\x1freport-id
    \\x1fdomains`` (the list the download links come from)."""
    return f"{_tenant(tenant)}:tlsrpt:reports:{day}"


def tlsrpt_intake_tokens(tenant: str) -> str:
    """Set of the ids of the tenant's TLS-RPT intake tokens (their records are API key
    records with the ``tlsrpt-intake`` scope only)."""
    return f"{_tenant(tenant)}:tlsrpt:tokens"


# -- webhooks (service.store.webhooks_store) --------------------------------------------------


def webhooks(tenant: str) -> str:
    """Hash subscription id -> JSON of the subscription, its signing secrets included."""
    return f"{_tenant(tenant)}:webhooks:subs"


def webhook_outbox(tenant: str) -> str:
    """List of insight transitions not yet turned into deliveries (JSON each), appended by
    apply_insights.lua in the step that makes the transition, while the tenant has
    subscriptions."""
    return f"{_tenant(tenant)}:webhooks:outbox"


def webhook_deliveries(tenant: str) -> str:
    """Hash delivery id (the ``webhook-id``) -> JSON of the delivery: its event, subscription,
    status and attempts."""
    return f"{_tenant(tenant)}:webhooks:deliveries"


def webhook_queue(tenant: str, subscription: str) -> str:
    """Sorted set: the subscription's deliveries still to send, by their order of creation.
    Only the first is ever sent, so a later event waits while an earlier one is retried."""
    return f"{_tenant(tenant)}:webhooks:queue:{subscription}"


def webhook_history(tenant: str, subscription: str) -> str:
    """Sorted set: the subscription's deliveries by creation time (epoch ms), the newest kept."""
    return f"{_tenant(tenant)}:webhooks:history:{subscription}"


def webhook_due(tenant: str) -> str:
    """Sorted set subscription id -> epoch ms when the first delivery of its queue is due; a
    subscription is in it exactly while its queue is not empty and it is enabled."""
    return f"{_tenant(tenant)}:webhooks:due"


def webhook_order(tenant: str) -> str:
    """Counter: the order of the tenant's deliveries (the queues' score)."""
    return f"{_tenant(tenant)}:webhooks:order"


def webhook_counts(tenant: str, subscription: str, day: str) -> str:
    """Hash of one subscription's UTC day: ``sent`` events, ``held`` over the daily cap."""
    return f"{_tenant(tenant)}:webhooks:day:{subscription}:{day}"


def webhook_quiet(tenant: str) -> str:
    """Hash ``subscription\\x1fcondition`` -> epoch ms until which a new detection of the
    condition, resolved a moment ago, is not sent to the subscription (quiet period)."""
    return f"{_tenant(tenant)}:webhooks:quiet"


def webhook_deferred(tenant: str) -> str:
    """Sorted set ``subscription\\x1fcondition\\x1finsight`` -> epoch ms: a detection held by
    a quiet period, sent when the period ends if the insight is still active."""
    return f"{_tenant(tenant)}:webhooks:deferred"


def webhook_deferred_deliveries(tenant: str) -> str:
    """Hash: the delivery (``id record``) of each deferred detection, by the same member."""
    return f"{_tenant(tenant)}:webhooks:deferred:deliveries"


def webhook_tenants() -> str:
    """Set of the tenants that have (had) webhook subscriptions: what the notifier looks at."""
    return f"{PREFIX}:webhooks:tenants"


# -- per remote domain and per SMTP AUTH user (docs/domains.md) -------------------------------


def who_counts(tenant: str, kind: str, day: str) -> str:
    """Hash of one kind's (``domains`` | ``auth``) daily counters: field
    ``direction\\x1fname\\x1fmarker\\x1fvalue`` -> messages (see ``core.who``)."""
    return f"{_tenant(tenant)}:who:{kind}:{day}"


def who_version(tenant: str, kind: str, day: str) -> str:
    """String: the data version of the last fold into ``who_counts``; expires with them."""
    return f"{_tenant(tenant)}:whoversion:{kind}:{day}"


def who_names(tenant: str, kind: str, direction: str, day: str) -> str:
    """Hash: the names counted by name on ``day`` (at most the kind's limit) -> their admitted
    remote hosts / client IPs (at most ``core.who.EXTRAS_PER_NAME``), joined by \\x1f."""
    return f"{_tenant(tenant)}:whonames:{kind}:{direction}:{day}"


def who_sum(tenant: str, kind: str, first_day: str, last_day: str) -> str:
    """Hash: one kind's counters of the days first..last summed, as ``block_sum``."""
    return f"{_tenant(tenant)}:whosum:{kind}:{first_day}:{last_day}"


# -- tenant administration: reset and delete (store/tenants.py) -------------------------------


# The kinds of per-name counters (``core.who.KINDS``' names) and the directions: spelled out
# here because keys are built from names only (tests/test_tenants.py holds them to core.who).
WHO_KIND_NAMES = ("domains", "auth")
WHO_DIRECTIONS = ("inbound", "outbound")


def day_counter_keys(tenant: str, day: str) -> list[str]:
    """Every key holding counters of trace day ``day``, deleted together by a reset of that
    day (the messages counters first). A new kind of per-day counter belongs in this list,
    and its version string in ``day_version_keys``."""
    return [
        day_counts(tenant, day),
        day_blocked(tenant, day),
        day_rows(tenant, day),
        *(who_counts(tenant, kind, day) for kind in WHO_KIND_NAMES),
        *(who_names(tenant, kind, direction, day)
          for kind in WHO_KIND_NAMES for direction in WHO_DIRECTIONS),
    ]  # fmt: skip


def day_version_keys(tenant: str, day: str) -> list[str]:
    """The version strings of ``day``'s other counters (besides ``day_version``): a reset sets
    each to the new data version, so no sum or view cached over the day stays valid."""
    return [day_blocked_version(tenant, day),
            *(who_version(tenant, kind, day) for kind in WHO_KIND_NAMES)]  # fmt: skip


def dedupe_resets(tenant: str) -> str:
    """Hash UTC trace day -> how many times that day was reset. A trace of a reset day is
    deduplicated under a digest salted with this number, so the ids seen before the reset
    count as new once (see ``store.dedupe_resets``)."""
    return f"{_tenant(tenant)}:dedupe:resets"


def tenant_pattern(tenant: str, kind: str = "*") -> str:
    """SCAN MATCH pattern of the tenant's keys (``kind``: e.g. ``view:*``; default all).
    Tenant names are ``[a-z0-9_-]``, so nothing in them is a glob character."""
    return f"{_tenant(tenant)}:{kind}"


# -- tenant settings ---------------------------------------------------------------------------


def time_zone(tenant: str) -> str:
    """String: the tenant's IANA time zone name, where its traces' days are counted (absent:
    UTC); see ``store.tenant_zone``. Never expires."""
    return f"{_tenant(tenant)}:timezone"


def time_zones_version() -> str:
    """Global string: a number bumped by every change of any tenant's time zone, so a worker
    checks one key, not one per tenant, to know its cached zones still hold. No tenant data."""
    return f"{PREFIX}:timezones:version"


# -- store format and upgrades (store/store_format.py, store/migrations/) --------------------


def store_format() -> str:
    """String: the format version of the whole store (one per deployment, so global). A store
    with mailflow data but without it was written by 0.1.0 (format 1)."""
    return f"{PREFIX}:store:format"


def migration_progress(tenant: str, step: str) -> str:
    """Hash: how far ``mailflow migrate`` got with one step for one tenant (``cursor`` of its
    SCAN, ``done``), so an interrupted run goes on where it stopped."""
    return f"{_tenant(tenant)}:migrate:{step}"


def seen_bucket(tenant: str, day: str, prefix: int) -> str:
    """Set of the trace ids first accepted on UTC ``day`` whose digest starts with the bits
    ``prefix``: one of the buckets of that day (see ``store.seen_buckets``). Its members are
    the digest's bytes 8..15 as a signed 64-bit integer, so Redis keeps it as an intset."""
    return f"{seen(tenant, day)}:{prefix:02x}"
