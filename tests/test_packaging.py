"""What a trader meets before anything trades: the install, the quick start, and a clear failure when the
compiled engine is missing."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


def _readme_commands(repo_root) -> list[str]:
    text = (repo_root / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Quick start.*?```(?:bash|sh)?\n(.*?)```", text, re.S)
    assert block, "README.md has no Quick start code block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_ci_runs_the_readmes_test_command(repo_root):
    commands = _readme_commands(repo_root)
    assert len(commands) == 2, commands
    ci = (repo_root / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci.splitlines(), f"{commands[1]!r} is not a line of .ci/run"


# A checkout built before the TICK reader existed has the engine but not the reader.
@pytest.mark.parametrize(("module", "importer", "named"), [
    ("mt5bridge.core._engine", "mt5bridge.core.engine", "compiled engine"),
    ("mt5bridge.bridge._tickwire", "mt5bridge.bridge.node", "compiled TICK reader"),
    ("mt5bridge.market._marketread", "mt5bridge.market.readers", "compiled price-file reader"),
])
def test_a_missing_compiled_module_fails_with_how_to_build_it(module, importer, named, tmp_path):
    from conftest import package_process

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name == {module!r}: raise ImportError('not built')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"import {importer}\n"
    )
    # The package under test (installed or built in place), the module hidden; never a source tree beside it.
    _, env, cwd = package_process([], tmp_path)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd)
    assert run.returncode != 0
    assert named in run.stderr and "pip install" in run.stderr, run.stderr


def test_the_console_script_lists_its_commands(tmp_path):
    from conftest import package_process

    cmd, env, cwd = package_process(["--help"], tmp_path)
    run = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    assert run.returncode == 0
    for command in ("serve", "status", "halt", "resume", "simulate", "demo", "features", "check-config",
                    "export-trades", "keygen"):
        assert command in run.stdout, command


def test_every_command_reports_a_bad_config_with_key_value_and_range(tmp_path, capsys):
    from mt5bridge.cli.entry import main

    bad = tmp_path / "bad.toml"
    bad.write_text("[entry]\nmin_score = 500\n", encoding="utf-8")
    for command in (["serve"], ["status"], ["halt"], ["demo", "--seconds", "1"]):
        assert main([*command, "--config", str(bad)]) == 2, command
        assert f"{bad}: entry.min_score = 500: must be between 0 and 100" in capsys.readouterr().err, command
