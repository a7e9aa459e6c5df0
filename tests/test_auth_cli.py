"""`mailflow keys` and `mailflow run --demo`: keys on the store `run` uses, printed commands."""

from __future__ import annotations

import json
import shlex
import stat
import subprocess
import threading

import pytest
import redis
from click.testing import CliRunner
from werkzeug.serving import make_server

from service.app import create_app
from service.cli.commands import _load_demo, cli, demo_commands
from service.config import Settings
from service.core.api_keys import parse_key
from service.store import api_keys
from service.store.embedded import EmbeddedRedis
from tests.conftest import TEST_SERVER


def invoke(env: dict[str, str], *args: str):
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result


def test_keys_create_prints_only_the_key_and_list_and_revoke_work(redis_server, redis_client):
    env = {"MAILFLOW_REDIS_URL": redis_server.url}
    created = invoke(env, "keys", "create", "--tenant", "acme", "--scope", "read",
                     "--scope", "ingest", "--name", "siem")  # fmt: skip
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert created.stdout == key + "\n" and parse_key(key) is not None
    key_id = parse_key(key)[0]
    record = api_keys.load(redis_client, key_id)
    assert (record.tenant, record.scopes, record.name) == ("acme", ("ingest", "read"), "siem")

    listed = invoke(env, "keys", "list", "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["id"], r["tenant"], r["revoked_at"]) for r in rows] == [(key_id, "acme", None)]
    assert parse_key(key)[1] not in listed.stdout and record.secret_hash not in listed.stdout

    assert invoke(env, "keys", "revoke", key_id).exit_code == 0
    assert api_keys.load(redis_client, key_id).revoked_at is not None
    assert invoke(env, "keys", "revoke", "0123456789abcdef").exit_code != 0


@pytest.mark.parametrize("tenant", ["{acme}", "Acme", "", "-x", "a" * 64, "a:b", "a b"])
def test_keys_create_refuses_a_bad_tenant_name(redis_server, redis_client, tenant):
    result = invoke({"MAILFLOW_REDIS_URL": redis_server.url}, "keys", "create", "--tenant",
                    tenant, "--scope", "read")  # fmt: skip
    assert result.exit_code == 2 and result.stdout == ""
    assert redis_client.scard("mf:apikeys") == 0


def test_keys_start_the_embedded_store_when_it_is_down_and_use_it_when_it_is_up(tmp_path):
    env = {"MAILFLOW_DATA_DIR": str(tmp_path), "MAILFLOW_REDIS_URL": ""}
    key = invoke(env, "keys", "create", "--tenant", "acme", "--scope", "read", "--init")
    key = key.stdout.strip()
    assert not (tmp_path / "redis.sock").exists()  # started for the command, stopped after
    server = EmbeddedRedis(
        tmp_path, server=TEST_SERVER
    ).start()  # as `mailflow run` would: same data dir
    try:
        client = redis.Redis.from_url(server.url)
        assert api_keys.load(client, parse_key(key)[0]).tenant == "acme"  # survived (AOF)
        second = invoke(env, "keys", "create", "--tenant", "beta", "--scope", "read")
        assert api_keys.load(client, parse_key(second.stdout.strip())[0]).tenant == "beta"
        assert client.ping()  # the running server was used, not stopped
        client.close()
    finally:
        server.stop()


def test_demo_keys_are_kept_private_reused_and_remade_when_revoked(redis_server, redis_client,
                                                                   tmp_path, clock):  # fmt: skip
    settings = Settings(redis_url=redis_server.url, data_dir=str(tmp_path))
    first = _load_demo(settings, clock.now)
    path = tmp_path / "demo-keys.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _load_demo(settings, clock.now) == first
    api_keys.revoke(redis_client, parse_key(first["read"])[0], "2026-11-27T12:00:00+00:00")
    third = _load_demo(settings, clock.now)
    assert third["read"] != first["read"] and third["ingest"] == first["ingest"]
    redis_client.delete(f"mf:{{key:{parse_key(third['ingest'])[0]}}}:record")
    assert _load_demo(settings, clock.now)["ingest"] != third["ingest"]


def test_the_printed_demo_curl_commands_work_as_printed(redis_server, redis_client, tmp_path,
                                                        clock, run_worker):  # fmt: skip
    keys = _load_demo(Settings(redis_url=redis_server.url, data_dir=str(tmp_path)), clock.now)
    run_worker()
    app = create_app({"redis_url": redis_server.url, "CLOCK": clock})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        text = demo_commands(f"http://127.0.0.1:{server.server_port}", keys, clock.now)
        commands = [line.strip() for line in text.replace("\\\n", "").splitlines()
                    if line.strip().startswith("curl ")]  # fmt: skip
        outputs = [subprocess.run(shlex.split(c), capture_output=True, check=True, timeout=30)
                   for c in commands]  # fmt: skip
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
    snapshot = json.loads(outputs[0].stdout)
    assert snapshot["directions"]["inbound"]["messages"] > 1000  # the demo week, tenant demo
    assert json.loads(outputs[2].stdout)["accepted"] == 1
    assert json.loads(outputs[3].stdout) == {"direction": "inbound", "name": "Contoso Partner",
                                             "type": "partner", "forced_tls": True,
                                             "description": None}  # fmt: skip
    assert all(b"unauthorized" not in out.stdout for out in outputs)


@pytest.mark.parametrize("name", ["siem\u2028", "\u202esiem", "si\u200bem", " siem", "siem ",
                                  "si\x85em", "x" * 129])  # fmt: skip
def test_keys_create_refuses_a_name_against_the_text_rule(redis_server, redis_client, name):
    result = invoke({"MAILFLOW_REDIS_URL": redis_server.url}, "keys", "create", "--tenant",
                    "acme", "--scope", "read", "--name", name)  # fmt: skip
    assert result.exit_code == 2 and result.stdout == "" and "--name" in result.output
    assert redis_client.scard("mf:apikeys") == 0


def test_keys_create_stores_the_name_in_nfc(redis_server, redis_client):
    result = invoke({"MAILFLOW_REDIS_URL": redis_server.url}, "keys", "create", "--tenant",
                    "acme", "--scope", "read", "--name", "Zu\u0308rich")  # fmt: skip
    record = api_keys.load(redis_client, parse_key(result.stdout.strip())[0])
    assert record.name == "Z\u00fcrich"
