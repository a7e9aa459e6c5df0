"""What a dry run loads: `mailflow ingest` runs beside a mail server, and on one rotated log
its run time is mostly interpreter start-up, so it must not import the service's stack."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from service.ingest.synthetic import postfix_lines

# Modules of the API, the worker and the store, none of which reading a log needs.
NOT_NEEDED = ("redis", "flask", "werkzeug", "jinja2", "gunicorn", "asyncio", "ssl", "hashlib", "orjson",
              "service.store", "service.web", "service.worker", "service.config",
              "service.core.traces")  # fmt: skip

PROBE = """
import sys
from service.cli import main
sys.argv = ["mailflow", "ingest", "--dry-run", sys.argv[1]]
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
print(" ".join(sorted(sys.modules)))
"""


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "mail.log"
    path.write_text("".join(postfix_lines(20)))
    return path


def loaded_by_a_dry_run(log: Path) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(log)], capture_output=True, text=True, check=True,
        timeout=60,
    ).stdout  # fmt: skip
    return set(out.split())


def test_a_dry_run_through_the_mailflow_command_loads_no_service_stack(log: Path) -> None:
    loaded = loaded_by_a_dry_run(log)
    assert "service.ingest.postfix" in loaded  # the probe did run the command
    heavy = sorted(m for m in loaded if m.split(".")[0] in NOT_NEEDED or m in NOT_NEEDED
                   or any(m.startswith(p + ".") for p in NOT_NEEDED))  # fmt: skip
    assert heavy == []


# Collections while the command's modules are imported, then after the run: the first part
# must be none (what importing makes is frozen), and collection must be on again afterwards.
GC_PROBE = """
import gc, sys
import service.ingest.startup  # the guard itself is imported before it can guard anything
import service.cli  # the package alone (compiled from source when its bytecode is stale)
gc.collect()  # start from empty generations: what follows is the guarded import alone
during_imports = []
gc.callbacks.append(lambda phase, info: phase == "start" and during_imports.append(1))
from service.cli import cli, main  # click and every command, imported under the guard
imported = len(during_imports)
frozen = gc.get_freeze_count()
sys.argv = ["mailflow", "ingest", "--dry-run", sys.argv[1]]
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
print(imported, frozen, gc.isenabled())
"""


def test_the_command_imports_without_collections_and_leaves_collection_on(log: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", GC_PROBE, str(log)], capture_output=True, text=True, check=True,
        timeout=60,
    ).stdout.split()  # fmt: skip
    assert out[0] == "0"  # click and the commands imported without one collection
    assert int(out[1]) > 1000  # what they made is frozen out of later collections
    assert out[2] == "True"


def test_collection_stays_as_the_caller_had_it() -> None:
    from service.ingest.startup import ImportsWithoutCollection

    assert gc.isenabled()
    with ImportsWithoutCollection():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with ImportsWithoutCollection():
            pass
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()
