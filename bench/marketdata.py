"""Benchmark of reading price files: rows per second of each format, the cached load, the whole `mt5bridge replay`
command, and the peak memory of a long multi-symbol synthetic replay.

Run from anywhere, with the package installed (``pip install -e .``)::

    python bench/marketdata.py            # a readable table, then one JSON line
    python bench/marketdata.py --json     # only the JSON line
    python bench/marketdata.py --quick    # small sizes, to check the script runs (tests/test_bench.py)

The data is made here, in a temporary folder, nothing committed: ``--ticks`` dense EURUSD ticks (a random walk,
one tick every 9 s, 400 an hour, five decimals) written as a ``time,bid,ask,volume`` CSV, as an MT5 tick export
(tab-separated, ``2024.01.02 00:00:09.123``), and as the same export in UTF-16 with a BOM (MT5's "Unicode"), and
M1 bars of the same walk as a CSV and as an MT5 bar export.

What is measured, in one process, each beside the Python reader in the same run:

1. ``formats.<name>.rows_per_s``: the compiled reader (``parse_market_bytes``) over the file's bytes, median of
   ``--repeat``; ``python_rows_per_s`` the Python reader over the same bytes; ``speedup`` the ratio;
   ``rows_per_cpu_s`` the compiled reader's rows per second of this process's CPU time.
2. ``cached_load``: ``read_market_file`` of the tick CSV with a warm cache (hashing the file's content with
   SHA-256 included), beside reading it with no cache, both with the file read from the page cache.
3. ``replay_command``: the whole ``mt5bridge replay --data EURUSD_ticks.csv --report FILE`` in a fresh
   process, wall clock from start to exit (interpreter start, reading, warm-up, replay, report written): with
   the compiled reader and no cache, with a warm cache, and with the Python reader (the baseline). ticks/s is
   the file's ticks over that time; the CPU seconds of each run are given beside (on a shared machine the
   wall clock also counts time waiting for a core), and ``startup_seconds``: the interpreter, the imports and
   the command-line parser, paid by every command before it reads anything. The first 14 days warm the features, as by default (none with ``--quick``).
4. ``synthetic_replay_memory``: peak resident memory of a fresh process (Linux's ``VmHWM``, else ``ru_maxrss``,
   which on Linux carries over the peak of the process that started it) running
   ``mt5bridge replay --synthetic EURUSD,GBPUSD,USDJPY --days N`` (200 days; 20 with ``--quick``), and the bytes
   per tick it comes to.

The last line printed is always one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# The installed package is measured (pip install .), never a source tree beside this script.
from mt5bridge.market.cache import MarketCache
from mt5bridge.market.readers import parse_market_bytes, read_market_file

START_MS = 1_704_153_600_000  # 2024-01-02 00:00 UTC, a Tuesday
STEP_MS = 9_000


def walk(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times (ms), bids and asks of a dense EURUSD-like walk, prices in whole points (5 decimals)."""
    rng = np.random.default_rng(seed)
    times = START_MS + np.arange(n, dtype=np.int64) * STEP_MS + rng.integers(0, 999, n)
    bid_points = 108_500 + np.cumsum(rng.integers(-3, 4, n))
    spread = rng.integers(5, 15, n)
    return times, bid_points, bid_points + spread


def _clock_texts(times_ms: np.ndarray, date_sep: str, between: str) -> list[str]:
    days = (times_ms // 86_400_000).astype("datetime64[D]").astype(str)
    if date_sep != "-":
        days = np.char.replace(days, "-", date_sep)
    ms = times_ms % 86_400_000
    h, m, s, f = ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60, ms % 1000
    return [f"{d}{between}{hh:02d}:{mm:02d}:{ss:02d}.{ff:03d}" for d, hh, mm, ss, ff in
            zip(days.tolist(), h.tolist(), m.tolist(), s.tolist(), f.tolist())]


def _price(points: np.ndarray) -> list[str]:
    return [f"{p // 100_000}.{p % 100_000:05d}" for p in points.tolist()]


def write_files(folder: Path, n: int) -> dict[str, tuple[Path, int]]:
    """The sample files, each with the rows it holds."""
    times, bid, ask = walk(n)
    bids, asks = _price(bid), _price(ask)
    files = {}
    csv = folder / "EURUSD_ticks.csv"
    stamps = _clock_texts(times, "-", " ")
    csv.write_text("time,bid,ask,volume\n" + "".join(f"{t},{b},{a},1\n" for t, b, a in zip(stamps, bids, asks)))
    files["tick_csv"] = (csv, n)
    stamps = _clock_texts(times, ".", "\t")
    export = "<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>\n" + "".join(
        f"{t}\t{b}\t{a}\t\t\t6\n" for t, b, a in zip(stamps, bids, asks))
    (folder / "mt5_ticks.txt").write_text(export)
    files["mt5_tick_export"] = (folder / "mt5_ticks.txt", n)
    (folder / "mt5_ticks_utf16.txt").write_bytes(export.replace("\n", "\r\n").encode("utf-16"))
    files["mt5_tick_export_utf16"] = (folder / "mt5_ticks_utf16.txt", n)
    del export

    # M1 bars of the same walk.
    minute = (times - START_MS) // 60_000
    starts = np.flatnonzero(np.r_[True, minute[1:] != minute[:-1]])
    ends = np.r_[starts[1:], n]
    bar_t = START_MS + minute[starts] * 60_000
    o, c = bid[starts], bid[ends - 1]
    hi, lo = np.maximum.reduceat(bid, starts), np.minimum.reduceat(bid, starts)
    vol = ends - starts
    cols = [_price(x) for x in (o, hi, lo, c)]
    stamps = _clock_texts(bar_t, "-", " ")
    (folder / "EURUSD_M1.csv").write_text("time,open,high,low,close,volume,spread\n" + "".join(
        f"{t},{a},{b},{d},{e},{v},10\n" for t, a, b, d, e, v in zip(stamps, *cols, vol.tolist())))
    files["bar_csv"] = (folder / "EURUSD_M1.csv", len(bar_t))
    stamps = [s[:19] for s in _clock_texts(bar_t, ".", "\t")]
    (folder / "mt5_bars.txt").write_text(
        "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n" + "".join(
            f"{t}\t{a}\t{b}\t{d}\t{e}\t{v}\t0\t10\n" for t, a, b, d, e, v in zip(stamps, *cols, vol.tolist())))
    files["mt5_bar_export"] = (folder / "mt5_bars.txt", len(bar_t))
    return files


def best_of(fn, repeat: int, clock=time.perf_counter) -> float:
    """Median seconds of ``repeat`` calls (``clock=time.process_time``: CPU seconds of this process)."""
    times = []
    for _ in range(repeat):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times)


def measure_formats(files, repeat: int) -> dict:
    out = {}
    for name, (path, rows) in files.items():
        raw = path.read_bytes()
        compiled = parse_market_bytes(str(path), raw, 0, None)
        python = parse_market_bytes(str(path), raw, 0, None, compiled=False)
        same = all(np.array_equal(getattr(compiled, f), getattr(python, f)) for f in ("times_ms", "volume"))
        t_c = best_of(lambda: parse_market_bytes(str(path), raw, 0, None), repeat)
        t_p = best_of(lambda: parse_market_bytes(str(path), raw, 0, None, compiled=False), max(1, repeat // 2))
        cpu_c = best_of(lambda: parse_market_bytes(str(path), raw, 0, None), repeat, time.process_time)
        out[name] = {"rows": rows, "mb": round(len(raw) / 1e6, 1), "rows_per_s": round(rows / t_c),
                     "python_rows_per_s": round(rows / t_p), "speedup": round(t_p / t_c, 1),
                     "rows_per_cpu_s": round(rows / max(cpu_c, 1e-9)), "same_arrays": same}
    return out


def measure_cache(path: Path, rows: int, folder: Path, repeat: int) -> dict:
    cache = MarketCache(folder / "cache", min_file_bytes=0)
    read_market_file(path, cache=cache)  # fills it
    t_hit = best_of(lambda: read_market_file(path, cache=cache), repeat)
    t_none = best_of(lambda: read_market_file(path, cache=False), repeat)
    raw = path.read_bytes()
    import hashlib

    t_hash = best_of(lambda: hashlib.sha256(raw).digest(), repeat)
    return {"rows_per_s": round(rows / t_hit), "seconds": round(t_hit, 4), "uncached_rows_per_s": round(rows / t_none),
            "uncached_seconds": round(t_none, 4), "speedup": round(t_none / t_hit, 1),
            "sha256_seconds": round(t_hash, 4), "entry_mb": round(cache.size() / 1e6, 1)}


# The process's own peak: Linux's VmHWM belongs to the process's memory map, while ru_maxrss carries over the
# peak of the parent that forked it (this script, which holds the sample files), so it is used only elsewhere.
PEAK_KIB = ("def peak_kib():\n"
            "    try:\n"
            "        with open('/proc/self/status') as fh:\n"
            "            return int(fh.read().split('VmHWM:')[1].split()[0])\n"
            "    except (OSError, IndexError):\n"
            "        import resource\n"
            "        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "        return peak // 1024 if sys.platform == 'darwin' else peak\n")


def run_command(argv: list[str], env: dict, python_reader: bool = False) -> tuple[float, int, float]:
    """Wall seconds, peak resident memory (KiB) and CPU seconds of ``mt5bridge ARGV`` in a fresh process."""
    code = ("import sys\n" + PEAK_KIB
            + ("import mt5bridge.market.readers as r; r._marketread = None\n" if python_reader else "")
            + "from mt5bridge.cli.entry import build_parser, main\n"
            + (f"rc = main({argv!r})\n" if argv else "build_parser()\nrc = 0\n")
            + "print('MAXRSS', peak_kib(), file=sys.stderr)\n"
            "sys.exit(rc)\n")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        raise SystemExit(f"mt5bridge {' '.join(argv)} failed:\n{run.stderr}")
    rss = int(run.stderr.rsplit("MAXRSS", 1)[1].split()[0])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, rss, cpu


def measure_command(path: Path, rows: int, folder: Path, warmup_days: float) -> dict:
    report = str(folder / "report.json")
    argv = ["replay", "--data", str(path), "--report", report, "--quiet", "--warmup-days", str(warmup_days)]
    off = dict(os.environ, MT5BRIDGE_CACHE_DIR="off")
    cached = dict(os.environ, MT5BRIDGE_CACHE_DIR=str(folder / "command-cache"))
    t_compiled, _, cpu_compiled = run_command(argv, off)
    run_command(argv, cached)  # fills the cache
    t_cached, _, cpu_cached = run_command(argv, cached)
    t_python, _, cpu_python = run_command(argv, off, python_reader=True)
    t_start, _, cpu_start = run_command([], off)  # the interpreter, the imports and the parser: no command
    ticks = json.loads(Path(report).read_text()).get("ticks", rows)
    return {"file_ticks": rows, "replayed_ticks": ticks, "ticks_per_s": round(rows / t_compiled),
            "seconds": round(t_compiled, 2), "cpu_seconds": round(cpu_compiled, 2),
            "cached_ticks_per_s": round(rows / t_cached), "cached_seconds": round(t_cached, 2),
            "cached_cpu_seconds": round(cpu_cached, 2), "python_reader_ticks_per_s": round(rows / t_python),
            "python_reader_seconds": round(t_python, 2), "python_reader_cpu_seconds": round(cpu_python, 2),
            "speedup": round(t_python / t_compiled, 2), "startup_seconds": round(t_start, 2),
            "startup_cpu_seconds": round(cpu_start, 2)}


def measure_memory(days: float, folder: Path) -> dict:
    symbols = "EURUSD,GBPUSD,USDJPY"
    report = folder / "synthetic.json"
    argv = ["replay", "--synthetic", symbols, "--days", str(days), "--report", str(report), "--quiet",
            "--warmup-days", str(min(14.0, days / 2))]
    seconds, rss_kib, _ = run_command(argv, dict(os.environ))
    # The one-day replay: what any replay costs before its ticks (interpreter, engine, one day of data).
    from mt5bridge.market.synthetic import generate_ticks

    ticks = sum(len(generate_ticks(s, days=days, start="2024-01-01T00:00:00Z", seed=7919 * i))
                for i, s in enumerate(symbols.split(",")))
    _, idle_kib, _ = run_command(["replay", "--synthetic", "EURUSD", "--days", "1", "--warmup-days", "0",
                                  "--report", str(report), "--quiet"], dict(os.environ))
    return {"symbols": symbols, "days": days, "ticks": ticks, "peak_rss_mb": round(rss_kib / 1024, 1),
            "seconds": round(seconds, 1), "one_day_peak_rss_mb": round(idle_kib / 1024, 1),
            "bytes_per_tick": round((rss_kib - idle_kib) * 1024 / ticks, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ticks", type=int, default=2_000_000, help="ticks in the sample files (default 2,000,000)")
    ap.add_argument("--days", type=float, default=200.0, help="days of the 3-symbol synthetic replay (default 200)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small sizes: 20,000 ticks, 5 days, one repeat")
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    args = ap.parse_args()
    if args.quick:
        args.ticks, args.days, args.repeat = 20_000, 5.0, 1

    with tempfile.TemporaryDirectory(prefix="mt5bridge-bench-") as tmp:
        folder = Path(tmp)
        files = write_files(folder, args.ticks)
        out = {"ticks": args.ticks, "formats": measure_formats(files, args.repeat)}
        path, rows = files["tick_csv"]
        out["cached_load"] = measure_cache(path, rows, folder, args.repeat)
        out["replay_command"] = measure_command(path, rows, folder, 0.0 if args.quick else 14.0)
        out["synthetic_replay_memory"] = measure_memory(args.days, folder)

    if not args.json:
        print(f"{'format':24} {'rows':>10} {'MB':>6} {'compiled rows/s':>16} {'Python rows/s':>14} {'x':>6}")
        for name, f in out["formats"].items():
            print(f"{name:24} {f['rows']:>10,} {f['mb']:>6} {f['rows_per_s']:>16,} {f['python_rows_per_s']:>14,}"
                  f" {f['speedup']:>6}")
        c = out["cached_load"]
        print(f"cached load of the tick CSV: {c['rows_per_s']:,} rows/s ({c['seconds']} s, of which SHA-256 "
              f"{c['sha256_seconds']} s); uncached {c['uncached_rows_per_s']:,} rows/s")
        r = out["replay_command"]
        print(f"whole `mt5bridge replay` on {r['file_ticks']:,} ticks: {r['ticks_per_s']:,} ticks/s ({r['seconds']} s,"
              f" CPU {r['cpu_seconds']} s); cached {r['cached_ticks_per_s']:,} ticks/s ({r['cached_seconds']} s);"
              f" Python reader {r['python_reader_ticks_per_s']:,} ticks/s ({r['python_reader_seconds']} s);"
              f" start-up alone {r['startup_seconds']} s")
        m = out["synthetic_replay_memory"]
        print(f"{m['days']:g}-day replay of {m['symbols']} ({m['ticks']:,} ticks): peak {m['peak_rss_mb']:,} MB, "
              f"{m['bytes_per_tick']} bytes per tick above a one-day replay ({m['one_day_peak_rss_mb']} MB)")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
