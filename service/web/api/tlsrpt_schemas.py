"""marshmallow schemas of the TLS-RPT endpoints (intake, tokens, reports): their documented
contract. The report contract itself is service.core.tlsrpt's."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from service.core import paging
from service.core.tls import TLS_VERSIONS
from service.web.api.schemas import (
    DirectionSummarySchema,
    SecuritySummarySchema,
    ShareSchema,
    StrictSchema,
    Text,
    WindowArgsSchema,
    _cursor_field,
)


class IntakeResultSchema(Schema):
    outcome = fields.String(metadata={"enum": ["counted", "duplicate"],
                                      "description": "`duplicate`: this organization's report "
                                      "with this report-id was counted before; nothing changed"})  # fmt: skip
    id = fields.String(metadata={"description": "the report's id here (download it with "
                                 "GET /api/v1/tls-reports/originals/{id})"})  # fmt: skip
    day = fields.String(metadata={"description": "the UTC day its sessions count on"})
    organization = fields.String()
    report_id = fields.String()
    domains = fields.List(fields.String())
    policies = fields.Integer()


class TokenRequestSchema(StrictSchema):
    name = Text(trimmed=True, load_default="", validate=validate.Length(max=128))


class TokenSchema(Schema):
    id = fields.String()
    name = fields.String()
    created_at = fields.String()
    revoked_at = fields.String(allow_none=True)


class NewTokenSchema(TokenSchema):
    token = fields.String(metadata={"description": "shown once; only its hash is stored"})
    url = fields.String(metadata={"description": "the intake URL for the rua= of the DNS record"})
    dns_record = fields.String()


class TokenListSchema(Schema):
    tokens = fields.List(fields.Nested(TokenSchema))


def _report_args() -> dict[str, fields.Field]:
    return {
        "limit": fields.Integer(load_default=100, validate=validate.Range(1, paging.MAX_LIMIT)),
        "cursor": _cursor_field("`next_cursor` of the previous page"),
        "format": fields.String(
            validate=validate.OneOf(("json", "csv")),
            metadata={"description": "`csv` (or `Accept: text/csv`): every row"},
        ),
    }


TlsReportArgsSchema = WindowArgsSchema.from_dict(
    {**WindowArgsSchema().fields, **_report_args()}, name="TlsRptReportArgs"
)


class _ResultTypeSchema(Schema):
    result_type = fields.String()
    failed_sessions = fields.Integer()
    percent = fields.Float()


class _ResultMxSchema(Schema):
    result_type = fields.String()
    receiving_mx_hostname = fields.String(allow_none=True)
    failed_sessions = fields.Integer()


class _ReporterSchema(Schema):
    organization = fields.String()
    successful_sessions = fields.Integer()
    failed_sessions = fields.Integer()


class _MxSchema(Schema):
    mx_host = fields.String(
        allow_none=True,
        metadata={
            "description": "the policy's mx-host patterns, comma-separated (null: none named)"
        },
    )
    successful_sessions = fields.Integer()
    failed_sessions = fields.Integer()


class TlsRptDomainSchema(Schema):
    policy_domain = fields.String()
    sessions = fields.Integer()
    successful_sessions = fields.Integer()
    failed_sessions = fields.Integer()
    success_percent = fields.Float()
    failure_percent = fields.Float()
    policy_types = fields.Dict(keys=fields.String(), values=fields.Integer())
    failures_by_result_type = fields.List(fields.Nested(_ResultTypeSchema))
    failures_by_receiving_mx = fields.List(fields.Nested(_ResultMxSchema))
    reporters = fields.List(fields.Nested(_ReporterSchema))
    mx_hosts = fields.List(fields.Nested(_MxSchema))


class _WindowOutSchema(Schema):
    start = fields.String()
    end = fields.String()
    days = fields.Integer()


class TlsRptReportSchema(Schema):
    window = fields.Nested(_WindowOutSchema)
    total_rows = fields.Integer()
    rows = fields.List(fields.Nested(TlsRptDomainSchema))
    next_cursor = fields.String(allow_none=True)


class _DaySchema(Schema):
    date = fields.String()
    successful_sessions = fields.Integer()
    failed_sessions = fields.Integer()
    success_percent = fields.Float()
    failures_by_result_type = fields.Dict(keys=fields.String(), values=fields.Integer())


class _DetailSchema(Schema):
    result_type = fields.String()
    receiving_mx_hostname = fields.String(allow_none=True)
    receiving_ip = fields.String(allow_none=True)
    sending_mta_ip = fields.String(allow_none=True)
    failure_reason_code = fields.String(allow_none=True)
    failed_sessions = fields.Integer()


class _StoredReportSchema(Schema):
    id = fields.String()
    day = fields.String()
    organization = fields.String()
    report_id = fields.String()
    download = fields.String()


class _OurLogsDaySchema(Schema):
    date = fields.Date()
    messages = fields.Integer()
    tls = fields.Dict(keys=fields.String(validate=validate.OneOf(TLS_VERSIONS)),
                      values=fields.Nested(ShareSchema))  # fmt: skip
    security = fields.Nested(SecuritySummarySchema)
    blocked_messages = fields.Integer(
        metadata={"description": "Inbound messages to the policy domain blocked by a TLS policy"}
    )


class OurLogsSchema(DirectionSummarySchema):
    scope = fields.String(
        validate=validate.OneOf(["tenant-inbound"]),
        metadata={"description": "tenant-inbound: every inbound message of the tenant (our "
                  "logs count inbound mail per sender domain, not per recipient domain)"},
    )  # fmt: skip
    blocked_messages = fields.Integer(
        metadata={"description": "Inbound messages to the policy domain blocked by a TLS policy"}
    )
    days = fields.List(fields.Nested(_OurLogsDaySchema))


class TlsRptDomainDetailSchema(TlsRptDomainSchema):
    window = fields.Nested(_WindowOutSchema)
    days = fields.List(fields.Nested(_DaySchema))
    failure_details = fields.List(fields.Nested(_DetailSchema))
    reports = fields.List(fields.Nested(_StoredReportSchema))
    our_logs = fields.Nested(
        OurLogsSchema,
        metadata={"description": "Our own logs beside the reports: the tenant's inbound mail "
                  "(docs/tls-rpt.md, 'Beside our own logs')"},
    )  # fmt: skip
