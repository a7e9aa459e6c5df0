"""``mailflow tlsrpt-tokens``: the TLS-RPT intake URLs of a tenant, for operators without an
admin key at hand (the API's POST/GET/DELETE /api/v1/tlsrpt/tokens do the same)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from service.cli.keys import MAX_KEY_NAME, _settings, open_store
from service.core.api_keys import validate_tenant
from service.core.text import TextError, checked_name
from service.core.tlsrpt import INTAKE_PATH
from service.store import tlsrpt_tokens

_TENANT = click.option("--tenant", required=True, help="The tenant the reports count for.")


def _tenant(tenant: str) -> str:
    try:
        return validate_tenant(tenant)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--tenant") from None


@click.group("tlsrpt-tokens")
def tlsrpt_tokens_group() -> None:
    """Make, list and revoke TLS-RPT intake URLs (the rua= of a domain's _smtp._tls record)."""


@tlsrpt_tokens_group.command("create")
@_TENANT
@click.option("--name", default="", help="A label for `tlsrpt-tokens list`.")
@click.option("--url", "base_url", default="https://mailflow.example.net", show_default=True,
              help="The service's public base URL, for the intake URL and DNS record printed.")  # fmt: skip
def create(tenant: str, name: str, base_url: str) -> None:
    """Make an intake URL and print it with its DNS record: the only time the token is shown."""
    tenant = _tenant(tenant)
    try:
        name = checked_name(name, MAX_KEY_NAME) if name else ""
    except TextError as error:
        raise click.BadParameter(str(error), param_hint="--name") from None
    with open_store(_settings()) as client:
        try:
            _, token = tlsrpt_tokens.create(client, tenant, name, datetime.now(UTC))
        except tlsrpt_tokens.TooManyTokens as error:
            raise click.ClickException(str(error)) from None
    url = base_url.rstrip("/") + INTAKE_PATH + token
    click.echo(url)
    click.echo(f'_smtp._tls IN TXT "v=TLSRPTv1; rua={url}"', err=True)


@tlsrpt_tokens_group.command("list")
@_TENANT
def list_tokens(tenant: str) -> None:
    """The tenant's intake tokens, one JSON document each (never the secret)."""
    with open_store(_settings()) as client:
        records = tlsrpt_tokens.list_tokens(client, _tenant(tenant))
    for record in records:
        click.echo(json.dumps({"id": record.key_id, "name": record.name,
                               "created_at": record.created_at,
                               "revoked_at": record.revoked_at}))  # fmt: skip


@tlsrpt_tokens_group.command("revoke")
@_TENANT
@click.argument("token_id")
def revoke(tenant: str, token_id: str) -> None:
    """Revoke one of the tenant's intake tokens by its id; its URL stops working at once."""
    with open_store(_settings()) as client:
        found = tlsrpt_tokens.revoke(client, _tenant(tenant), token_id, datetime.now(UTC))
    if not found:
        raise click.ClickException(f"tenant {tenant} has no intake token {token_id}")
    click.echo(f"revoked {token_id}", err=True)
