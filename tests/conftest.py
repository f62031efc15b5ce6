"""Shared fixtures: the repository root and deterministic synthetic markets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def market_cache_folder(tmp_path_factory):
    """Parsed price files cached in a folder of the test session, never in the user's own cache folder (the
    processes tests start inherit it); a run that sets MT5BRIDGE_CACHE_DIR keeps its own."""
    if "MT5BRIDGE_CACHE_DIR" not in os.environ:
        os.environ["MT5BRIDGE_CACHE_DIR"] = str(tmp_path_factory.mktemp("market-cache"))
    yield


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def eurusd_ticks():
    """Twelve days of synthetic EURUSD ticks (about 800k), the same on every run."""
    from mt5bridge.market.synthetic import generate_ticks

    return generate_ticks("EURUSD", days=12, seed=7)


def aggregate_bars(times_ms: np.ndarray, price: np.ndarray, volume: np.ndarray, period_s: int):
    """OHLCV bars of the periods that have ticks, built independently of the engine."""
    period = period_s * 1000
    key = times_ms // period
    starts = np.r_[0, np.flatnonzero(np.diff(key)) + 1]
    ends = np.r_[starts[1:], key.size]
    return (
        key[starts] * period,
        price[starts],
        np.maximum.reduceat(price, starts),
        np.minimum.reduceat(price, starts),
        price[ends - 1],
        np.add.reduceat(volume, starts),
    )


def package_process(args: list[str], cwd) -> tuple[list[str], dict, str]:
    """The command line, environment and folder to run `python -m mt5bridge ...` as a separate process
    against the very package under test (installed or built in place), never a source tree beside it."""
    import os
    import sys

    import mt5bridge

    where = str(Path(mt5bridge.__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=where + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return [sys.executable, "-m", "mt5bridge", *args], env, str(cwd)


def on_a_terminal(args: list[str], cwd):
    """`python -m mt5bridge ARGS` started on a pseudo-terminal, as a trader's console runs it (progress bars show,
    Ctrl-C reaches it): the process and the terminal's reading end."""
    import os
    import pty
    import subprocess

    cmd, env, where = package_process(args, cwd)
    env = dict(env, COLUMNS="120", TERM="xterm")
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, env=env, cwd=where, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    return proc, master


def without_browser(reason: str) -> None:
    """Skip a browser test where no browser is installed; where CI installed one
    (MT5BRIDGE_BROWSER_TESTS=required), its absence is a failure, never a quiet skip."""
    import os

    if os.environ.get("MT5BRIDGE_BROWSER_TESTS", "").lower() == "required":
        pytest.fail(f"MT5BRIDGE_BROWSER_TESTS=required, but {reason}")
    pytest.skip(reason)
