"""`mailflow ingest --dry-run FILE...` without click (service.ingest.plain_entry) says what the
click command says: the same summary, the same errors, the same exit statuses.

Each case runs twice as a whole process: as given, and with `--format postfix` (the default)
added, which the plain entry leaves to click."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from service.ingest.synthetic import postfix_lines
from tests.ingest.support import SHARED

FIXTURES = Path(__file__).parent / "fixtures"
PIXELPARK = SHARED / "samples" / "postfix" / "pixelpark_postfix-logsums_test_mail.log.xz"
ENTRIES = {
    "python -m service.ingest": [sys.executable, "-m", "service.ingest"],
    "mailflow ingest": [sys.executable, "-c", "from service.cli import main; main()", "ingest"],
}
# The default format said again: the same run, through click.
CLICK = ["--format", "postfix"]
# How long the run took varies from run to run; everything else must not.
TIMING = re.compile(r"read in \d+\.\d\d s \([\d,]+ lines/s\)")


def run(entry: str, args: Sequence[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = subprocess.run(
        [*ENTRIES[entry], *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    return done.returncode, done.stdout, TIMING.sub("read in (time)", done.stderr)


def both_ways(
    entry: str, args: Sequence[str], env: dict[str, str] | None = None
) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    return run(entry, args, env), run(entry, [*CLICK, *args], env)


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    path = tmp_path / "mail.log"
    path.write_text("".join(postfix_lines(300)) + "not a syslog line\n\n")
    return path


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_dry_run_says_what_the_click_command_says(entry: str, generated: Path) -> None:
    scenarios = FIXTURES / "postfix_scenarios.log"
    plain, click = both_ways(entry, ["--dry-run", str(generated), str(scenarios)])
    assert plain == click
    assert plain[0] == 0 and "dry run: nothing sent" in plain[2]
    # Options after the files, `-` for standard input: still the same.
    plain, click = both_ways(entry, [str(scenarios), "--dry-run"])
    assert plain == click and plain[0] == 0


@pytest.mark.skipif(not PIXELPARK.exists(), reason="shared samples not available")
def test_the_real_log_gives_the_same_summary(tmp_path: Path) -> None:
    import lzma

    log = tmp_path / "mail.log"
    log.write_bytes(lzma.decompress(PIXELPARK.read_bytes()))
    plain, click = both_ways("python -m service.ingest", ["--dry-run", str(log)])
    assert plain == click
    assert "postscreen                 50,661" in plain[2]


@pytest.mark.parametrize("value", ["30", "0", "x", "", " 30"])
def test_retention_from_the_environment_is_read_as_click_reads_it(
    value: str, generated: Path
) -> None:
    env = {"MAILFLOW_RETENTION_DAYS": value}
    plain, click = both_ways("mailflow ingest", ["--dry-run", str(generated)], env)
    assert plain == click


@pytest.mark.parametrize("entry", ENTRIES)
def test_errors_are_click_s(entry: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "absent.log")
    plain, click = both_ways(entry, ["--dry-run", missing])
    assert plain == click
    assert plain[0] == 2 and "Invalid value for FILE" in plain[2]
    assert run(entry, ["--dry-run"])[0] == 2  # no file: click's usage error


PROBE = """
import sys
from service.cli import main
sys.argv = ["mailflow", "ingest", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    assert not exit.code, exit.code
print(" ".join(sorted(sys.modules)))
"""
# What a plain dry run does without: click, and what click, dataclasses and typing import
# (inspect with ast, dis, tokenize): ~17 ms of a ~92 ms run.
NOT_LOADED = {"click", "dataclasses", "typing", "inspect", "ast", "dis", "tokenize"}


def test_only_a_plain_dry_run_goes_without_click(generated: Path) -> None:
    def loaded(*args: str) -> set[str]:
        return set(subprocess.run(
            [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True,
            timeout=60,
        ).stdout.split())  # fmt: skip

    assert loaded("--dry-run", str(generated)) & NOT_LOADED == set()
    assert "click" in loaded("--dry-run", *CLICK, str(generated))


def interrupted(entry: str, args: list[str], fifo: Path) -> tuple[int, str]:
    """Interrupt a dry run while it waits for its log (a FIFO nobody writes to yet)."""
    child = subprocess.Popen(
        [*ENTRIES[entry], *args, str(fifo)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    # Opening the FIFO returns once the run has opened it: the run is past its start-up.
    with fifo.open("w"):
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    return child.returncode, err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO")
def test_an_interrupted_dry_run_ends_as_click_ends_it(tmp_path: Path) -> None:
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    plain = interrupted("python -m service.ingest", ["--dry-run"], fifo)
    click = interrupted("python -m service.ingest", ["--dry-run", *CLICK], fifo)
    assert plain == click == (1, "\nAborted!\n")


def test_a_closed_stderr_ends_as_with_click(generated: Path) -> None:
    def status(*args: str) -> int:
        child = subprocess.Popen([*ENTRIES["mailflow ingest"], *args, str(generated)],
                                 stderr=subprocess.PIPE)  # fmt: skip
        assert child.stderr is not None
        child.stderr.close()  # nobody reads the summary
        return child.wait(timeout=60)

    assert status("--dry-run") == status("--dry-run", *CLICK) == 1


def test_no_stderr_at_all_ends_as_with_click(generated: Path) -> None:
    def status(*args: str) -> int:
        command = [*ENTRIES["mailflow ingest"], *args, str(generated)]
        # fd 2 closed before Python starts: sys.stderr is None.
        return subprocess.run(["sh", "-c", 'exec "$@" 2>&-', "sh", *command],
                              timeout=60).returncode  # fmt: skip

    assert status("--dry-run") == status("--dry-run", *CLICK)
