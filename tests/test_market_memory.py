"""Markets held as compact arrays: a replay's memory grows with its ticks by a few arrays' worth, not by a copy
of the merged history or a dozen temporaries of the synthetic generator.

The replay merges its symbols a window at a time (``mt5bridge.market.merge``) and the synthetic generator works
a block of ticks at a time: both must give exactly what doing it all at once gives.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import package_process

from mt5bridge.config import Config
from mt5bridge.market import merge, synthetic
from mt5bridge.market.merge import MergedTicks
from mt5bridge.workbench.replay import Replay, synthetic_markets

GROWTH_DAYS = float(os.environ.get("MT5BRIDGE_MEMORY_DAYS", "24"))


def random_parts(rng, symbols: int):
    parts = []
    for index in rng.permutation(symbols):
        n = int(rng.integers(0, 400))
        t = np.sort(rng.integers(0, 300, n)).astype(np.int64)  # many ties, within and across symbols
        parts.append((int(index), t, rng.random(n), rng.random(n) + 1, rng.random(n), rng.random(n) < 0.5))
    return parts


@pytest.mark.parametrize("seed", range(20))
def test_windows_laid_end_to_end_are_the_whole_merge(seed):
    rng = np.random.default_rng(seed)
    parts = random_parts(rng, int(rng.integers(1, 5)))
    ordered = sorted(parts, key=lambda p: p[0])
    sym = np.concatenate([np.full(len(p[1]), p[0], np.int32) for p in ordered])
    columns = [sym] + [np.concatenate([p[k] for p in ordered]) for k in range(1, 6)]
    order = np.lexsort((columns[0], columns[1]))  # by time, then symbol; stable within a symbol
    expected = [c[order] for c in columns]
    for size in (1, 7, 64, 10_000):
        windows = list(MergedTicks(parts).windows(size))
        got = [np.concatenate([w[k] for w in windows]) if windows else expected[k][:0] for k in range(6)]
        for e, g in zip(expected, got):
            assert np.array_equal(e, g)
        assert all(len(w[1]) <= size * len(parts) + 300 for w in windows)


def test_a_replay_walked_in_small_windows_gives_the_same_result(monkeypatch):
    markets = synthetic_markets(["EURUSD", "XAUUSD"], days=17, seed=3)
    whole = Replay(Config(), markets, warmup_days=14).run()
    monkeypatch.setattr(merge, "WINDOW_TICKS", 5_000)
    windowed = Replay(Config(), markets, warmup_days=14).run()
    assert windowed.ticks == whole.ticks > 100_000
    assert windowed.commands == whole.commands and windowed.trades == whole.trades
    assert (windowed.final_equity, windowed.samples, windowed.days) == (whole.final_equity, whole.samples, whole.days)


def test_the_synthetic_market_is_the_same_whatever_its_block_size(monkeypatch):
    big = synthetic.generate_market("XAUUSD", days=9, start="2024-01-05T20:30:00Z", seed=5)
    monkeypatch.setattr(synthetic, "_BLOCK", 997)
    small = synthetic.generate_market("XAUUSD", days=9, start="2024-01-05T20:30:00Z", seed=5)
    for name in ("times_ms", "bid", "ask", "volume"):
        assert np.array_equal(getattr(big.ticks, name), getattr(small.ticks, name)), name
    assert len(big.ticks) > 100_000 and (big.ticks.bid < big.ticks.ask).all()


def _peak_rss(days: float) -> tuple[int, int]:
    # VmHWM, the peak of the process's own memory map: ru_maxrss would carry over the peak of this test process.
    code = ("import json, sys\n"
            "from mt5bridge.cli.entry import main\n"
            f"rc = main(['replay', '--synthetic', 'EURUSD,GBPUSD,USDJPY', '--days', '{days}', '--warmup-days', '1',"
            " '--report', sys.argv[1], '--quiet'])\n"
            "peak = int(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])\n"
            "print(json.dumps([rc, peak]))\n")
    report = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"mt5bridge-memory-{os.getpid()}-{days}.json")
    # From a folder of its own, with the package under test (installed or built in place) first on the path:
    # never a source tree without its compiled parts.
    _, env, cwd = package_process([], os.environ.get("TMPDIR", "/tmp"))
    run = subprocess.run([sys.executable, "-c", code, report], capture_output=True, text=True, timeout=600,
                         env=env, cwd=cwd)
    assert run.returncode == 0, run.stderr
    rc, kib = json.loads(run.stdout.strip().splitlines()[-1])
    assert rc == 0
    os.unlink(report)
    return kib * 1024, sum(len(m.ticks) for m in synthetic_markets(["EURUSD", "GBPUSD", "USDJPY"], days=days))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="the peak is read from Linux's /proc")
def test_a_three_symbol_replay_grows_by_at_most_40_bytes_a_tick():
    small_bytes, small_ticks = _peak_rss(2)
    big_bytes, big_ticks = _peak_rss(GROWTH_DAYS)
    per_tick = (big_bytes - small_bytes) / (big_ticks - small_ticks)
    assert big_ticks - small_ticks > 3_000_000
    assert per_tick <= 40, f"{per_tick:.1f} bytes per tick"
