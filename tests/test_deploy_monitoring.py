"""The shipped Grafana dashboard and Prometheus scrape example chart what mailflow exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from service.telemetry.metrics import CATALOGUE

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
LABELS = {"tenant", "direction", "connector", "tls_version", "outcome", "status", "route",
          "method", "field", "le", "security"}  # fmt: skip


def _expressions(dashboard: dict) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_dashboard_charts_only_metrics_and_labels_mailflow_exports() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "mailflow.json").read_text())
    expressions = _expressions(dashboard)
    assert len(expressions) >= 10
    for expr in expressions:
        for name in re.findall(r"\bmailflow_[a-z_]+", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in CATALOGUE or CATALOGUE.get(base, ("",))[0] == "histogram", name
        for grouped in re.findall(r"by \(([^)]*)\)", expr):
            assert {g.strip() for g in grouped.split(",")} <= LABELS, expr
        for label in re.findall(r"([a-z_]+)(?:=~|!=|=)\"", expr):
            assert label in LABELS, expr
    assert any("mailflow_messages_total" in e and "tls_version" in e for e in expressions)
    assert any("mailflow_messages_total" in e and "by (security)" in e for e in expressions)
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "tenant", "direction"} <= variables
    used = {m for e in expressions for m in re.findall(r"\$([a-z_]+)", e)}
    assert used <= variables | {"__range"}
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_scrape_example_sends_the_token() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "scrape.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer" and job["authorization"]["credentials_file"]
    assert job["static_configs"][0]["targets"]
