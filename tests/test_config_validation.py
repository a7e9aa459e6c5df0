"""A bad setting stops mailflow at start, naming the variable: never a silent default."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields

import pytest

from service.config import Settings


@pytest.mark.parametrize("raw, expected", [
    ("true", True), ("TRUE", True), ("1", True), ("yes", True), ("On", True), (" on ", True),
    ("false", False), ("False", False), ("0", False), ("no", False), ("OFF", False),
])  # fmt: skip
def test_booleans_in_every_accepted_spelling(raw, expected):
    assert Settings.from_env({"MAILFLOW_NEAR_CACHE": raw}).near_cache is expected


BAD_VALUES = [
    ("MAILFLOW_NEAR_CACHE", "ture"), ("MAILFLOW_ACCESS_LOG", "y"), ("MAILFLOW_CACHED_READS", "2"),
    ("MAILFLOW_METRICS_PER_TENANT", "enabled"), ("MAILFLOW_RETENTION_DAYS", "ninety"),
    ("MAILFLOW_RETENTION_DAYS", "0"), ("MAILFLOW_MAX_BATCH", "1.5"),
    ("MAILFLOW_REFRESH_SECONDS", "nan"), ("MAILFLOW_REFRESH_SECONDS", "inf"),
    ("MAILFLOW_REFRESH_SECONDS", "-1"), ("MAILFLOW_REDIS_TIMEOUT_SECONDS", "0"),
    ("MAILFLOW_WEB_THREADS", "0"), ("MAILFLOW_WEB_WORKERS", "-2"),
    ("MAILFLOW_VIEW_CACHE_SECONDS", "-1"), ("MAILFLOW_LOG_LEVEL", "loud"),
    ("MAILFLOW_REDIS_FSYNC", "never"), ("MAILFLOW_FOLD_BATCH_ENTRIES", "0"),
    ("MAILFLOW_RETENTON_DAYS", "30"), ("MAILFLOW_NEAR_CAHCE", "false"), ("MAILFLOW_WHATEVER", "1"),
]  # fmt: skip


@pytest.mark.parametrize("name, raw", BAD_VALUES)
def test_a_bad_value_or_unknown_name_is_refused_by_name(name, raw):
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: raw})


def test_a_typo_names_the_setting_meant():
    with pytest.raises(ValueError, match="did you mean MAILFLOW_RETENTION_DAYS"):
        Settings.from_env({"MAILFLOW_RETENTON_DAYS": "30"})


def test_names_of_mailflows_other_tools_are_allowed():
    env = {"MAILFLOW_URL": "http://x", "MAILFLOW_KEY": "k", "MAILFLOW_PORT": "8080",
           "MAILFLOW_TEST_CLOCK_OFFSET_DAYS": "400", "PATH": "/bin"}  # fmt: skip
    assert Settings.from_env(env) == Settings()


def test_every_setting_has_a_good_default():
    assert Settings.from_env({}) == Settings()
    assert {f.name for f in fields(Settings)}  # not vacuous


@pytest.mark.parametrize("name, raw", [("MAILFLOW_NEAR_CACHE", "ture"),
                                       ("MAILFLOW_RETENTON_DAYS", "30")])  # fmt: skip
@pytest.mark.parametrize("command", [["worker", "--burst"], ["serve"], ["keys", "list"]])
def test_the_cli_refuses_to_start(tmp_path, name, raw, command):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILFLOW_")}
    env.update({name: raw, "MAILFLOW_DATA_DIR": str(tmp_path)})
    done = subprocess.run([sys.executable, "-m", "service.cli", *command], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert name in done.stderr


def test_the_embedded_server_setting_names_the_servers_the_store_starts():
    from service import config
    from service.store import embedded

    assert config.EMBEDDED_SERVERS == embedded.EMBEDDED_SERVERS
    assert Settings().embedded_server == embedded.DEFAULT_EMBEDDED_SERVER
    for server in embedded.EMBEDDED_SERVERS:
        assert Settings.from_env({"MAILFLOW_EMBEDDED_SERVER": server}).embedded_server == server
        assert embedded.redis_server_binary(server).exists()
    with pytest.raises(ValueError, match="MAILFLOW_EMBEDDED_SERVER"):
        Settings.from_env({"MAILFLOW_EMBEDDED_SERVER": "redis7"})
