"""One version: pyproject's, printed by `mailflow --version`, heading the CHANGELOG."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from click.testing import CliRunner

from service.cli.commands import cli

ROOT = Path(__file__).resolve().parents[1]


def test_the_version_is_printed_and_heads_the_changelog() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert version("mailflow") == declared, "reinstall: make .venv/.installed"
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"mailflow {declared}\n"
    headings = re.findall(r"^## (\d+\.\d+\.\d+)", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings[0] == declared, "add the version to CHANGELOG.md"
