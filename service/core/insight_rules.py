"""The insight rules, as data: what each watches, its default thresholds, what to do about it.

A rule fires for a connector when, over the rule's window, the messages that match its metric
(the TLS versions it names) are at least ``min_percent`` of the connector's messages in the
rule's directions *and* at least ``min_messages`` in number. docs/insights.md explains each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

DAY_WINDOW = "days"
SEVERITIES = ("low", "medium", "high")
# No connector carries a billion messages in a rule's window; beyond it a setting is a mistake
# (and past 64 bits it could not even be stored).
MAX_MIN_MESSAGES = 1_000_000_000


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    directions: tuple[str, ...]
    connector_types: tuple[str, ...]
    metric: tuple[str, ...]  # TLS versions whose messages count as matching
    window_days: int  # UTC days ending today
    min_percent: float
    min_messages: int
    severity: str
    recommendation: str
    forced_tls_only: bool = False  # only connectors defined with forced TLS
    enabled: bool = True
    # How the rule is evaluated: "versions" (``metric`` names TLS versions; service.core.
    # insights) or one of the transport security kinds of service.core.security_insights.
    kind: str = "versions"
    subject: str = "connector"  # or a name of core.who: "domain", "auth_user" (docs/domains.md)
    min_messages_of_all: bool = False  # min_messages counts all the subject's messages

    def fires(self, messages: int, matching: int) -> bool:
        """matching ≥ min_messages and matching / messages ≥ min_percent %, exactly (with
        ``min_messages_of_all``: messages ≥ min_messages)."""
        counted = messages if self.min_messages_of_all else matching
        if messages == 0 or counted < self.min_messages:
            return False
        return Decimal(matching) * 100 >= Decimal(str(self.min_percent)) * messages

    def settings(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "min_percent": self.min_percent,
                "min_messages": self.min_messages}  # fmt: skip

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "severity": self.severity,
            "directions": list(self.directions), "connector_types": list(self.connector_types),
            "metric": list(self.metric), "window_days": self.window_days,
            "forced_tls_only": self.forced_tls_only, "recommendation": self.recommendation,
            **self.settings(),
        }  # fmt: skip


_LEGACY = (
    "Ask the partner (or the administrator of the on-premises servers) to enable TLS 1.2 or "
    "later on the sending servers; {version} is deprecated (RFC 8996) and will be refused by "
    "receivers that disable it. Open the connector's report to see the trend and the volume."
)


def _legacy_rule(kind: str, title_kind: str, version: str) -> Rule:
    short = version.replace("TLS1.", "tls1")
    return Rule(
        id=f"inbound-{kind}-{short}",
        title=f"Inbound {title_kind} connector seeing significant {version} mail flow",
        directions=("inbound",), connector_types=(kind,), metric=(version,), window_days=7,
        min_percent=5.0, min_messages=10, severity="medium",
        recommendation=_LEGACY.format(version=version),
    )  # fmt: skip


BUILT_IN: tuple[Rule, ...] = (
    _legacy_rule("partner", "Partner", "TLS1.0"),
    _legacy_rule("onpremises", "OnPremises", "TLS1.0"),
    _legacy_rule("partner", "Partner", "TLS1.1"),
    _legacy_rule("onpremises", "OnPremises", "TLS1.1"),
    Rule(
        id="connector-unencrypted",
        title="Connector carrying significant mail without TLS",
        directions=("inbound", "outbound"), connector_types=("partner", "onpremises"),
        metric=("none",), window_days=7, min_percent=5.0, min_messages=10, severity="medium",
        recommendation="Enable STARTTLS on both ends of the connector, then define it with "
        "forced TLS so that plaintext delivery fails instead of going unnoticed.",
    ),
    Rule(
        id="forced-tls-violation",
        title="Connector defined with forced TLS carried mail without TLS",
        directions=("inbound", "outbound"), connector_types=("partner", "onpremises"),
        metric=("none",), window_days=2, min_percent=0.0, min_messages=1, severity="high",
        recommendation="A connector that must use TLS delivered plaintext: check the "
        "connector's TLS settings on the mail server and the certificate of the remote end; "
        "treat the affected messages as exposed in transit.",
        forced_tls_only=True,
    ),
)  # fmt: skip
# TLS-RPT (RFC 8460): what senders report about delivering to the tenant's policy domains,
# evaluated per (policy domain, result type) by service.core.tlsrpt_insights. ``metric`` names
# the result types that match ("*": any); no connector is their subject (``connector_types``
# is empty, so the connector evaluation passes them by). docs/tls-rpt.md explains each.
TLSRPT_ANY_RESULT = "*"


def _tlsrpt_rule(rule_id: str, title: str, metric: tuple[str, ...], min_percent: float,
                 min_messages: int, severity: str, recommendation: str) -> Rule:  # fmt: skip
    return Rule(id=rule_id, title=title, directions=("inbound",), connector_types=(),
                metric=metric, window_days=7, min_percent=min_percent,
                min_messages=min_messages, severity=severity,
                recommendation=recommendation)  # fmt: skip


TLSRPT_RULES: tuple[Rule, ...] = (
    _tlsrpt_rule(
        "tlsrpt-failing-sessions",
        "Senders report failing TLS sessions to a policy domain",
        (TLSRPT_ANY_RESULT,),
        5.0,
        10,
        "medium",
        "Open the domain's TLS report: the result type and the receiving MX say what senders "
        "saw (a certificate, STARTTLS missing on one MX, a DANE or MTA-STS policy that does "
        "not match the MX hosts). Mail to the domain may be delayed or sent without TLS "
        "meanwhile.",
    ),
    _tlsrpt_rule(
        "tlsrpt-sts-policy-unusable",
        "Senders cannot use the domain's MTA-STS policy",
        ("sts-policy-fetch-error", "sts-policy-invalid"),
        0.0,
        1,
        "medium",
        "Check https://mta-sts.<domain>/.well-known/mta-sts.txt: it must be served over HTTPS "
        "with a valid certificate, answer 200 with text/plain, and be a valid STSv1 policy "
        "(RFC 8461). Until it is, senders deliver without MTA-STS protection.",
    ),
    _tlsrpt_rule(
        "tlsrpt-certificate-failure",
        "Senders report certificate failures at the domain's MX hosts",
        ("certificate-expired", "certificate-host-mismatch", "certificate-not-trusted"),
        0.0,
        1,
        "high",
        "Renew or replace the certificate on the receiving MX named in the report: it must be "
        "unexpired, chain to a public CA and name the MX host. Senders enforcing MTA-STS or "
        "DANE do not deliver to that MX until it does.",
    ),
)
BUILT_IN = BUILT_IN + TLSRPT_RULES
# Transport security (docs/transit-security.md): ``metric`` names transport security classes.
BUILT_IN += (
    Rule(
        id="connector-unauthenticated",
        title="Connector carrying significant mail without authentication",
        directions=("inbound", "outbound"), connector_types=("partner", "onpremises"),
        metric=("encrypted", "none"), window_days=7, min_percent=10.0, min_messages=10,
        severity="medium", kind="classes",
        recommendation="The peer of this connector was not authenticated (its certificate "
        "was not verified, or there was no TLS): an active attacker could read or change the "
        "mail. Publish DANE (TLSA) or MTA-STS for the partner's domain, or define the "
        "connector with a verify or secure TLS policy and the partner's certificate.",
        # Off until enabled: mail sent without tls_auth/tls_policy counts as encrypted
        # only, so on such data the rule would fire for every connector.
        enabled=False,
    ),
    Rule(
        id="connector-tls-downgrade",
        title="Connector authenticated until now is seeing encrypted-only or plaintext mail",
        directions=("inbound", "outbound"), connector_types=("partner", "onpremises"),
        metric=("encrypted", "none"), window_days=16, min_percent=95.0, min_messages=50,
        severity="high", kind="downgrade",
        recommendation="This connector's mail was authenticated (DANE, MTA-STS or a verified "
        "certificate) and now some is only encrypted or not encrypted at all: the signature "
        "of STARTTLS stripping or of a broken policy (expired TLSA records, an MTA-STS policy "
        "that no longer matches). Check the remote end's certificate, TLSA and MTA-STS "
        "records and the connector's TLS policy; treat the affected mail as exposed.",
    ),
    Rule(
        id="connector-tls-blocked",
        title="Mail blocked for a TLS policy",
        directions=("inbound", "outbound"), connector_types=("partner", "onpremises", "internet"),
        metric=("blocked",), window_days=2, min_percent=0.0, min_messages=1, severity="medium",
        kind="blocked",
        recommendation="Messages were not delivered because the TLS policy could not be met "
        "(TLS not offered, certificate not verified, TLSA lookup failure). See the Transit "
        "security report for the recipient domains and errors; fix the remote end or the "
        "policy, or the mail stays undelivered.",
    ),
)  # fmt: skip
# Rules whose subject is a remote domain or an SMTP AUTH user (docs/domains.md): evaluated
# over the 7-day per-domain / per-user report, never over connectors (no connector types).
WHO_RULES: tuple[Rule, ...] = (
    Rule(
        id="domain-unencrypted",
        title="Remote domain exchanging significant mail without TLS",
        directions=("inbound", "outbound"), connector_types=(), metric=("none",),
        window_days=7, min_percent=10.0, min_messages=100, min_messages_of_all=True,
        severity="medium", subject="domain",
        recommendation="Ask the domain's administrator to offer STARTTLS (inbound) or check "
        "why delivery to it falls back to plaintext (outbound: no STARTTLS offered, a "
        "certificate or TLS policy problem); consider an MTA-STS or DANE policy for it.",
    ),
    Rule(
        id="domain-legacy-tls",
        title="Remote domain using TLS 1.0 or 1.1 on significant mail",
        directions=("inbound", "outbound"), connector_types=(), metric=("TLS1.0", "TLS1.1"),
        window_days=7, min_percent=5.0, min_messages=10, severity="medium", subject="domain",
        recommendation="Ask the domain's administrator to enable TLS 1.2 or later; TLS 1.0 "
        "and 1.1 are deprecated (RFC 8996) and receivers are switching them off.",
    ),
    Rule(
        id="auth-client-legacy-tls",
        title="SMTP AUTH client submitting with TLS 1.0 or 1.1",
        directions=("inbound", "outbound"), connector_types=(), metric=("TLS1.0", "TLS1.1"),
        window_days=7, min_percent=0.0, min_messages=1, severity="medium", subject="auth_user",
        recommendation="Find the device or application that signs in as this user (its "
        "client IPs are in the SMTP AUTH clients report) and update or reconfigure it for "
        "TLS 1.2 or later before TLS 1.0/1.1 is switched off on the submission service.",
    ),
)  # fmt: skip
BUILT_IN = BUILT_IN + WHO_RULES
RULES = {rule.id: rule for rule in BUILT_IN}


def effective_rules(overrides: Mapping[str, Mapping[str, Any]]) -> list[Rule]:
    """The built-in rules with a tenant's settings (``enabled``, thresholds) applied."""
    rules = []
    for rule in BUILT_IN:
        settings = overrides.get(rule.id, {})
        known = {k: v for k, v in settings.items() if k in ("enabled", "min_percent",
                                                            "min_messages")}  # fmt: skip
        rules.append(replace(rule, **known))
    return rules
