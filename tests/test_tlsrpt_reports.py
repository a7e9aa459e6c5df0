"""GET /api/v1/tls-reports: per policy domain over a window, one domain's days and failure
details, CSV, ETag, cursors and the download of the report as received."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import timedelta

from tests.tlsrpt_reports import report_on, two_policies_on


def _post(client, document) -> dict:
    answer = client.post("/api/v1/tlsrpt", data=json.dumps(document),
                         headers={"Content-Type": "application/tlsrpt+json"})  # fmt: skip
    assert answer.status_code == 202, answer.json
    return answer.json


def test_per_domain_rows_count_each_policy_to_its_domain(client, clock) -> None:
    yesterday = clock.now - timedelta(days=1)
    _post(client, two_policies_on(yesterday))
    _post(client, report_on(yesterday - timedelta(days=2), "other", domains=("alpha.example",),
                            ok=100, failed=3, organization="Other Org"))  # fmt: skip
    _post(client, report_on(yesterday, "old", domains=("gamma.example",), ok=1, failed=0))
    page = client.get("/api/v1/tls-reports?days=7").json
    rows = {row["policy_domain"]: row for row in page["rows"]}
    assert list(rows) == ["alpha.example", "beta.example", "gamma.example"]
    alpha = rows["alpha.example"]
    assert (alpha["successful_sessions"], alpha["failed_sessions"]) == (1000, 15)
    assert alpha["sessions"] == 1015
    assert alpha["success_percent"] == 98.5 and alpha["failure_percent"] == 1.5
    assert [(r["organization"], r["successful_sessions"], r["failed_sessions"])
            for r in alpha["reporters"]] == [("Other Org", 100, 3),
                                             ("Reporter Example", 900, 12)]  # fmt: skip
    assert {r["result_type"]: r["failed_sessions"] for r in alpha["failures_by_result_type"]} == {
        "certificate-expired": 10 + 3,
        "x-future-result": 2,
    }
    assert sum(r["percent"] for r in alpha["failures_by_result_type"]) == 100.0
    beta = rows["beta.example"]
    assert (beta["successful_sessions"], beta["failed_sessions"]) == (40, 5)
    assert beta["policy_types"] == {"tlsa": 45}
    assert beta["mx_hosts"] == [{"mx_host": "mx.beta.example", "successful_sessions": 40,
                                 "failed_sessions": 5}]  # fmt: skip
    # a window without those days has none of it
    start = (clock.now - timedelta(days=2)).date().isoformat()
    assert client.get(f"/api/v1/tls-reports?start={start}&end={start}").json["rows"] == []


def test_domain_detail_series_failures_and_download(client, clock) -> None:
    yesterday = clock.now - timedelta(days=1)
    sent = two_policies_on(yesterday)
    counted = _post(client, sent)
    detail = client.get("/api/v1/tls-reports/Alpha.Example?days=3").json
    assert [d["date"] for d in detail["days"]] == [
        (clock.now - timedelta(days=n)).date().isoformat() for n in (2, 1, 0)
    ]
    assert [(d["successful_sessions"], d["failed_sessions"]) for d in detail["days"]] == [
        (0, 0),
        (900, 12),
        (0, 0),
    ]
    assert detail["failure_details"][0] == {
        "result_type": "certificate-expired",
        "receiving_mx_hostname": "mx.alpha.example",
        "receiving_ip": "198.51.100.7",
        "sending_mta_ip": "192.0.2.1",
        "failure_reason_code": None,
        "failed_sessions": 10,
    }
    [report] = detail["reports"]
    assert report["id"] == counted["id"]
    download = client.get(report["download"])
    assert download.status_code == 200 and download.mimetype == "application/tlsrpt+gzip"
    assert json.loads(gzip.decompress(download.data)) == sent
    assert client.get("/api/v1/tls-reports/originals/0123abcd").status_code == 404
    assert client.get("/api/v1/tls-reports/not..a..domain").status_code == 422
    empty = client.get("/api/v1/tls-reports/nothing.example").json
    assert empty["sessions"] == 0 and empty["success_percent"] == 0.0


def test_another_tenant_sees_nothing(app, client, clock, make_key) -> None:
    counted = _post(client, report_on(clock.now - timedelta(days=1)))
    other = {"Authorization": f"Bearer {make_key('other', 'read')}"}
    assert client.get("/api/v1/tls-reports", headers=other).json["rows"] == []
    original = f"/api/v1/tls-reports/originals/{counted['id']}"
    assert client.get(original, headers=other).status_code == 404
    assert client.get(original).status_code == 200


def test_etag_cursor_and_csv(client, clock) -> None:
    yesterday = clock.now - timedelta(days=1)
    for n in range(5):
        _post(client, report_on(yesterday, f"r{n}", domains=(f"d{n}.example",), ok=n, failed=1))
    first = client.get("/api/v1/tls-reports?limit=2")
    assert first.json["total_rows"] == 5
    assert (
        client.get(
            "/api/v1/tls-reports?limit=2", headers={"If-None-Match": first.headers["ETag"]}
        ).status_code
        == 304
    )
    seen = [r["policy_domain"] for r in first.json["rows"]]
    cursor = first.json["next_cursor"]
    while cursor:
        page = client.get(f"/api/v1/tls-reports?limit=2&cursor={cursor}").json
        seen += [r["policy_domain"] for r in page["rows"]]
        cursor = page["next_cursor"]
    assert seen == [f"d{n}.example" for n in range(5)]
    assert (
        client.get("/api/v1/tls-reports?limit=3&cursor=" + first.json["next_cursor"]).status_code
        == 400
    )  # another query's cursor
    cursor = first.json["next_cursor"]
    _post(client, report_on(yesterday, "late", domains=("d0.example",)))
    assert client.get(f"/api/v1/tls-reports?limit=2&cursor={cursor}").status_code == 410
    exported = client.get("/api/v1/tls-reports", headers={"Accept": "text/csv"})
    assert exported.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(exported.data.decode())))
    assert table[0][:4] == ["policy_domain", "sessions", "successful_sessions", "failed_sessions"]
    assert table[1][:4] == ["d0.example", "12", "10", "2"]
    assert len(table) == 6


def test_the_dashboard_page_shows_the_api_rows(app, client, clock, make_key) -> None:
    from tests.html_cells import Page, sign_in

    _post(client, two_policies_on(clock.now - timedelta(days=1)))
    browser = sign_in(app, make_key("default", "read"))
    answer = browser.get("/tls-reports?days=7")
    assert answer.status_code == 200, answer.data[:300]
    html = Page(answer.get_data(as_text=True))
    api = client.get("/api/v1/tls-reports?days=7").json["rows"]
    assert html.texts("th", "policy-domain") == [r["policy_domain"] for r in api]
    assert html.texts("td", "sessions") == [f"{r['sessions']:,}" for r in api]
    assert html.texts("td", "success-percent") == [f"{r['success_percent']:.1f} %" for r in api]
    domain = Page(browser.get("/tls-reports/alpha.example?days=7").get_data(as_text=True))
    detail = client.get("/api/v1/tls-reports/alpha.example?days=7").json
    assert domain.texts("td", "failed", within="tls-days") == [
        f"{d['failed_sessions']:,}" for d in detail["days"]
    ]
    assert domain.texts("th", "result-type") == [
        f["result_type"] for f in detail["failure_details"]
    ]
    assert browser.get("/tls-reports/not..a..domain").status_code == 422
    again = browser.get("/tls-reports?days=7", headers={"If-None-Match": answer.headers["ETag"]})
    assert again.status_code == 304
    empty = (clock.now - timedelta(days=3)).date().isoformat()
    assert "No TLS-RPT report" in browser.get(f"/tls-reports?start={empty}&end={empty}").get_data(
        as_text=True
    )
