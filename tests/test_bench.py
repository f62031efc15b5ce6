"""The benchmarks measure the package as installed: run from another folder, they import the very package the
tests import (installed, or built in place), never a source tree they put on sys.path themselves."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import mt5bridge

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run_benchmark(script: str, args: list[str], cwd: Path, timeout: float) -> dict:
    """bench/SCRIPT ARGS run from ``cwd`` (another folder) against the package the tests import, installed or
    built in place; the figures of its last line."""
    where = str(Path(mt5bridge.__file__).resolve().parent.parent)
    env = {"PYTHONPATH": where} if not where.endswith("site-packages") else {}
    run = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=cwd, capture_output=True, text=True,
                         timeout=timeout, env=dict(os.environ, **env))
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.py")))
def test_no_benchmark_puts_a_source_tree_on_the_import_path(script):
    tree = ast.parse((BENCH / script).read_text(encoding="utf-8"))
    touched = [n.lineno for n in ast.walk(tree)
               if isinstance(n, ast.Attribute) and n.attr == "path" and getattr(n.value, "id", "") == "sys"]
    assert touched == [], f"bench/{script} changes sys.path at lines {touched}: measure the installed package"


def test_the_node_benchmark_runs_from_another_folder_on_the_installed_package(tmp_path):
    figures = run_benchmark("node.py", ["--ticks", "200", "--json"], tmp_path, 120)
    assert figures["timed_ticks"] == 200 and figures["none_handle_p50_us"] > 0


def test_the_market_data_benchmark_runs_quick_from_another_folder(tmp_path):
    figures = run_benchmark("marketdata.py", ["--quick", "--json"], tmp_path, 300)
    for name in ("tick_csv", "mt5_tick_export", "mt5_tick_export_utf16", "bar_csv", "mt5_bar_export"):
        assert figures["formats"][name]["same_arrays"] is True
        assert figures["formats"][name]["rows_per_s"] > 0 and figures["formats"][name]["python_rows_per_s"] > 0
    assert figures["replay_command"]["replayed_ticks"] > 0
    assert figures["synthetic_replay_memory"]["peak_rss_mb"] > 0


def test_the_sweep_benchmark_runs_quick_from_another_folder_and_finds_the_same_results_everywhere(tmp_path):
    pytest.importorskip("distributed", reason="the sweep benchmark's cluster needs mt5bridge[cluster]")
    figures = run_benchmark("sweep.py", ["--quick", "--json"], tmp_path, 300)
    assert figures["runs"] == 4 and figures["same_results_everywhere"] is True
    assert figures["one_process_replays_per_s"] > 0 and figures["cluster_replays_per_s"] > 0


def test_the_recording_benchmark_runs_from_another_folder_on_the_installed_package(tmp_path):
    figures = run_benchmark("recording.py", ["--ticks", "600", "--json"], tmp_path, 120)
    assert figures["timed_ticks"] == 600 and figures["bytes_on_disk_per_tick"] > 0
    assert figures["recorded_handle_p50_us"] > 0 and figures["bare_handle_p50_us"] > 0
