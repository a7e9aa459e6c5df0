"""The Lua scripts, loaded once per client. Each runs atomically on one tenant's slot."""

from __future__ import annotations

from functools import cache
from importlib import resources

import redis
from redis.commands.core import AsyncScript, Script


@cache
def _source(name: str) -> str:
    return resources.files("service.store").joinpath(f"lua/{name}.lua").read_text()


def script(client: redis.Redis, name: str) -> Script | AsyncScript:
    """A registered script: EVALSHA, falling back to EVAL after a server restart."""
    cached = getattr(client, "_mailflow_scripts", None)
    if cached is None:
        cached = {}
        client._mailflow_scripts = cached  # type: ignore[attr-defined]
    if name not in cached:
        cached[name] = client.register_script(_source(name))
    return cached[name]
