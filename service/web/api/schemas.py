"""marshmallow schemas: the documented contract of every request and response.

``TraceSchema`` declares the trace contract of ``service.core.traces`` for the spec; the
contract itself, rules and normalisation, is that module's alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
)  # fmt: skip

from service.config import Settings
from service.core import paging
from service.core import traces as contract
from service.core import transport_security as security
from service.core.blocked import MAX_BLOCKED_RECORDS
from service.core.insight_rules import MAX_MIN_MESSAGES
from service.core.text import TEXT_PATTERN, TRIMMED_TEXT_PATTERN, TextError, checked_text
from service.core.tls import TLS_VERSIONS
from service.reports import insight_feed


class StrictSchema(Schema):
    """Unknown fields are errors, everywhere: a typo must not silently change a query."""

    class Meta:
        unknown = RAISE


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String(metadata={"example": "/problems/validation-failed"})
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.List(
        fields.Dict(), metadata={"description": "[{index, field, message}] for each fault"}
    )


class Text(fields.String):
    """A string by the text rule (service.core.text): kept in NFC; controls, format characters
    and line or paragraph separators refused, and with ``trimmed`` whitespace at either end.
    Length validators see the NFC form."""

    def __init__(self, *args: Any, trimmed: bool = False, **kwargs: Any) -> None:
        pattern = TRIMMED_TEXT_PATTERN if trimmed else TEXT_PATTERN
        kwargs["metadata"] = {"pattern": pattern, **kwargs.get("metadata", {})}
        super().__init__(*args, **kwargs)
        self.trimmed = trimmed

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return checked_text(text, self.trimmed)
        except TextError as error:
            raise ValidationError(str(error)) from None


class JsonBoolean(fields.Boolean):
    """``true`` or ``false``, nothing else (marshmallow's Boolean takes 0, 1, "yes" ...)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _optional_text_field(limit: int, trimmed: bool = False, **kwargs: Any) -> Text:
    # Optional fields: null means absent, as on the fast path.
    kwargs.setdefault("allow_none", True)
    return Text(validate=validate.Length(1, limit), trimmed=trimmed, **kwargs)


def _domain_field() -> Text:
    # The pattern is for the spec: the contract lower-cases, then checks (normalize_trace).
    return _optional_text_field(
        contract.MAX_DOMAIN + 1, metadata={"pattern": contract.DOMAIN_PATTERN}
    )


# Loaded without a window, the schema leaves the time out: any date a datetime holds, a day
# inside its range at each end so that no offset can take a time past it.
_ALL_TIME = contract.IngestWindow(datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC))


def _any_case(words: Iterable[str]) -> str:
    """A pattern of these words in any case, with whitespace around (as the contract reads
    them): letters as [xX] classes, since JSON Schema patterns have no flags."""
    spelled = ("".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)
               for word in words)  # fmt: skip
    return rf"^\s*(?:{'|'.join(spelled)})\s*$"


TLS_POLICY_PATTERN = _any_case(security.POLICY_SPELLINGS)


class TraceSchema(StrictSchema):
    """One message's passage through a connector, as mailflow ingests it.

    The fields declare the trace contract (``service.core.traces``) for the spec, from its
    names and limits; its rules across fields, the retention window and the normalisation are
    ``normalize_trace``'s alone. Ingestion never loads this schema (it runs the contract
    directly, hundreds of times faster); a property test loads it to hold these declarations
    to the contract.
    """

    id = _optional_text_field(contract.MAX_ID, trimmed=True,
               metadata={"description": "Idempotency key; derived when absent"})  # fmt: skip
    timestamp = fields.String(
        required=True,
        metadata={"example": "2026-11-27T10:00:00Z", "format": "date-time",
                  "description": "RFC 3339 with an offset; within the retention period and at "
                  f"most {contract.FUTURE_MINUTES} minutes ahead"},
    )  # fmt: skip
    direction = fields.String(required=True, validate=validate.OneOf(contract.DIRECTIONS))
    connector = _optional_text_field(contract.MAX_CONNECTOR, trimmed=True)
    connector_type = fields.String(
        allow_none=True, validate=validate.OneOf(contract.CONNECTOR_TYPES)
    )
    tls_version = fields.String(
        required=True, allow_none=True,
        metadata={"description": "TLS1.0..TLS1.3, SSL3, none (null); TLSv1.2, 'TLS 1.2', "
                  "tls1_2 are accepted", "example": "TLS1.2"},
    )  # fmt: skip
    cipher = _optional_text_field(contract.MAX_CIPHER, trimmed=True)
    message_id = _optional_text_field(contract.MAX_STRING)
    sender_domain = _domain_field()
    recipient_domain = _domain_field()
    remote_host = _domain_field()
    remote_ip = fields.String(
        allow_none=True, metadata={"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
    )
    size_bytes = fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=0))
    # Transport security (docs/transit-security.md); the rules across fields are the contract's.
    tls_auth = fields.String(
        allow_none=True, validate=validate.OneOf(security.TLS_AUTHS),
        metadata={"description": "How the peer was authenticated; only with TLS"},
    )  # fmt: skip
    tls_policy = fields.String(
        allow_none=True, validate=validate.Length(1, security.MAX_POLICY_SPELLING),
        metadata={"pattern": TLS_POLICY_PATTERN, "description": f"The TLS policy that applied: {', '.join(security.TLS_POLICIES)}"
                  " (any case; dane-only, fingerprint, sts are accepted)", "example": "dane"},
    )  # fmt: skip
    tls_downgraded = JsonBoolean(
        allow_none=True, metadata={"description": "The log recorded a TLS downgrade"}
    )
    outcome = fields.String(
        allow_none=True, validate=validate.OneOf(security.OUTCOMES),
        metadata={"description": "delivered (default) or blocked by a TLS policy; a blocked "
                  "message has tls_version null and a blocked_reason"},
    )  # fmt: skip
    blocked_reason = _optional_text_field(
        contract.MAX_STRING, metadata={"description": "Why it was blocked; only when blocked"}
    )
    auth_user = _optional_text_field(
        contract.MAX_AUTH_USER,
        metadata={"description": "The SMTP AUTH identity that submitted the message (SASL "
                  "user name); stored as MAILFLOW_AUTH_USER_MODE says", "example": "scanner@example.com"},
    )  # fmt: skip

    def __init__(self, *args: Any, window: contract.IngestWindow | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.window = window

    @pre_load
    def reject_non_objects(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, dict):
            raise ValidationError("a trace must be a JSON object", "_schema")
        return data

    @post_load
    def normalise(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """The trace as the contract normalises it, and its UTC day (``_day``)."""
        try:
            accepted = contract.normalize_trace(data, self.window or _ALL_TIME)
        except contract.TraceError as error:
            raise ValidationError(error.message, error.field or "_schema") from None
        return {**accepted.record, "_day": accepted.day}


# The connector rule of a trace, for the spec (normalize_trace enforces it): a
# connector comes with its type, and a type only with a connector. (A trace naming a connector
# that has a definition may leave the type out; the spec states the general rule.)
TRACE_CONNECTOR_RULE: dict[str, Any] = {
    "anyOf": [
        {"required": ["connector", "connector_type"],
         "properties": {"connector": {"type": "string"}, "connector_type": {"type": "string"}}},
        {"properties": {"connector": {"type": "null"}, "connector_type": {"type": "null"}}},
    ],
}  # fmt: skip


_TLS_SPELLING = {"type": "string", "pattern": r"^\s*(?:[tT][lL][sS]|[sS][sS][lL])"}
_NONE_POLICY = {"type": "string", "pattern": _any_case(["none"])}
# The transport security rules of a trace, for the spec (normalize_trace enforces them):
# blocked_reason with outcome blocked only, and then no TLS session; tls_auth only with a TLS
# version; the policy none only without one.
TRACE_CONNECTOR_RULE["allOf"] = [
    {"anyOf": [
        {"required": ["outcome", "blocked_reason"],
         "properties": {"outcome": {"const": "blocked"}, "blocked_reason": {"type": "string"},
                        "tls_version": {"type": "null"}, "tls_auth": {"type": "null"},
                        "tls_downgraded": {"enum": [False, None]}}},
        {"properties": {"outcome": {"enum": ["delivered", None]},
                        "blocked_reason": {"type": "null"}}},
    ]},
    {"anyOf": [{"properties": {"tls_auth": {"type": "null"}}},
               {"required": ["tls_version"], "properties": {"tls_version": _TLS_SPELLING}}]},
    {"anyOf": [{"properties": {"tls_policy": {"not": _NONE_POLICY}}},
               {"properties": {"tls_version": {"not": _TLS_SPELLING}}}]},
]  # fmt: skip


class IngestErrorSchema(Schema):
    index = fields.Integer(metadata={"description": "Array index, or line number for NDJSON"})
    field = fields.String()
    message = fields.String()


class IngestResultSchema(Schema):
    accepted = fields.Integer(metadata={"description": "New traces, now durable in Redis"})
    duplicates = fields.Integer(metadata={"description": "Traces whose id was already accepted"})
    rejected = fields.Integer()
    errors = fields.List(fields.Nested(IngestErrorSchema))


class WindowArgsSchema(StrictSchema):
    # Rules OpenAPI cannot state, enforced with a 422 naming the parameter: `days` or
    # `start` and `end`, never both; start <= end <= today (the tenant's); start within the
    # retention period. The bounds it can state are in the spec.
    days = fields.Integer(
        strict=False,
        metadata={"description": "Whole days ending today (default 7; the tenant's days: UTC "
                  "unless it set a time zone); not with start/end",
                  "minimum": 1, "maximum": Settings.retention_days, "example": 30},
    )  # fmt: skip
    start = fields.Date(
        metadata={
            "description": "First day, inclusive (the tenant's day); with end, not "
            "with days; within the retention period (default 90 days)"
        }
    )
    end = fields.Date(
        metadata={
            "description": "Last day, inclusive (the tenant's day); with start, not with days; "
            "not after today"
        }
    )


class ShareSchema(Schema):
    messages = fields.Integer()
    percent = fields.Float()


def _class_shares_field() -> fields.Dict:
    return fields.Dict(
        keys=fields.String(validate=validate.OneOf(security.SECURITY_CLASSES)),
        values=fields.Nested(ShareSchema),
        metadata={"description": "Delivered messages per transport security class "
                  "(docs/transit-security.md): percents sum to 100.0 (0.0 each without "
                  "messages)"},
    )  # fmt: skip


class SecuritySummarySchema(Schema):
    authenticated_messages = fields.Integer(
        metadata={"description": "dane + mta-sts + authenticated"}
    )
    authenticated_percent = fields.Float()
    classes = _class_shares_field()


class DirectionSummarySchema(Schema):
    messages = fields.Integer()
    encrypted_messages = fields.Integer()
    encrypted_percent = fields.Float()
    tls = fields.Dict(
        keys=fields.String(validate=validate.OneOf(TLS_VERSIONS)),
        values=fields.Nested(ShareSchema),
    )
    security = fields.Nested(SecuritySummarySchema)


class WindowSchema(Schema):
    start = fields.Date()
    end = fields.Date()
    days = fields.Integer()


class SnapshotSchema(Schema):
    window = fields.Nested(WindowSchema)
    directions = fields.Dict(keys=fields.String(), values=fields.Nested(DirectionSummarySchema))
    active_insights = fields.Integer()
    generated_at = fields.String()
    data_as_of = fields.String(allow_none=True)


class HealthSchema(Schema):
    status = fields.String()
    checks = fields.Dict()


# -- reports: the TLS flyout and the connector report ----------------------------------------

_DIRECTION = validate.OneOf(contract.DIRECTIONS)


class TlsArgsSchema(WindowArgsSchema):
    direction = fields.String(validate=_DIRECTION, metadata={"description": "Only this one"})


class TlsDaySchema(Schema):
    date = fields.Date()
    directions = fields.Dict(keys=fields.String(), values=fields.Dict())


class TlsReportSchema(Schema):
    window = fields.Nested(WindowSchema)
    directions = fields.Dict(keys=fields.String(), values=fields.Nested(DirectionSummarySchema))
    series = fields.List(fields.Nested(TlsDaySchema))
    generated_at = fields.String()
    data_as_of = fields.String(allow_none=True)


class TransitDaySchema(SecuritySummarySchema):
    date = fields.Date()
    messages = fields.Integer()


class TransitBlockedSchema(Schema):
    recipient_domain = fields.String(allow_none=True)
    policy = fields.String(allow_none=True, metadata={"description": "null: not logged"})
    messages = fields.Integer()
    errors = fields.List(fields.String(), metadata={"description": "Distinct errors, at most 20"})
    errors_total = fields.Integer()


class TransitDomainSchema(Schema):
    recipient_domain = fields.String(
        allow_none=True,
        metadata={"description": "null: mail naming no domain; `(other domains)`: the "
                  "domains past the per-domain limit (docs/domains.md)"},
    )  # fmt: skip
    row = fields.String(metadata={"enum": ["domain", "other", "unknown"]})
    delivered_without_tls = fields.Integer(
        allow_none=True,
        metadata={"description": "Outbound messages delivered without TLS (`tls_version` "
                  "none) over the days `no_tls_offered_coverage` names; null for inbound"},
    )  # fmt: skip
    blocked_not_offered = fields.Integer(
        metadata={"description": "Messages blocked by a TLS policy whose error says the "
                  "server did not offer TLS, over the whole window"},
    )  # fmt: skip


class TransitCoverageSchema(Schema):
    start = fields.Date(allow_none=True, metadata={"description": "null: no day covered"})
    end = fields.Date(allow_none=True)
    days = fields.Integer()
    complete = fields.Boolean(
        metadata={"description": "false: the window reaches before the per-domain counters' "
                  "retention (MAILFLOW_DOMAIN_RETENTION_DAYS); `delivered_without_tls` "
                  "covers only these days"},
    )  # fmt: skip
    domain_retention_days = fields.Integer()


class TransitDirectionSchema(Schema):
    sent = fields.List(fields.Nested(TransitDaySchema))
    blocked = fields.List(fields.Nested(TransitBlockedSchema))
    no_tls_offered = fields.List(fields.Nested(TransitDomainSchema))


class BlockedArgsSchema(TlsArgsSchema):
    limit = fields.Integer(load_default=1000, validate=validate.Range(1, MAX_BLOCKED_RECORDS))


class BlockedRecordSchema(Schema):
    date = fields.Date()
    direction = fields.String()
    connector = fields.String(allow_none=True, metadata={"description": "null: no connector"})
    connector_type = fields.String(allow_none=True)
    policy = fields.String(allow_none=True, metadata={"description": "null: not logged"})
    recipient_domain = fields.String(allow_none=True)
    reason = fields.String(metadata={"description": "(other): past the day's bound"})
    messages = fields.Integer()


class BlockedReportSchema(Schema):
    window = fields.Nested(WindowSchema)
    records = fields.List(fields.Nested(BlockedRecordSchema))
    total_records = fields.Integer()
    truncated = fields.Boolean()
    generated_at = fields.String()


class TransitReportSchema(Schema):
    window = fields.Nested(WindowSchema)
    directions = fields.Dict(keys=fields.String(), values=fields.Nested(TransitDirectionSchema))
    no_tls_offered_coverage = fields.Nested(TransitCoverageSchema)
    generated_at = fields.String()
    data_as_of = fields.String(allow_none=True)


# A connector name in a path, for the spec: the rule PUT /connectors/{direction}/{name} checks
# (service/api/connectors.py), so a generated name is one the server accepts.
CONNECTOR_NAME_PATTERN = TRIMMED_TEXT_PATTERN


def _cursor_field(description: str) -> fields.String:
    """A cursor parameter. The spec states the shape of an issued cursor; the server checks
    the cursor itself (``core.paging.decode_cursor``), so every cursor it did not issue, of
    that shape or not, gets the same answer: 400 naming `cursor`."""
    return fields.String(
        metadata={"description": f"{description}. Opaque and signed: pass it back unchanged, "
                  "with the same other parameters and an API key of the same tenant; any "
                  "other value is a 400 naming `cursor`",
                  "pattern": paging.CURSOR_PATTERN, "minLength": 1,
                  "maxLength": paging.MAX_CURSOR_LENGTH},
    )  # fmt: skip


def _security_filter_pattern() -> str:
    from service.core.connectors import SECURITY_FILTERS

    one = "|".join(SECURITY_FILTERS)
    return f"^(?:{one})(?:,(?:{one}))*$"


SECURITY_FILTER_PATTERN = _security_filter_pattern()
MAX_SECURITY_FILTER = 200  # repeats are allowed (and ignored), within this length


class SecurityFilterField(fields.String):
    """A comma-separated list of transport security filters, loaded as its canonical form
    (distinct, sorted, comma-joined), so that one filter has one cursor digest."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        from service.core.connectors import SECURITY_FILTERS

        text = super()._deserialize(value, attr, data, **kwargs)
        if not 0 < len(text) <= MAX_SECURITY_FILTER:
            raise ValidationError(f"1 to {MAX_SECURITY_FILTER} characters")
        chosen = set(text.split(","))
        unknown = sorted(chosen - set(SECURITY_FILTERS))
        if unknown:
            raise ValidationError(f"comma-separated, of {', '.join(SECURITY_FILTERS)}; "
                                  f"not {unknown[0][:40]!r}")  # fmt: skip
        return ",".join(sorted(chosen))


def _connector_args() -> dict[str, fields.Field]:
    from service.core import connectors

    return {
        "group_by": fields.String(
            load_default="connector", validate=validate.OneOf(connectors.GROUPINGS),
            metadata={"description": "`connector` (one row each) or `day` (one per day)"},
        ),
        "direction": fields.String(validate=_DIRECTION),
        "type": fields.String(
            validate=validate.OneOf(connectors.TYPE_FILTERS),
            metadata={"description": "`internet`: mail without a connector"},
        ),
        "name": fields.String(
            validate=validate.Length(1, contract.MAX_CONNECTOR),
            metadata={"description": "Connector name prefix, case-insensitive"},
        ),
        "forced_tls": fields.Boolean(),
        "sort": fields.String(
            validate=validate.OneOf(
                [c for col in connectors.SORT_COLUMNS for c in (col, "-" + col)]
            ),
            metadata={"description": "A column, `-column` for descending (e.g. `-messages`); "
                      "TLS columns sort by percent. Default `direction` (`date` by day)"},
        ),
        "security": SecurityFilterField(
            metadata={"minLength": 1, "maxLength": MAX_SECURITY_FILTER, "pattern": SECURITY_FILTER_PATTERN, "description": "Comma-separated transport security classes "
                      f"({', '.join(connectors.SECURITY_FILTERS)}): only rows with mail of any "
                      "of them (docs/transit-security.md)", "example": "encrypted,none"},
        ),
        "limit": fields.Integer(load_default=100, validate=validate.Range(1, paging.MAX_LIMIT)),
        "cursor": _cursor_field("`next_cursor` of the previous page"),
        "format": fields.String(
            validate=validate.OneOf(("json", "csv")),
            metadata={"description": "`csv` (or `Accept: text/csv`): every row, streamed"},
        ),
    }  # fmt: skip


ConnectorReportArgsSchema = WindowArgsSchema.from_dict(
    {**WindowArgsSchema().fields, **_connector_args()}, name="ConnectorReportArgs"
)


class ConnectorRowSchema(Schema):
    date = fields.Date(metadata={"description": "Only with group_by=day"})
    direction = fields.String()
    name = fields.String(allow_none=True, metadata={"description": "null: no connector"})
    type = fields.String(allow_none=True)
    forced_tls = fields.Boolean()
    defined = fields.Boolean(metadata={"description": "Has a connector definition"})
    messages = fields.Integer()
    tls = fields.Dict(
        keys=fields.String(), values=fields.Nested(ShareSchema),
        metadata={"description": "none, TLS1.0 .. TLS1.3 (SSL3 when seen): percents sum to "
                  "100.0 (0.0 each without messages)"},
    )  # fmt: skip
    authenticated_percent = fields.Float(metadata={"description": "dane + mta-sts + other "
                                                   "verified, of the delivered messages"})  # fmt: skip
    dane_percent = fields.Float()
    mta_sts_percent = fields.Float()
    encrypted_only_percent = fields.Float(metadata={"description": "TLS, peer not authenticated"})
    blocked = fields.Integer(metadata={"description": "Messages blocked by a TLS policy (not "
                                       "in messages)"})  # fmt: skip
    security = _class_shares_field()


class ConnectorReportSchema(Schema):
    window = fields.Nested(WindowSchema)
    group_by = fields.String()
    sort = fields.String()
    data_as_of = fields.String(allow_none=True)
    total_rows = fields.Integer()
    rows = fields.List(fields.Nested(ConnectorRowSchema))
    next_cursor = fields.String(allow_none=True)


class ConnectorDaySchema(Schema):
    date = fields.Date()
    messages = fields.Integer()
    tls = fields.Dict(keys=fields.String(), values=fields.Nested(ShareSchema))


class ConnectorDetailSchema(Schema):
    window = fields.Nested(WindowSchema)
    direction = fields.String()
    name = fields.String(allow_none=True)
    type = fields.String(allow_none=True)
    forced_tls = fields.Boolean()
    description = fields.String(allow_none=True)
    defined = fields.Boolean()
    messages = fields.Integer()
    tls = fields.Dict(keys=fields.String(), values=fields.Nested(ShareSchema))
    series = fields.List(fields.Nested(ConnectorDaySchema))
    data_as_of = fields.String(allow_none=True)
    # Transport security over the window, as in the connector report's rows.
    authenticated_percent = fields.Float()
    dane_percent = fields.Float()
    mta_sts_percent = fields.Float()
    encrypted_only_percent = fields.Float()
    blocked = fields.Integer()
    security = _class_shares_field()


class ConnectorDefinitionSchema(StrictSchema):
    type = fields.String(required=True, validate=validate.OneOf(contract.CONNECTOR_TYPES))
    forced_tls = JsonBoolean(load_default=False)
    description = Text(load_default=None, allow_none=True, validate=validate.Length(0, 1024))


class ConnectorDefinitionOutSchema(Schema):
    direction = fields.String()
    name = fields.String()
    type = fields.String()
    forced_tls = fields.Boolean()
    description = fields.String(allow_none=True)


# -- insights ----------------------------------------------------------------------------------


class InsightArgsSchema(StrictSchema):
    state = fields.String(load_default=insight_feed.DEFAULT_STATE,
                          validate=validate.OneOf(("active", "resolved", "all")),
                          metadata={"example": "all"})  # fmt: skip
    updated_after = fields.AwareDateTime(
        metadata={"description": "RFC 3339: only insights whose latest transition is later"}
    )
    cursor = _cursor_field("`next_cursor` of the previous response: continue after it")
    limit = fields.Integer(
        load_default=insight_feed.DEFAULT_LIMIT, validate=validate.Range(1, paging.MAX_LIMIT)
    )


class InsightConnectorSchema(Schema):
    name = fields.String()
    type = fields.String(allow_none=True)


class InsightSubjectSchema(Schema):
    kind = fields.String(metadata={"description": "connector | domain | auth_user"})
    name = fields.String()


class InsightSchema(Schema):
    id = fields.String()
    rule = fields.String()
    title = fields.String()
    severity = fields.String()
    state = fields.String(metadata={"description": "active | resolved"})
    direction = fields.String()
    connector = fields.Nested(InsightConnectorSchema, allow_none=True)
    window = fields.Dict()
    measured = fields.Dict(metadata={"description": "messages, matching_messages, percent"})
    threshold = fields.Dict(metadata={"description": "min_percent, min_messages"})
    first_detected_at = fields.String()
    last_detected_at = fields.String()
    resolved_at = fields.String(allow_none=True)
    updated_at = fields.String(metadata={"description": "Time of the latest transition"})
    sequence = fields.Integer(metadata={"description": "Change sequence of that transition"})
    recommendation = fields.String()
    links = fields.Dict()
    tlsrpt = fields.Dict(metadata={"description": "TLS-RPT insights only: `policy_domain` "
                                   "and `result_type` (docs/tls-rpt.md)"})  # fmt: skip
    subject = fields.Nested(
        InsightSubjectSchema,
        metadata={"description": "What the insight is about: a connector (then `connector` "
                  "too), a remote domain or an SMTP AUTH user (then `connector` is null)"},
    )  # fmt: skip


class InsightPageSchema(Schema):
    items = fields.List(fields.Nested(InsightSchema))
    next_cursor = fields.String(metadata={"description": "Always present: poll with it"})
    has_more = fields.Boolean()


class InsightRuleSchema(Schema):
    id = fields.String()
    title = fields.String()
    severity = fields.String()
    directions = fields.List(fields.String())
    connector_types = fields.List(fields.String())
    metric = fields.List(fields.String(), metadata={"description": "TLS versions that match"})
    window_days = fields.Integer()
    forced_tls_only = fields.Boolean()
    recommendation = fields.String()
    enabled = fields.Boolean()
    min_percent = fields.Float()
    min_messages = fields.Integer()
    defaults = fields.Dict()


class InsightRuleListSchema(Schema):
    rules = fields.List(fields.Nested(InsightRuleSchema))


class _JsonNumber(fields.Float):
    """A JSON number, nothing else: not a string of digits, not a boolean."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class _JsonInteger(fields.Integer):
    """A JSON integer as JSON Schema means it: ``100`` and ``100.0``, not ``100.5``, ``"100"``
    or ``true``."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_MIN_MESSAGES:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class InsightRuleSettingsSchema(StrictSchema):
    enabled = JsonBoolean()
    min_percent = _JsonNumber(validate=validate.Range(0, 100), allow_nan=False)
    min_messages = _JsonInteger(validate=validate.Range(1, MAX_MIN_MESSAGES))


# -- per remote domain and SMTP AUTH clients (docs/domains.md) -------------------------------


def _who_args(name_description: str) -> dict[str, fields.Field]:
    from service.core import who_report

    percent = validate.Range(0, 100)
    return {
        "days": fields.Integer(
            strict=False,
            metadata={"description": "Whole days ending today (default 7; the tenant's days); "
                      "not with "
                      "start/end; at most MAILFLOW_DOMAIN_RETENTION_DAYS", "minimum": 1,
                      "maximum": Settings.domain_retention_days, "example": 30},
        ),
        "direction": fields.String(validate=_DIRECTION),
        "name": fields.String(validate=validate.Length(1, contract.MAX_AUTH_USER),
                              metadata={"description": name_description}),
        "min_none_percent": fields.Float(
            validate=percent, metadata={"description": "Only rows with at least this share "
                                        "of mail without TLS (percent)"}),
        "min_tls10_percent": fields.Float(
            validate=percent, metadata={"description": "Only rows with at least this share "
                                        "of TLS 1.0 (percent)"}),
        "min_unauthenticated_percent": fields.Float(
            validate=percent, metadata={"description": "Only rows with at least this share "
                                        "of unauthenticated mail: the transport security "
                                        "classes `encrypted` (TLS, peer not authenticated) "
                                        "and `none` (no TLS), in percent "
                                        "(docs/domains.md)"}),
        "sort": fields.String(
            validate=validate.OneOf(
                [c for col in who_report.SORT_COLUMNS for c in (col, "-" + col)]
            ),
            metadata={"description": "A column, `-column` for descending; TLS columns sort "
                      f"by percent. Default `{who_report.DEFAULT_SORT}`"},
        ),
        # Pages and export as the connector report's.
        **{k: v for k, v in _connector_args().items() if k in ("limit", "cursor", "format")},
    }  # fmt: skip


DomainReportArgsSchema = WindowArgsSchema.from_dict(
    {**WindowArgsSchema().fields, **_who_args("Domain prefix, case-insensitive")},
    name="DomainReportArgs",
)
AuthClientReportArgsSchema = WindowArgsSchema.from_dict(
    {**WindowArgsSchema().fields, **_who_args("Sender address prefix, case-insensitive")},
    name="AuthClientReportArgs",
)


class ConnectorUseSchema(Schema):
    name = fields.String(allow_none=True, metadata={"description": "null: no connector"})
    messages = fields.Integer()


def _who_row_fields(extras: str, extras_description: str) -> dict[str, fields.Field]:
    return {
        "direction": fields.String(),
        "row": fields.String(metadata={"description": "`other`: the names past the daily "
                                       "limit; `unknown`: traces without a remote domain"}),
        "messages": fields.Integer(),
        "tls": fields.Dict(keys=fields.String(), values=fields.Nested(ShareSchema),
                           metadata={"description": "none, TLS1.0 .. TLS1.3 (SSL3 when seen): "
                                     "percents sum to 100.0"}),
        "connectors": fields.List(fields.Nested(ConnectorUseSchema)),
        extras: fields.List(fields.String(), metadata={"description": extras_description}),
        **_who_security_fields(),
    }  # fmt: skip


def _who_security_fields() -> dict[str, fields.Field]:
    """The transport security columns of a per-domain or per-user row (and day)."""
    return {
        "authenticated_percent": fields.Float(metadata={"description": "dane + mta-sts + "
                                                        "other verified"}),
        "dane_percent": fields.Float(),
        "mta_sts_percent": fields.Float(),
        "encrypted_only_percent": fields.Float(metadata={"description": "TLS, peer not "
                                                         "authenticated"}),
        "unauthenticated_percent": fields.Float(metadata={"description": "encrypted only + "
                                                          "no TLS"}),
        "security": _class_shares_field(),
    }  # fmt: skip


DomainRowSchema = Schema.from_dict(
    {"domain": fields.String(metadata={"description": "The remote domain, `(other domains)` "
                                       "or `(unknown)`"}),
     **_who_row_fields("remote_hosts", "Remote hosts seen, most messages first (at most 10)")},
    name="DomainRow",
)  # fmt: skip
AuthClientRowSchema = Schema.from_dict(
    {"sender_address": fields.String(metadata={"description": "The SMTP AUTH user (its "
                                               "pseudonym with MAILFLOW_AUTH_USER_MODE=hash)"}),
     "domain": fields.String(allow_none=True),
     **_who_row_fields("client_ips", "Client IPs seen, most messages first (at most 10)")},
    name="AuthClientRow",
)  # fmt: skip


def _who_page(row: type[Schema], name: str) -> type[Schema]:
    return Schema.from_dict({
        "window": fields.Nested(WindowSchema), "sort": fields.String(),
        "data_as_of": fields.String(allow_none=True), "total_rows": fields.Integer(),
        "rows": fields.List(fields.Nested(row)), "next_cursor": fields.String(allow_none=True),
    }, name=name)  # fmt: skip


DomainReportSchema = _who_page(DomainRowSchema, "DomainReport")
AuthClientReportSchema = _who_page(AuthClientRowSchema, "AuthClientReport")


WhoDaySchema = Schema.from_dict({
    "date": fields.Date(), "messages": fields.Integer(),
    "tls": fields.Dict(keys=fields.String(), values=fields.Nested(ShareSchema)),
    **_who_security_fields(),
}, name="WhoDay")  # fmt: skip


_UNSUMMED = ("connectors", "remote_hosts", "client_ips")  # not in a series (docs/domains.md)


def _who_series(row: type[Schema], name: str) -> type[Schema]:
    return Schema.from_dict({
        **{k: v for k, v in row().fields.items() if k not in _UNSUMMED},
        "window": fields.Nested(WindowSchema), "series": fields.List(fields.Nested(WhoDaySchema)),
        "data_as_of": fields.String(allow_none=True),
    }, name=name)  # fmt: skip


DomainSeriesSchema = _who_series(DomainRowSchema, "DomainSeries")
AuthClientSeriesSchema = _who_series(AuthClientRowSchema, "AuthClientSeries")
