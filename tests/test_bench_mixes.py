"""The benchmark's trace mixes are traces the API accepts, with the dimensions they claim."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timedelta

import orjson
import pytest

from bench.baseline import ROOT
from bench.ingest import make_bodies
from bench.who_budget import (
    BEFORE_FIELDS,
    BEFORE_WHO,
    as_sent_before,
    in_history,
    without_per_name_counting,
)
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


def test_the_budget_gives_the_code_before_the_same_traces_without_the_fields_it_refuses():
    bodies = make_bodies(2_000, seed=3, prefix="m", who="every")
    before = [t for body in as_sent_before(bodies) for t in orjson.loads(body)]
    now = [t for body in bodies for t in orjson.loads(body)]
    assert all(t["auth_user"] for t in now)
    assert any("tls_policy" in t for t in now)
    assert not any({"auth_user", "tls_policy", "tls_auth"} & t.keys() for t in before)
    assert before == [{k: v for k, v in t.items() if k in BEFORE_FIELDS} for t in now]


def test_the_fields_kept_for_the_code_before_are_its_trace_contract():
    if not in_history(BEFORE_WHO):
        pytest.skip(f"commit {BEFORE_WHO} is not in this checkout (a shallow clone): the "
                    "section says it was not measured (the test below)")  # fmt: skip
    source = subprocess.run(["git", "show", f"{BEFORE_WHO}:service/core/trace_batch.py"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout  # fmt: skip
    contract = source.split("class _Trace(", 1)[1].split("\nclass ", 1)[0]
    assert set(re.findall(r"^    (\w+): ", contract, re.MULTILINE)) == BEFORE_FIELDS


_WHO_KEYS_OF_A_BATCH = """
from datetime import UTC, datetime
from bench.ingest import make_bodies
from service.core.trace_batch import accept_valid_batch
from service.core.traces import IngestWindow
body = make_bodies(50, seed=1, prefix="w", who="every", spread_s=600)[0]
batch = accept_valid_batch(body, False, 5000, IngestWindow.at(datetime.now(UTC), 90))
print(len(batch), len(batch.who_keys))
"""


def test_the_tree_without_per_name_counting_differs_only_in_building_no_who_keys(tmp_path):
    tree = without_per_name_counting(tmp_path / "without")
    changed = (tree / "service/core/trace_batch.py").read_text()
    original = (ROOT / "service/core/trace_batch.py").read_text()
    assert changed != original
    assert len(changed.splitlines()) == len(original.splitlines())
    for checkout, keys in ((ROOT, "50"), (tree, "0")):
        done = subprocess.run([sys.executable, "-c", _WHO_KEYS_OF_A_BATCH], cwd=checkout,
                              env={"PYTHONPATH": str(checkout), "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
        assert done.stdout.split() == ["50", keys], checkout


def test_the_budget_is_not_measured_without_the_commit_before():
    assert not in_history("0" * 40)  # no such commit: the section says so instead of failing
    if (ROOT / ".git").exists():  # a checkout with its history knows its own head
        assert in_history("HEAD")
