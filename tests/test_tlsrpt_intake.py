"""TLS-RPT intake over HTTPS: with an ingest key and at a tenant's token URL. Every sample
counts its own numbers per policy, once; hostile reports get a clear 4xx, never a 5xx; a token
writes to its own tenant only."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta

import pytest

from service.store import tlsrpt_store
from tests.tlsrpt_reports import (
    TWO_POLICIES,
    body_of,
    changed,
    day_after,
    expected_sessions,
    json_of,
    report_on,
    shared_samples,
    two_policies_on,
)


def _sessions(redis_client, tenant: str, day: str) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for field, count in tlsrpt_store.read_days(redis_client, tenant, [day]).get(day, {}).items():
        kind, domain, *_ = field.split("\x1f")
        ok, failed = out.get(domain, (0, 0))
        if kind in "sf":
            out[domain] = (ok + count, failed) if kind == "s" else (ok, failed + count)
    return out


def _make_token(client, tenant_key: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {tenant_key}"} if tenant_key else {}
    made = client.post("/api/v1/tlsrpt/tokens", json={"name": "rua"}, headers=headers)
    assert made.status_code == 201, made.json
    assert made.json["dns_record"] == f'_smtp._tls IN TXT "v=TLSRPTv1; rua={made.json["url"]}"'
    return made.json["url"].split("://", 1)[1].split("/", 1)[1]  # the path


def _post(client, path: str, body: bytes, kind: str):
    return client.post(path, data=body, headers={"Content-Type": kind})


@pytest.mark.parametrize("intake", ["key", "token"])
def test_every_sample_counts_its_own_numbers_once(app, client, redis_client, clock, intake):
    path = "/api/v1/tlsrpt" if intake == "key" else "/" + _make_token(client)
    seen: set[tuple[str, str]] = set()
    for sample in shared_samples():
        body, kind = body_of(sample)
        document = json_of(sample)
        # Google's extracted JSON and its e-mail are one report: the second is a duplicate.
        identity = (document["organization-name"], document["report-id"])
        clock.now = day_after(document)
        day = (clock.now - timedelta(days=1)).date().isoformat()
        before = _sessions(redis_client, "default", day)
        answer = _post(client, path, body, kind)
        assert answer.status_code == 202, (sample.name, answer.json)
        assert answer.json["outcome"] == ("duplicate" if identity in seen else "counted")
        after = _sessions(redis_client, "default", day)
        if identity in seen:
            assert after == before, sample.name
        else:
            added = {d: (ok - before.get(d, (0, 0))[0], failed - before.get(d, (0, 0))[1])
                     for d, (ok, failed) in after.items()}  # fmt: skip
            assert added == expected_sessions(document), sample.name
        seen.add(identity)
        again = _post(client, path, body, kind)
        assert again.status_code == 202 and again.json["outcome"] == "duplicate"
        assert again.json["id"] == answer.json["id"]
        assert _sessions(redis_client, "default", day) == after, sample.name
        original = client.get(f"/api/v1/tls-reports/originals/{answer.json['id']}")
        if original.status_code != 404:  # the download arrives with the reports
            assert json.loads(gzip.decompress(original.data)) == document
    assert len(seen) == 4


@pytest.mark.parametrize("intake", ["key", "token"])
def test_two_policies_and_our_own_fixture(app, client, redis_client, clock, intake):
    path = "/api/v1/tlsrpt" if intake == "key" else "/" + _make_token(client)
    report = two_policies_on(clock.now - timedelta(days=1))
    answer = _post(client, path, gzip.compress(json.dumps(report).encode()),
                   "application/tlsrpt+gzip")  # fmt: skip
    assert answer.status_code == 202, answer.json
    assert answer.json["outcome"] == "counted" and answer.json["policies"] == 2
    day = answer.json["day"]
    assert _sessions(redis_client, "default", day) == {"alpha.example": (900, 12),
                                                       "beta.example": (40, 5)}  # fmt: skip
    assert json.loads(TWO_POLICIES.read_bytes())["report-id"] == answer.json["report_id"]


def _hostile(clock) -> dict[str, tuple[bytes, str, int, str | None]]:
    good = report_on(clock.now - timedelta(days=1))
    many = report_on(clock.now - timedelta(days=1), failed=0,
                     domains=tuple(f"d{n}.example" for n in range(10_000)))  # fmt: skip

    def of(document: object) -> bytes:
        return json.dumps(document).encode()

    json_type = "application/tlsrpt+json"
    return {
        "gzip bomb": (gzip.compress(b"[" + b" " * (64 << 20) + b"]"), "application/tlsrpt+gzip",
                      413, None),
        "gzip bomb as content-encoding": (gzip.compress(b" " * (64 << 20)),
                                          "application/json+gzip-encoded", 413, None),
        "not gzip": (b"\x1f\x8bnot really", "application/tlsrpt+gzip", 400, None),
        "deep nesting": (of(good)[:-1] + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                         json_type, 400, None),
        "deep, within the parser's reach": (of(changed(good, "/x", [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]])),
                                            json_type, 422, None),
        "negative count": (of(changed(good, "/policies/0/summary/total-successful-session-count",
                                      -5)), json_type, 422,
                           "/policies/0/summary/total-successful-session-count"),
        "huge count": (of(changed(good, "/policies/0/failure-details/0/failed-session-count",
                                  10**30)), json_type, 422,
                       "/policies/0/failure-details/0/failed-session-count"),
        "count as a string": (of(changed(good, "/policies/0/summary/total-failure-session-count",
                                         "1")), json_type, 422,
                              "/policies/0/summary/total-failure-session-count"),
        "10,000 policies": (of(many), json_type, 413, None),
        "policies not an array": (of(changed(good, "/policies", {"a": 1})), json_type, 422,
                                  "/policies"),
        "a list, not a report": (of([good]), json_type, 422, "/"),
        "not JSON": (b"{'report-id': 1}", json_type, 400, None),
        "empty": (b"", json_type, 400, None),
        "NaN": (of(good).replace(b"10,", b"NaN,", 1), json_type, 400, None),
        "old": (of(report_on(clock.now - timedelta(days=400))), json_type, 422,
                "/date-range/start-datetime"),
        "wrong type": (of(good), "text/plain", 415, None),
    }  # fmt: skip


@pytest.mark.parametrize("intake", ["key", "token"])
def test_hostile_reports_get_a_clear_4xx(app, client, redis_client, clock, intake):
    path = "/api/v1/tlsrpt" if intake == "key" else "/" + _make_token(client)
    for name, (body, kind, status, field) in _hostile(clock).items():
        headers = {"Content-Type": kind}
        if kind == "application/json+gzip-encoded":
            headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        answer = client.post(path, data=body, headers=headers)
        assert answer.status_code == status, (name, answer.status_code, answer.data[:300])
        assert answer.mimetype == "application/problem+json", name
        assert answer.json["status"] == status
        if field is not None:
            assert answer.json["errors"][0]["field"] == field, name
    assert redis_client.keys("*tlsrpt:day*") == []


def test_a_token_writes_to_its_own_tenant_only(app, client, redis_client, clock, make_key):
    other_admin = make_key("other", "admin", "read")
    mine, theirs = _make_token(client), _make_token(client, other_admin)
    report = report_on(clock.now - timedelta(days=1), ok=3, failed=0)
    day = (clock.now - timedelta(days=1)).date().isoformat()
    body = json.dumps(report).encode()
    assert _post(client, "/" + theirs, body, "application/json").status_code == 202
    assert _sessions(redis_client, "other", day) == {"a.example": (3, 0)}
    assert _sessions(redis_client, "default", day) == {}
    # the same report at our URL is ours: counted here too, not a duplicate of theirs
    assert _post(client, "/" + mine, body, "application/json").json["outcome"] == "counted"
    # no header can move a token's report to another tenant
    answer = client.post(
        "/" + theirs,
        data=body,
        headers={
            "Content-Type": "application/json",
            "Authorization": "Bearer " + make_key("default"),
        },
    )
    assert answer.json["outcome"] == "duplicate"
    assert _sessions(redis_client, "default", day) == {"a.example": (3, 0)}


def test_tokens_are_listed_revoked_and_good_for_nothing_else(app, client, redis_client, clock,
                                                             make_key):  # fmt: skip
    path = "/" + _make_token(client)
    token = path.rsplit("/", 1)[1]
    token_id = token.split("_")[1]
    listed = client.get("/api/v1/tlsrpt/tokens").json["tokens"]
    assert [t["id"] for t in listed] == [token_id] and "token" not in listed[0]
    assert token.encode() not in b"".join(redis_client.dump(k) or b""
                                          for k in redis_client.keys("*"))  # fmt: skip
    # the token as a bearer key reads nothing and ingests no traces
    as_bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/tlsrpt/tokens", headers=as_bearer).status_code == 403
    assert client.post("/api/v1/traces", json=[], headers=as_bearer).status_code == 403
    # an ingest key may not make tokens
    ingest_only = {"Authorization": f"Bearer {make_key('default', 'ingest')}"}
    assert client.post("/api/v1/tlsrpt/tokens", json={}, headers=ingest_only).status_code == 403
    # another tenant cannot revoke it
    other = {"Authorization": f"Bearer {make_key('other', 'admin')}"}
    assert client.delete(f"/api/v1/tlsrpt/tokens/{token_id}", headers=other).status_code == 404
    body = json.dumps(report_on(clock.now - timedelta(days=1))).encode()
    assert _post(client, path, body, "application/json").status_code == 202
    assert client.delete(f"/api/v1/tlsrpt/tokens/{token_id}").status_code == 204
    revoked = _post(client, path, body, "application/json")
    assert revoked.status_code == 401 and revoked.mimetype == "application/problem+json"
    assert client.get("/api/v1/tlsrpt/tokens").json["tokens"][0]["revoked_at"] is not None
    for wrong in ("/api/v1/tlsrpt/intake/nope", f"/api/v1/tlsrpt/intake/{token[:-1]}x"):
        answer = _post(client, wrong, body, "application/json")
        assert answer.status_code in (401, 404), wrong
        assert answer.mimetype == "application/problem+json"


def test_the_cli_makes_lists_and_revokes_intake_urls(app, client, clock, redis_server) -> None:
    from click.testing import CliRunner

    from service.cli import cli

    env = {"MAILFLOW_REDIS_URL": redis_server.url}
    made = CliRunner().invoke(cli, ["tlsrpt-tokens", "create", "--tenant", "default", "--url",
                                    "https://mf.example.net/"], env=env)  # fmt: skip
    assert made.exit_code == 0, made.output
    url = made.stdout.strip()
    assert url.startswith("https://mf.example.net/api/v1/tlsrpt/intake/mf_")
    body = json.dumps(report_on(clock.now - timedelta(days=1))).encode()
    path = url.removeprefix("https://mf.example.net")
    assert _post(client, path, body, "application/json").status_code == 202
    [listed] = [
        json.loads(line)
        for line in CliRunner()
        .invoke(cli, ["tlsrpt-tokens", "list", "--tenant", "default"], env=env)
        .stdout.splitlines()
    ]
    assert listed["revoked_at"] is None
    wrong = CliRunner().invoke(cli, ["tlsrpt-tokens", "revoke", "--tenant", "other",
                                     listed["id"]], env=env)  # fmt: skip
    assert wrong.exit_code != 0
    revoked = CliRunner().invoke(cli, ["tlsrpt-tokens", "revoke", "--tenant", "default",
                                       listed["id"]], env=env)  # fmt: skip
    assert revoked.exit_code == 0, revoked.output
    assert _post(client, path, body, "application/json").status_code == 401


def test_the_token_never_reaches_the_access_log(app, client, clock, capfd) -> None:
    path = "/" + _make_token(client)
    body = json.dumps(report_on(clock.now - timedelta(days=1))).encode()
    assert _post(client, path, body, "application/json").status_code == 202
    assert _post(client, path + "x", body, "application/json").status_code in (401, 404)
    logged = capfd.readouterr().err
    assert '"path":"/api/v1/tlsrpt/intake/(token)"' in logged
    assert path.rsplit("/", 1)[1][:20] not in logged


def test_an_intake_url_is_rate_limited_like_an_ingest_key(redis_server, clock, closing,
                                                          make_key) -> None:  # fmt: skip
    from service.app import create_app

    app = closing(create_app({"redis_url": redis_server.url, "CLOCK": clock,
                              "rate_limit_ingest_per_minute": 2}))  # fmt: skip
    client = app.test_client()
    path = "/" + _make_token(client, make_key("default", "admin"))
    answers = [_post(client, path, json.dumps(report_on(clock.now - timedelta(days=1),
                                                        f"r{n}")).encode(), "application/json")
               for n in range(3)]  # fmt: skip
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert answers[2].mimetype == "application/problem+json"
    assert "Retry-After" in answers[2].headers


def test_reports_are_counted_in_the_metrics(app, client, clock, redis_client) -> None:
    from service.telemetry.metrics import METRICS

    METRICS.flush(redis_client)
    before = client.get("/metrics").get_data(as_text=True)
    body = json.dumps(report_on(clock.now - timedelta(days=1))).encode()
    for _ in range(2):
        _post(client, "/api/v1/tlsrpt", body, "application/json")
    _post(client, "/api/v1/tlsrpt", b"{}", "application/json")
    METRICS.flush(redis_client)
    after = client.get("/metrics").get_data(as_text=True)
    assert "# TYPE mailflow_tlsrpt_reports_total counter" in after
    for outcome in ("counted", "duplicate", "rejected"):
        series = f'mailflow_tlsrpt_reports_total{{outcome="{outcome}"}}'
        assert _sample(after, series) == _sample(before, series) + 1, outcome


def _sample(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[1])
    return 0.0
