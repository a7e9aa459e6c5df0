"""The shipped deployment files are checked, and the checks can fail: hadolint on the
Dockerfile, the Compose schema on docker-compose.yml, systemd-analyze on deploy/systemd/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli.commands import cli
from tests import deploy_checks


def test_the_dockerfile_passes_hadolint_and_a_careless_one_does_not(tmp_path: Path) -> None:
    assert deploy_checks.hadolint_problems() == []
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM debian\nRUN apt-get update && apt-get install -y curl\n")
    problems = "\n".join(deploy_checks.hadolint_problems(careless))
    assert "DL3006" in problems  # an untagged base image


def test_the_compose_file_is_valid_against_the_compose_schema(tmp_path: Path) -> None:
    assert deploy_checks.compose_problems() == []
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        (deploy_checks.ROOT / "docker-compose.yml")
        .read_text()
        .replace("stop_grace_period:", "stop_grace:")
    )
    problems = deploy_checks.compose_problems(broken)
    assert any("stop_grace" in p for p in problems), problems


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd; .ci/run does)")
    assert {u.name for u in deploy_checks.unit_files()} == {
        "mailflow-api.service", "mailflow-worker@.service", "mailflow-ingest.service"}  # fmt: skip
    assert deploy_checks.systemd_problems() == []
    for unit in deploy_checks.unit_files():
        text = unit.read_text()
        (tmp_path / unit.name).write_text(text.replace("Restart=", "Restrat=", 1))
    problems = deploy_checks.systemd_problems(units=tmp_path)
    assert problems and any("Restrat" in p for p in problems)


@pytest.mark.parametrize("unit", sorted(deploy_checks.exec_commands()))
def test_each_unit_runs_a_mailflow_command_that_exists(unit: str) -> None:
    args = deploy_checks.exec_commands()[unit]
    # The command line parses (a renamed option would fail here), without running it.
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, result.output
    for option in (a for a in args if a.startswith("--")):
        assert option in result.output, (unit, option)
