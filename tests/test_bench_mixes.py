"""The benchmark's trace mixes are traces the API accepts, with the dimensions they claim."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import orjson

from bench.baseline import ROOT
from bench.ingest import make_bodies
from bench.who_budget import in_history, without_auth_users
from service.core.traces import IngestWindow, normalize_trace
from service.core.transport_security import security_class


def _traces(who: str, spread_s: float = 600.0) -> list[dict]:
    return [t for body in make_bodies(2_000, seed=3, prefix="m", who=who, spread_s=spread_s)
            for t in orjson.loads(body)]  # fmt: skip


def test_every_dimension_mix_gives_each_domain_its_route_and_a_security_class():
    traces = _traces("every")
    window = IngestWindow.at(datetime.now().astimezone(), 90)
    for trace in traces:
        normalize_trace(dict(trace), window)  # raises on a trace the API would refuse
    routes: dict[str, set[object]] = defaultdict(set)
    classes = set()
    for trace in traces:
        domain = trace["recipient_domain" if trace["direction"] == "outbound" else "sender_domain"]
        routes[domain].add(trace["connector"])
        assert trace["auth_user"]
        if trace["tls_version"] != "none":
            classes.add(security_class(trace["tls_version"], trace["tls_auth"],
                                       trace["tls_policy"]))  # fmt: skip
    assert len(routes) > 250  # most of the 300 domains in 2,000 traces
    assert all(len(connectors) == 1 for connectors in routes.values())
    assert {"dane", "mta-sts", "encrypted"} <= classes


def test_live_traces_are_of_the_last_minutes_and_the_plain_mix_has_one_domain():
    traces = _traces("", spread_s=600.0)
    newest = max(datetime.fromisoformat(t["timestamp"]) for t in traces)
    oldest = min(datetime.fromisoformat(t["timestamp"]) for t in traces)
    assert newest - oldest <= timedelta(seconds=600)
    assert {t["sender_domain"] for t in traces} == {"example.org"}
    assert not any("auth_user" in t for t in traces)


def test_the_budget_gives_the_code_before_the_same_traces_without_their_users():
    bodies = make_bodies(2_000, seed=3, prefix="m", who="realistic")
    before = [t for body in without_auth_users(bodies) for t in orjson.loads(body)]
    now = [t for body in bodies for t in orjson.loads(body)]
    assert all(t["auth_user"] for t in now)
    assert not any("auth_user" in t for t in before)
    assert before == [{k: v for k, v in t.items() if k != "auth_user"} for t in now]


def test_the_budget_is_not_measured_without_the_commit_before():
    assert not in_history("0" * 40)  # no such commit: the section says so instead of failing
    if (ROOT / ".git").exists():  # a checkout with its history knows its own head
        assert in_history("HEAD")
