"""The compiled price-file reader and the cache of parsed files.

The compiled reader may only ever take a subset of what the Python reader takes, with the very same arrays, and
every file it does not take is read by the Python reader: so every error a trader sees is the Python reader's,
to the line. Held here on every sample and every malformed file of tests/test_marketdata.py, in each encoding,
and on files mutated at random. The cache is attacked the way files really change: rewritten in place to the
same size and modification time, an entry cut short or flipped by a disk, a folder that fills.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import test_marketdata as samples
from conftest import package_process
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mt5bridge.market import cache as cache_module
from mt5bridge.market import readers
from mt5bridge.market.cache import MarketCache
from mt5bridge.market.readers import (
    Bars,
    MarketDataError,
    Ticks,
    parse_market_bytes,
    read_market_file,
)

EXAMPLES = int(os.environ.get("MT5BRIDGE_PROPERTY_EXAMPLES", "300"))

TICK_CSV = (
    "time,bid,ask,volume\n"
    "2024-01-02 00:00:00.100,1.10450,1.10460,3\n"
    "2024-01-02 00:00:00.100,1.10451,1.10461,0\n"
    "2024-01-02T00:00:01.250Z,1.1045,1.1047,\n"
    "2024.01.02 00:00:02,1.10449,1.10461,2.5\n"
    "2024-01-02 00:01,1.10448,1.10462, 7 \n"
    "1704153662,1.10447,1.10463,1\n"
    "1704153662500,.5,1.,1\n"
)
BAR_CSV = (
    "Volume,TIME,close,Open,low,High,Spread\n"
    "10,2024-01-02 00:00,1.105,1.1,1.09,1.11,3\n"
    "4,2024-01-02 01:00:00,1.102,1.105,1.1,1.1055,2\n"
    "0,2024-01-02 03:00:00.000,1.102,1.102,1.102,1.102,0\n"
)
VALID = {
    "mt5_ticks.txt": samples.TICK_EXPORT,
    "mt5_bars.txt": samples.BAR_EXPORT,
    "ticks.csv": TICK_CSV,
    "bars.csv": BAR_CSV,
    "ticks_no_volume.csv": "ASK,time,BID\n1.2,1709528767000,1.1\n1.3,1709528767000,1.2\n",
    "bars_no_spread.csv": "time,open,high,low,close,volume\n2024-01-02 00:00,10,11,9,10.5,1\n"
                          "2024-01-02 00:01,10.5,11,10,10,2\n",
    "trailing_blanks.csv": "time,bid,ask\n1709528767,1.1,1.2\n\n\n   \n",
    "mt5_bars_hhmm.txt": samples.mt5_bars(samples.OK_BAR, samples.NEXT_BAR.replace("00:01:00", "00:01")),
}
ENCODINGS = [("utf-8", "\n"), ("utf-8", "\r\n"), ("utf-8-sig", "\n"), ("utf-16", "\r\n"), ("utf-16-le", "\n")]


def encode(text: str, encoding: str, newline: str) -> bytes:
    return text.replace("\n", newline).encode(encoding)


def python_read(path: str, raw: bytes, offset_ms: int = 0, point=None):
    return parse_market_bytes(path, raw, offset_ms, point, compiled=False)


def outcome(fn):
    """What a reader gives: its arrays, or its error's file, line and reason."""
    try:
        data = fn()
    except MarketDataError as exc:
        return ("error", exc.path, exc.line, exc.reason)
    names = ("times_ms", "bid", "ask", "volume", "source_format") if isinstance(data, Ticks) else (
        "times_ms", "open", "high", "low", "close", "volume", "spread_points", "timeframe_s", "point",
        "source_format", "has_spread")
    values = []
    for name in names:
        value = getattr(data, name)
        if isinstance(value, np.ndarray):
            values.append((name, value.dtype.str, value.tobytes()))  # bit for bit
        else:
            values.append((name, value))
    return (type(data).__name__, tuple(values))


# ---------------------------------------------------------------------------------------------------------
# Identical arrays on every sample


@pytest.mark.parametrize("encoding, newline", ENCODINGS)
@pytest.mark.parametrize("name", sorted(VALID))
def test_compiled_reader_takes_every_sample_with_the_same_arrays(name, encoding, newline):
    raw = encode(VALID[name], encoding, newline)
    compiled = readers._parse_compiled(name, raw, 0, None)
    assert compiled is not None, "the compiled reader declined a plain file"
    assert outcome(lambda: compiled) == outcome(lambda: python_read(name, raw))


@pytest.mark.parametrize("offset_hours, point", [(2.0, None), (-5.5, None), (3.0, 0.0001)])
def test_offset_and_point_apply_the_same_way(tmp_path, offset_hours, point):
    for name in ("mt5_bars.txt", "bars.csv", "ticks.csv"):
        raw = VALID[name].encode()
        offset_ms = round(offset_hours * 3_600_000)
        expected = outcome(lambda: python_read(name, raw, offset_ms, point))
        compiled = readers._parse_compiled(name, raw, offset_ms, point)
        if expected[0] == "error":  # bars off their boundary with a half-hour offset: Python says where
            assert compiled is None
        else:
            assert outcome(lambda: compiled) == expected


def test_the_compiled_reader_answers_read_market_file(tmp_path, monkeypatch):
    path = tmp_path / "EURUSD.csv"
    path.write_text(TICK_CSV)

    def no_python(*args, **kwargs):
        raise AssertionError("the Python reader was asked")

    monkeypatch.setattr(readers, "_parse_python", no_python)
    assert len(read_market_file(path, cache=False)) == 7


# ---------------------------------------------------------------------------------------------------------
# Identical errors on every malformed file: the compiled reader declines, the Python reader explains


def _malformed():
    cases = []
    for test in (samples.test_mt5_rows_rejected, samples.test_csv_rows_rejected):
        mark = next(m for m in test.pytestmark if m.name == "parametrize")
        cases += [(text, ".csv" if test is samples.test_csv_rows_rejected else ".txt") for text, _, _ in mark.args[1]]
    cases += [
        (samples.mt5_ticks("2024.01.02\t00:00:00.100\t1.10450\t\t\t\t2"), ".txt"),  # no quote at all
        ("time,open,high,low,close,volume\n2024-01-01 00:00,1,1,1,1,1\n2024-01-01 00:30,1,1,1,1,1\n", ".csv"),
        ("time,bid,ask\n1709528767,1.1,1.2\n1709528768,\xff,1.2\n", ".csv"),
        ("time,bid,ask\n1709528767,1.1,1.2\r1709528768,1.1,1.2\n", ".csv"),  # a lone carriage return
        ("time,bid,ask\n1709528767,1e0,1.2\n", ".csv"),  # accepted by Python, left to it
    ]
    return cases


MALFORMED = _malformed()


def test_every_malformed_sample_is_collected():
    assert len(MALFORMED) >= 55


@pytest.mark.parametrize("encoding, newline", ENCODINGS)
@pytest.mark.parametrize("text, suffix", MALFORMED)
def test_every_malformed_file_gives_the_python_readers_error(tmp_path, text, suffix, encoding, newline):
    try:
        raw = encode(text, encoding, newline)
    except UnicodeEncodeError:
        pytest.skip("not encodable")
    path = tmp_path / ("data" + suffix)
    path.write_bytes(raw)
    expected = outcome(lambda: python_read(str(path), raw))
    got = outcome(lambda: read_market_file(path, cache=False))
    assert got == expected
    if expected[0] == "error":
        assert readers._parse_compiled(str(path), raw, 0, None) is None


_ALPHABET = st.sampled_from(list("0123456789.:- \t,\r\nTZe+") + ["", "\u00e9", "1.1", "2024.01.02", "00:00:00.100"])


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(VALID)), edits=st.lists(
    st.tuples(st.integers(0, 10_000), st.integers(0, 3), _ALPHABET), min_size=1, max_size=4))
def test_mutated_files_read_the_same_by_both(name, edits):
    """Any file, however damaged: the compiled reader takes it with the same arrays, or leaves it to Python."""
    text = VALID[name]
    for at, cut, insert in edits:
        at %= len(text) + 1
        text = text[:at] + insert + text[at + cut:]
    raw = text.encode("utf-8")
    compiled = readers._parse_compiled(name, raw, 0, None)
    expected = outcome(lambda: python_read(name, raw))
    if compiled is not None:
        assert outcome(lambda: compiled) == expected
    assert outcome(lambda: parse_market_bytes(name, raw, 0, None)) == expected


def test_long_mantissas_and_exponents_are_left_to_python():
    text = "time,bid,ask\n1709528767,1.0850000000000002,1.0851\n1709528768,1.085,1.0851e0\n"
    raw = text.encode()
    assert readers._parse_compiled("t.csv", raw, 0, None) is None
    ticks = parse_market_bytes("t.csv", raw, 0, None)
    assert ticks.bid.tolist() == [1.0850000000000002, 1.085]


def test_random_prices_parse_to_pythons_floats():
    rng = np.random.default_rng(11)
    prices = [f"{p:.{d}f}" for p, d in zip(rng.uniform(0.0001, 99999, 3000), rng.integers(0, 9, 3000))]
    prices = [p for p in prices if float(p) > 0]
    text = "time,bid,ask\n" + "".join(f"{1709528767 + i},{p},{p}\n" for i, p in enumerate(prices))
    ticks = readers._parse_compiled("t.csv", text.encode(), 0, None)
    assert ticks is not None
    assert ticks.bid.tolist() == [float(p) for p in prices]


# ---------------------------------------------------------------------------------------------------------
# The cache


def tick_file(path: Path, n: int = 400, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    bid = 1.1 + np.cumsum(rng.integers(-2, 3, n)) * 1e-5
    lines = [f"{1_704_153_600 + i},{b:.5f},{b + 0.0001:.5f},1\n" for i, b in enumerate(bid)]
    path.write_text("time,bid,ask,volume\n" + "".join(lines))
    return path


@pytest.fixture
def store(tmp_path):
    return MarketCache(tmp_path / "cache", min_file_bytes=0)


def test_cache_hit_skips_parsing(tmp_path, store, monkeypatch):
    path = tick_file(tmp_path / "EURUSD.csv")
    first = read_market_file(path, cache=store)
    assert len(store.entries()) == 1

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed again")

    monkeypatch.setattr(readers, "parse_market_bytes", no_parsing)
    again = read_market_file(path, cache=store)
    assert outcome(lambda: again) == outcome(lambda: first)
    again.bid[0] = 99.0  # the arrays are the caller's to change: the entry is untouched
    assert read_market_file(path, cache=store).bid[0] == first.bid[0]


def test_bars_are_cached_with_their_timeframe_and_point(tmp_path, store):
    path = tmp_path / "EURUSD_M5.txt"
    path.write_text(samples.BAR_EXPORT)
    first = read_market_file(path, cache=store, utc_offset_hours=2)
    again = read_market_file(path, cache=store, utc_offset_hours=2)
    assert isinstance(again, Bars) and again.timeframe_s == 300 and again.point == 1e-05
    assert outcome(lambda: again) == outcome(lambda: first)
    other = read_market_file(path, cache=store, utc_offset_hours=3)  # another offset: another entry
    assert (first.times_ms - other.times_ms).tolist() == [3_600_000] * 3
    assert read_market_file(path, cache=store, point=0.001).point == 0.001
    assert len(store.entries()) == 3
    plain = tmp_path / "EURUSD_H1.csv"  # no spread column: said so after a cache hit too
    plain.write_text("time,open,high,low,close,volume\n2024-01-02 00:00,1.1,1.2,1.0,1.1,5\n"
                     "2024-01-02 01:00,1.1,1.2,1.0,1.1,5\n")
    first = read_market_file(plain, cache=store)
    again = read_market_file(plain, cache=store)
    assert (again.has_spread, again.source_format) == (first.has_spread, first.source_format) == (False, "CSV")
    assert len(store.entries()) == 4


def test_a_file_rewritten_to_the_same_size_and_time_is_read_again(tmp_path, store):
    path = tick_file(tmp_path / "EURUSD.csv")
    before = read_market_file(path, cache=store)
    st_before = path.stat()
    text = path.read_text()
    row = text.splitlines()[12]
    fields = row.split(",")
    fields[1] = fields[1][:-1] + ("1" if fields[1][-1] != "1" else "2")  # one price, one digit, same length
    changed = text.replace(row, ",".join(fields), 1)
    assert len(changed) == len(text) and changed != text
    path.write_text(changed)
    os.utime(path, ns=(st_before.st_atime_ns, st_before.st_mtime_ns))
    assert path.stat().st_size == st_before.st_size and path.stat().st_mtime_ns == st_before.st_mtime_ns
    after = read_market_file(path, cache=store)
    assert after.bid[11] != before.bid[11]
    assert after.bid[11] == float(fields[1])
    assert len(store.entries()) == 2


@pytest.mark.parametrize("damage", ["flip a byte of the prices", "cut short", "garbage", "empty", "header only",
                                    "longer"])
def test_a_damaged_entry_is_ignored_and_rebuilt(tmp_path, store, damage, caplog):
    path = tick_file(tmp_path / "EURUSD.csv")
    good = read_market_file(path, cache=store)
    (entry,) = store.entries()
    blob = bytearray(entry.read_bytes())
    if damage == "flip a byte of the prices":
        blob[-100] ^= 0x10
    elif damage == "cut short":
        blob = blob[: len(blob) - 7]
    elif damage == "garbage":
        blob = bytearray(os.urandom(len(blob)))
    elif damage == "empty":
        blob = bytearray()
    elif damage == "header only":
        blob = blob[: blob.index(b"\n", len(cache_module.MAGIC)) + 1]
    else:
        blob += b"\0" * 8
    entry.write_bytes(bytes(blob))
    again = read_market_file(path, cache=store)
    assert outcome(lambda: again) == outcome(lambda: good)
    assert "market cache entry" in caplog.text
    (rebuilt,) = store.entries()
    assert store.load(rebuilt.name[: -len(cache_module.SUFFIX)]) is not None  # sound again


def test_the_cache_folder_stays_under_its_limit(tmp_path):
    one = tick_file(tmp_path / "probe.csv")
    probe = MarketCache(tmp_path / "probe", min_file_bytes=0)
    read_market_file(one, cache=probe)
    entry_size = probe.size()
    store = MarketCache(tmp_path / "cache", max_bytes=int(entry_size * 2.5), min_file_bytes=0)
    paths = [tick_file(tmp_path / f"S{i}.csv", seed=i) for i in range(5)]
    for i, p in enumerate(paths):
        read_market_file(p, cache=store)
        for e in store.entries():  # distinct use times, as on a real disk
            os.utime(e, ns=(0, (10 + i) * 10**9 if e.stat().st_mtime_ns > 10**15 else e.stat().st_mtime_ns))
        assert store.size() <= store.max_bytes
    assert len(store.entries()) == 2
    # The two most recently used remain: reading them is a hit.
    kept = {e.name for e in store.entries()}
    for p in paths[-2:]:
        key = store.key(p.read_bytes(), 0, None)
        assert key + cache_module.SUFFIX in kept


def test_entries_of_older_readers_go_at_the_next_write(tmp_path, store):
    store.folder.mkdir(parents=True)
    stale = store.folder / ("0" * 64 + f"-v{cache_module.READER_VERSION - 1}-o0-pauto" + cache_module.SUFFIX)
    stale.write_bytes(b"made by an older reader")
    read_market_file(tick_file(tmp_path / "EURUSD.csv"), cache=store)
    assert not stale.exists() and len(store.entries()) == 1


def test_temporary_files_a_killed_write_left_go_at_the_next_write(tmp_path, store):
    store.folder.mkdir(parents=True)
    name = f"-v{cache_module.READER_VERSION}-o0-pauto{cache_module.SUFFIX}"
    left = store.folder / ("." + "1" * 64 + name + ".4242.tmp")
    left.write_bytes(b"\0" * 1000)
    hours_ago = time.time() - 2 * 3600
    os.utime(left, (hours_ago, hours_ago))
    under_way = store.folder / ("." + "2" * 64 + name + ".4243.tmp")
    under_way.write_bytes(b"\0" * 1000)  # another worker writing now: left alone
    read_market_file(tick_file(tmp_path / "EURUSD.csv"), cache=store)
    assert not left.exists() and under_way.exists() and len(store.entries()) == 1


def test_small_files_are_not_cached_and_a_folder_that_cannot_be_written_is_no_failure(tmp_path, caplog):
    path = tick_file(tmp_path / "EURUSD.csv")
    assert read_market_file(path, cache=MarketCache(tmp_path / "c", min_file_bytes=1 << 20)) is not None
    assert not (tmp_path / "c").exists()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    ticks = read_market_file(path, cache=MarketCache(blocker / "cache", min_file_bytes=0))
    assert len(ticks) == 400
    assert "cannot be written" in caplog.text


def test_default_folder_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MT5BRIDGE_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("MT5BRIDGE_CACHE_MB", "12")
    store = cache_module.default_cache()
    assert store.folder == tmp_path / "mine" and store.max_bytes == 12_000_000
    monkeypatch.setenv("MT5BRIDGE_CACHE_DIR", "off")
    assert cache_module.default_cache() is None
    monkeypatch.delenv("MT5BRIDGE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert cache_module.default_folder() == tmp_path / "xdg" / "mt5bridge" / "market"


def test_a_second_replay_command_reads_the_cache(tmp_path):
    """The whole command, twice, in fresh processes: the second finds the entry and writes the same report."""
    path = tick_file(tmp_path / "EURUSD_ticks.csv", n=40_000)
    assert path.stat().st_size > cache_module.DEFAULT_MIN_FILE_BYTES
    env = dict(os.environ, MT5BRIDGE_CACHE_DIR=str(tmp_path / "cache"))
    reports = []
    for i in range(2):
        report = tmp_path / f"r{i}.json"
        cmd, base_env, cwd = package_process(["replay", "--data", str(path), "--report", str(report), "--quiet",
                                              "--warmup-days", "0"], tmp_path)
        run = subprocess.run(cmd, env=dict(base_env, MT5BRIDGE_CACHE_DIR=env["MT5BRIDGE_CACHE_DIR"]), cwd=cwd,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        written = json.loads(report.read_text())
        written.pop("generated_at")
        reports.append(written)
        entries = list((tmp_path / "cache").glob("*" + cache_module.SUFFIX))
        assert len(entries) == 1
        if i == 0:
            made = entries[0].stat().st_mtime_ns
            os.utime(entries[0], ns=(0, made - 10**9))
    assert entries[0].stat().st_mtime_ns > made - 10**9  # touched by the hit
    assert reports[0] == reports[1]
