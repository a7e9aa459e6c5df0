"""marshmallow schemas of the TLS-RPT endpoints (intake, tokens, reports): their documented
contract. The report contract itself is service.core.tlsrpt's."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from service.web.api.schemas import StrictSchema, Text


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
