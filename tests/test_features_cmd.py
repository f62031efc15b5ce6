"""The `mt5bridge features` subcommand, run through the command-line entry point on small generated files."""

from __future__ import annotations

import csv
import sys
from datetime import datetime, timedelta

import numpy as np

from mt5bridge.core.catalog import FEATURE_NAMES, INDICATOR_NAMES
from mt5bridge.cli.entry import build_parser, main
from mt5bridge.cli.features import run

TICK_HEADER = "<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>"
BASE_COLUMNS = ["time", *FEATURE_NAMES, "score", "direction", "confidence", "consensus"]


def needs_engine():
    # The engine is part of the product: a missing build must fail these tests, not skip them.
    import mt5bridge.core._engine  # noqa: F401


def write_m5_bars(path, n: int, start: datetime, seed: int = 7) -> list[datetime]:
    rng = np.random.default_rng(seed)
    price = 1.1
    times = [start + timedelta(minutes=5 * i) for i in range(n)]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("time,open,high,low,close,volume,spread\n")
        for t in times:
            o = price
            c = round(o + rng.normal(0, 0.0008), 5)
            h = round(max(o, c) + abs(rng.normal(0, 0.0004)), 5)
            lo = round(min(o, c) - abs(rng.normal(0, 0.0004)), 5)
            fh.write(f"{t:%Y-%m-%d %H:%M:%S},{o:.5f},{h:.5f},{lo:.5f},{c:.5f},{rng.integers(20, 400)},12\n")
            price = c
    return times


def write_mt5_ticks(path, n: int, start: datetime, seed: int = 3) -> list[datetime]:
    """An MT5 tick export of n quotes, filling only the side that changed, plus LAST-only rows to skip."""
    rng = np.random.default_rng(seed)
    bid, ask = 1.1, 1.1001
    t = start
    times = []
    lines = [TICK_HEADER, f"{t:%Y.%m.%d}\t{t:%H:%M:%S.%f}"[:-3] + f"\t{bid:.5f}\t{ask:.5f}\t\t\t6"]
    times.append(t)
    for i in range(n - 1):
        t += timedelta(milliseconds=int(rng.integers(50, 3000)))
        stamp = f"{t:%Y.%m.%d}\t{t:%H:%M:%S.%f}"[:-3]
        if i % 10 == 5:
            lines.append(f"{stamp}\t\t\t{bid:.5f}\t1\t24")  # a LAST/VOLUME-only tick: not a quote
            continue
        move = round(float(rng.normal(0, 0.00005)), 5)
        if i % 2:
            bid = round(bid + move, 5)
            if bid > ask:  # the bid moved through the ask: both sides change on this tick
                ask = round(bid + 0.00002, 5)
                lines.append(f"{stamp}\t{bid:.5f}\t{ask:.5f}\t\t\t6")
            else:
                lines.append(f"{stamp}\t{bid:.5f}\t\t\t\t2")
        else:
            ask = round(max(bid, ask + move), 5)
            lines.append(f"{stamp}\t\t{ask:.5f}\t\t\t4")
        times.append(t)
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-16")
    return times


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def run_cli(capsys, *argv: str):
    code = main(["features", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.err


# ---------------------------------------------------------------------------------------------------------
# Arguments and errors (no engine needed: the input is checked before the engine is loaded)


def test_registers_the_features_subcommand(tmp_path):
    args = build_parser().parse_args(["features", "--input", "a.csv", "--out", "b.csv", "--utc-offset", "-5"])
    assert args.func is run
    assert (args.input, args.out, args.utc_offset, args.point, args.indicators) == ("a.csv", "b.csv", -5.0, None, False)


def test_bad_row_returns_2_naming_file_and_line(tmp_path, capsys):
    src = tmp_path / "bars.csv"
    src.write_text(
        "time,open,high,low,close,volume\n"
        "2024-01-02 00:00,1.1,1.2,1.0,1.1,5\n"
        "2024-01-02 00:05,1.1,1.0,1.05,1.1,5\n"
    )
    out = tmp_path / "out.csv"
    code, err = run_cli(capsys, "--input", src, "--out", out)
    assert code == 2
    assert err.startswith(f"mt5bridge features: error: {src}:3: high '1.0' is below low '1.05'")
    assert "Traceback" not in err
    assert not out.exists() and not (tmp_path / "out.csv.part").exists()


def test_missing_input_returns_2(tmp_path, capsys):
    code, err = run_cli(capsys, "--input", tmp_path / "none.csv", "--out", tmp_path / "out.csv")
    assert code == 2
    assert f"mt5bridge features: error: {tmp_path / 'none.csv'}: cannot read the file" in err


def test_unknown_timeframe_returns_2(tmp_path, capsys):
    src = tmp_path / "bars.csv"
    write_m5_bars(src, 3, datetime(2024, 1, 2))
    code, err = run_cli(capsys, "--input", src, "--out", tmp_path / "o.csv", "--timeframe", "M2")
    assert code == 2
    assert "mt5bridge features: error: unknown timeframe 'M2'; use one of M1, M5, M15, H1" in err


def test_timeframe_must_match_a_bar_file(tmp_path, capsys):
    src = tmp_path / "bars.csv"
    write_m5_bars(src, 3, datetime(2024, 1, 2))
    code, err = run_cli(capsys, "--input", src, "--out", tmp_path / "o.csv", "--timeframe", "m1")
    assert code == 2
    assert f"--timeframe M1 does not match {src}, whose bars are M5" in err


def test_bad_utc_offset_returns_2(tmp_path, capsys):
    src = tmp_path / "bars.csv"
    write_m5_bars(src, 3, datetime(2024, 1, 2))
    code, err = run_cli(capsys, "--input", src, "--out", tmp_path / "o.csv", "--utc-offset", "30")
    assert code == 2
    assert "--utc-offset 30 is not between -24 and 24 hours" in err


def test_engine_not_built_returns_1(tmp_path, capsys, monkeypatch):
    src = tmp_path / "bars.csv"
    write_m5_bars(src, 3, datetime(2024, 1, 2))
    monkeypatch.setitem(sys.modules, "mt5bridge.core.engine", None)  # makes `import mt5bridge.core.engine` fail
    code, err = run_cli(capsys, "--input", src, "--out", tmp_path / "o.csv")
    assert code == 1
    assert err.startswith("mt5bridge features: error: ")
    assert not (tmp_path / "o.csv").exists()


# ---------------------------------------------------------------------------------------------------------
# With the compiled engine


def test_m5_bar_file_writes_one_row_per_bar(tmp_path, capsys):
    needs_engine()
    src, out = tmp_path / "bars.csv", tmp_path / "features.csv"
    times = write_m5_bars(src, 60, datetime(2024, 1, 2, 8, 0))
    code, err = run_cli(capsys, "--input", src, "--out", out)
    assert code == 0, err
    header, rows = read_csv(out)
    assert header == BASE_COLUMNS
    assert len(rows) == 60  # every bar, the last one included: a bar file's last bar is complete
    assert [r[0] for r in rows] == [f"{t:%Y-%m-%d %H:%M:%S}" for t in times]
    assert all(len(r) == len(header) for r in rows)
    # The shipped model reads M1 and tick-level features that M5 bars cannot rebuild: no direction from them.
    assert {r[header.index("direction")] for r in rows} == {""}
    assert {r[header.index("consensus")] for r in rows} == {""}
    assert {r[header.index("m1_rsi_14")] for r in rows} == {""}
    for r in rows:
        for field in r[1:148] + [r[148], r[150]]:
            if field:
                float(field)
    assert "nan" not in out.read_text()  # NaN is an empty field, never the text "nan"
    assert "" in rows[0][1:148]  # warm-up: undefined features are written as empty fields
    assert f"mt5bridge features: wrote 60 rows to {out} (60 M5 bars, 240 ticks" in err
    assert "M5 bars cannot rebuild" in err and "--allow-expanded-bars" in err
    code, err = run_cli(capsys, "--input", src, "--out", out, "--allow-expanded-bars")
    header, rows = read_csv(out)
    assert code == 0 and {r[header.index("direction")] for r in rows} <= {"BUY", "SELL", "HOLD"}
    assert {r[header.index("consensus")] for r in rows} <= {"UNANIMOUS", "STRONG", "WEAK", "SPLIT"}


def test_bar_file_with_its_own_timeframe_and_utc_offset(tmp_path, capsys):
    needs_engine()
    src, out = tmp_path / "bars.csv", tmp_path / "features.csv"
    times = write_m5_bars(src, 12, datetime(2024, 1, 2, 10, 0))
    code, err = run_cli(capsys, "--input", src, "--out", out, "--timeframe", "M5", "--utc-offset", "2")
    assert code == 0, err
    _, rows = read_csv(out)
    assert [r[0] for r in rows] == [f"{t - timedelta(hours=2):%Y-%m-%d %H:%M:%S}" for t in times]


def test_mt5_tick_export_writes_one_row_per_closed_minute(tmp_path, capsys):
    needs_engine()
    src, out = tmp_path / "ticks.txt", tmp_path / "features.csv"
    times = write_mt5_ticks(src, 800, datetime(2024, 3, 5, 13, 58, 30))
    minutes = sorted({t.replace(second=0, microsecond=0) for t in times})
    code, err = run_cli(capsys, "--input", src, "--out", out, "--indicators", "--utc-offset", "0")
    assert code == 0, err
    header, rows = read_csv(out)
    extra = [n for n in INDICATOR_NAMES if n not in set(FEATURE_NAMES)]
    assert header == BASE_COLUMNS + extra
    assert len(set(header)) == len(header)
    # The last minute is still forming when the file ends: it is not written.
    assert [r[0] for r in rows] == [f"{m:%Y-%m-%d %H:%M:%S}" for m in minutes[:-1]]
    assert f"({len(rows)} M1 bars, {len(times)} ticks" in err


def test_tick_file_on_a_longer_timeframe(tmp_path, capsys):
    needs_engine()
    src, out = tmp_path / "ticks.txt", tmp_path / "features.csv"
    times = write_mt5_ticks(src, 800, datetime(2024, 3, 5, 13, 58, 30))
    starts = sorted({t.replace(minute=t.minute - t.minute % 5, second=0, microsecond=0) for t in times})
    code, err = run_cli(capsys, "--input", src, "--out", out, "--timeframe", "M5", "--utc-offset", "0")
    assert code == 0, err
    _, rows = read_csv(out)
    assert [r[0] for r in rows] == [f"{s:%Y-%m-%d %H:%M:%S}" for s in starts[:-1]]


def test_unwritable_output_returns_2(tmp_path, capsys):
    needs_engine()
    src = tmp_path / "bars.csv"
    write_m5_bars(src, 3, datetime(2024, 1, 2))
    out = tmp_path / "missing-folder" / "o.csv"
    code, err = run_cli(capsys, "--input", src, "--out", out)
    assert code == 2
    assert f"mt5bridge features: error: {out}: cannot write the file" in err



def test_synthetic_market_needs_no_file(tmp_path, capsys):
    out = tmp_path / "synthetic.csv"
    assert main(["features", "--synthetic", "XAUUSD", "--days", "3", "--timeframe", "M15", "--out", str(out)]) == 0
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == BASE_COLUMNS
    # Three calendar days from a Monday, less the last, still-open bar.
    assert len(rows) - 1 == 3 * 24 * 4 - 1
    assert main(["features", "--synthetic", "NOPE", "--out", str(out)]) == 2
    assert "no synthetic profile for 'NOPE'" in capsys.readouterr().err
