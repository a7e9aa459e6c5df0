"""Settings of a mailflow process, read from ``MAILFLOW_*`` environment variables.

Nothing here runs at import time: ``Settings.from_env()`` is called by ``create_app`` and by the
CLI commands, so tests can build as many differently configured apps as they like.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Settings:
    """Every setting, with its default. The README's configuration table mirrors this class."""

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
    refresh_seconds: float = 2.0
    view_cache_seconds: int = 60
    worker_stale_seconds: float = 15.0
    claim_idle_seconds: float = 30.0
    fold_batch_entries: int = 50
    web_workers: int = 0  # 0: one per CPU core
    web_threads: int = 4  # threads per web worker (gunicorn gthread)
    log_level: str = "INFO"
    access_log: bool = True  # one JSON line per request (method, path, status, duration, tenant)
    metrics_per_tenant: bool = True  # /metrics backlog series per tenant (names, no mail data)
    metrics_flush_seconds: float = 1.0  # how often a process adds its counts to Redis
    near_cache: bool = True  # API processes keep key records and views, invalidated by Redis
    cached_reads: bool = True  # default report GETs answered from the near cache without Flask
    rate_limit_per_minute: int = 600  # per API key: reads (GET/HEAD) and, separately, admin calls
    rate_limit_ingest_per_minute: int = 120  # per API key: POST /api/v1/traces calls
    cors_origins: str = ""  # comma-separated browser origins allowed to call the API; none
    secret_key: str = ""  # signs pagination cursors; empty: a random secret kept in Redis

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
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
        for name in ("retention_days", "dedupe_days", "max_batch", "max_body_bytes",
                     "rate_limit_per_minute", "rate_limit_ingest_per_minute",
                     "redis_wait_timeout_ms"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"MAILFLOW_{name.upper()} must be at least 1")
        if self.redis_wait_replicas < 0:
            raise ValueError("MAILFLOW_REDIS_WAIT_REPLICAS must be 0 or more")
        return self

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


def _coerce(name: str, raw: str, kind: type) -> Any:
    try:
        if kind is bool:
            return raw.lower() in ("1", "true", "yes", "on")
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError:
        raise ValueError(
            f"MAILFLOW_{name.upper()}={raw!r} is not a valid {kind.__name__}"
        ) from None
    return raw
