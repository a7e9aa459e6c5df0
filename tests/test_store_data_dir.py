"""The embedded store on disk: one server per data dir, `mailflow keys` never starts a second
one nor makes a store nobody reads, and the data dir is readable by its owner only."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time

import pytest
import redis
from click.testing import CliRunner

from service.cli.commands import cli
from service.core.api_keys import parse_key
from service.store import api_keys
from service.store.api_keys import create_key
from service.store.embedded import DataDirLocked, EmbeddedRedis
from tests.conftest import TEST_SERVER, free_port


def keys_command(data_dir, *args: str):
    env = {"MAILFLOW_DATA_DIR": str(data_dir), "MAILFLOW_REDIS_URL": ""}
    return CliRunner().invoke(cli, ["keys", *args], env=env, catch_exceptions=False)


@pytest.fixture
def running_store(tmp_path):
    """The embedded server `mailflow run` starts, on ``tmp_path / "var"``."""
    server = EmbeddedRedis(tmp_path / "var", server=TEST_SERVER).start()
    yield server
    server.stop()


def test_keys_fail_loudly_and_touch_nothing_while_the_running_store_is_stalled(
    running_store, clock, closing
):
    client = closing(redis.Redis.from_url(running_store.url))
    key = create_key(client, "acme", ("read",), "k", clock.now)
    key_id = parse_key(key)[0]
    files_before = sorted(p.name for p in running_store.data_dir.iterdir())
    os.kill(running_store.process.pid, signal.SIGSTOP)  # a stall longer than any timeout here
    try:
        revoked = keys_command(running_store.data_dir, "revoke", key_id)
        created = keys_command(running_store.data_dir, "create", "--tenant", "beta",
                               "--scope", "read")  # fmt: skip
        files_during = sorted(p.name for p in running_store.data_dir.iterdir())
        socket_kept = running_store.socket_path.exists()
    finally:
        os.kill(running_store.process.pid, signal.SIGCONT)
    for result in (revoked, created):
        assert result.exit_code != 0 and "does not answer" in result.output, result.output
        assert "revoked" not in result.output and not result.stdout.startswith("mf_")
    assert socket_kept and files_during == files_before  # no second server, no file touched
    assert api_keys.load(client, key_id).revoked_at is None  # and nothing claimed it was
    assert running_store.running
    # The server is back: the same command works, on the same server.
    assert keys_command(running_store.data_dir, "revoke", key_id).exit_code == 0
    assert api_keys.load(client, key_id).revoked_at is not None


def test_a_second_server_on_a_data_dir_in_use_is_refused(running_store, closing):
    second = EmbeddedRedis(running_store.data_dir, port=free_port(), server=TEST_SERVER)
    third = EmbeddedRedis(running_store.data_dir, port=free_port(), server=TEST_SERVER)
    try:
        with pytest.raises(DataDirLocked, match="in use by a running mailflow store"):
            second.start()
        # The first server's starter dies (its lock fd closes): the server still holds it.
        running_store.lock.release()
        with pytest.raises(DataDirLocked):
            third.start()
    finally:
        second.stop()  # were either started, the test must not leave it running
        third.stop()
    assert running_store.socket_path.exists()
    assert closing(redis.Redis.from_url(running_store.url)).ping()


def test_a_server_started_without_the_lock_is_not_doubled_either(tmp_path):
    """A redis-server an older mailflow started (no lock): its pid file tells it runs."""
    data_dir = tmp_path / "var"
    unlocked = EmbeddedRedis(data_dir, server=TEST_SERVER)
    data_dir.mkdir()
    process = subprocess.Popen(unlocked.command_line(), stdin=subprocess.DEVNULL)
    try:
        unlocked.process = process
        unlocked._wait_ready(10)
        with pytest.raises(DataDirLocked, match=f"redis-server \\(pid {process.pid}\\)"):
            EmbeddedRedis(data_dir, server=TEST_SERVER).start()
        assert unlocked.socket_path.exists()
        result = keys_command(data_dir, "list")  # it answers: the command uses it
        assert result.exit_code == 0, result.output
    finally:
        process.terminate()
        process.wait(15)
    # Gone (its pid file with it, or naming a dead process): the dir can be used again.
    EmbeddedRedis(data_dir, server=TEST_SERVER).start().stop()


def test_keys_make_a_new_store_only_when_asked(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a person runs the command from another directory
    refused = CliRunner().invoke(cli, ["keys", "create", "--tenant", "acme", "--scope", "read"],
                                 env={"MAILFLOW_REDIS_URL": "", "MAILFLOW_DATA_DIR": ""})  # fmt: skip
    assert refused.exit_code != 0 and "--init" in refused.output
    assert refused.stdout == "" and list(elsewhere.iterdir()) == []  # no ./var made
    assert keys_command(tmp_path / "new", "list").exit_code != 0
    assert not (tmp_path / "new").exists()

    made = keys_command(tmp_path / "new", "create", "--tenant", "acme", "--scope", "read",
                        "--init")  # fmt: skip
    assert made.exit_code == 0 and made.stdout.startswith("mf_")
    listed = keys_command(tmp_path / "new", "list")  # the store exists now: no --init needed
    assert listed.exit_code == 0 and "acme" in listed.stdout


def _loose_modes(data_dir) -> dict[str, str]:
    loose = {}
    for path in [data_dir, *data_dir.rglob("*")]:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:  # a server's temporary file, gone between listing and stat
            continue
        if not stat.S_ISLNK(mode) and mode & 0o077:
            loose[str(path)] = oct(stat.S_IMODE(mode))
    return loose


def _wait_for_the_aof_rewrite(client) -> None:
    """The rewrite runs in a child; its files are final only once the server says it is done."""
    deadline = time.monotonic() + 30  # bounded: a rewrite of a handful of keys takes ms
    while time.monotonic() < deadline:
        persistence = client.info("persistence")
        if not persistence["aof_rewrite_in_progress"] and not persistence.get(
            "aof_rewrite_scheduled"
        ):
            return
        time.sleep(0.01)  # polling the server's own state, not waiting on our code
    raise AssertionError("the AOF rewrite did not finish within 30 s")


def test_the_data_dir_and_its_files_are_owner_only(tmp_path, clock):
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    (data_dir / "appendonly.aof").write_bytes(b"")  # as an older version left it
    os.chmod(data_dir / "appendonly.aof", 0o644)
    server = EmbeddedRedis(data_dir, server=TEST_SERVER).start()
    try:
        client = redis.Redis.from_url(server.url)
        create_key(client, "acme", ("read",), "k", clock.now)
        client.bgrewriteaof()  # new AOF files too
        _wait_for_the_aof_rewrite(client)
        client.close()
        assert _loose_modes(data_dir) == {}
    finally:
        server.stop()
    assert _loose_modes(data_dir) == {}
