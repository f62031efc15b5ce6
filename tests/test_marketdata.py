"""Reading price history files: MT5 tick and bar exports, plain CSV, their checks, and bars expanded to ticks."""

from __future__ import annotations

import pickle
from datetime import datetime, timezone

import numpy as np
import pytest

from mt5bridge.market.readers import (
    Bars,
    MarketDataError,
    Ticks,
    expand_bars_to_ticks,
    infer_timeframe,
    read_market_file,
)

TICK_HEADER = "<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>"
BAR_HEADER = "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"


def utc_ms(text: str) -> int:
    """Epoch milliseconds of an ISO time read as UTC, computed independently of the module under test."""
    return round(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def write(tmp_path, text: str, name: str = "data.txt", encoding: str = "utf-8", newline: str = "\n"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return path


def mt5_ticks(*rows: str) -> str:
    return "\n".join((TICK_HEADER,) + rows) + "\n"


def mt5_bars(*rows: str) -> str:
    return "\n".join((BAR_HEADER,) + rows) + "\n"


def expect_error(path, line: int, *fragments: str, **kwargs) -> MarketDataError:
    with pytest.raises(MarketDataError) as info:
        read_market_file(path, **kwargs)
    err = info.value
    assert err.path == str(path)
    assert err.line == line, str(err)
    assert str(err).startswith(f"{path}:{line}: ")
    for fragment in fragments:
        assert fragment in err.reason, str(err)
    return err


# ---------------------------------------------------------------------------------------------------------
# MT5 tick export

# Each row fills only what changed. Rows 2-3 come before the ask is known; row 5 changes neither side (a
# LAST/VOLUME-only tick, flags 24); rows 6 and 7 carry the other side forward.
TICK_EXPORT = mt5_ticks(
    "2024.01.02\t00:00:00.100\t1.10450\t\t\t\t2",
    "2024.01.02\t00:00:00.150\t1.10451\t\t\t\t2",
    "2024.01.02\t00:00:00.200\t\t1.10460\t\t\t4",
    "2024.01.02\t00:00:01.000\t\t\t1.10455\t3\t24",
    "2024.01.02\t00:00:01.250\t1.10452\t\t\t\t2",
    "2024.01.02\t00:00:02\t\t1.10470\t\t5\t4",
    "2024.01.02\t00:00:02\t1.10449\t1.10461\t\t\t6",
)


def test_mt5_ticks_carry_the_unchanged_side_and_skip_non_quotes(tmp_path):
    ticks = read_market_file(write(tmp_path, TICK_EXPORT, newline="\r\n"))
    assert isinstance(ticks, Ticks)
    assert ticks.times_ms.dtype == np.int64 and ticks.bid.dtype == np.float64
    base = utc_ms("2024-01-02T00:00:00")
    assert ticks.times_ms.tolist() == [base + 200, base + 1250, base + 2000, base + 2000]
    assert ticks.bid.tolist() == [1.10451, 1.10452, 1.10452, 1.10449]
    assert ticks.ask.tolist() == [1.10460, 1.10460, 1.10470, 1.10461]
    # An empty VOLUME counts the tick once; a positive one is kept.
    assert ticks.volume.tolist() == [1.0, 1.0, 5.0, 1.0]


def test_mt5_tick_export_in_utf16_with_bom(tmp_path):
    path = write(tmp_path, TICK_EXPORT, encoding="utf-16", newline="\r\n")
    assert path.read_bytes()[:2] == b"\xff\xfe"
    utf16 = read_market_file(path)
    plain = read_market_file(write(tmp_path, TICK_EXPORT, name="plain.txt"))
    assert utf16.times_ms.tolist() == plain.times_ms.tolist()
    assert utf16.bid.tolist() == plain.bid.tolist() and utf16.ask.tolist() == plain.ask.tolist()


def test_utf8_with_bom(tmp_path):
    ticks = read_market_file(write(tmp_path, TICK_EXPORT, encoding="utf-8-sig"))
    assert len(ticks) == 4


def test_utc_offset_is_subtracted(tmp_path):
    path = write(tmp_path, TICK_EXPORT)
    plain = read_market_file(path)
    server = read_market_file(path, utc_offset_hours=2)
    assert (plain.times_ms - server.times_ms).tolist() == [2 * 3_600_000] * 4
    west = read_market_file(path, utc_offset_hours=-5.5)
    assert (west.times_ms - plain.times_ms).tolist() == [5 * 3_600_000 + 1_800_000] * 4


def test_tick_file_without_any_quote(tmp_path):
    path = write(tmp_path, mt5_ticks("2024.01.02\t00:00:00.100\t1.10450\t\t\t\t2"))
    expect_error(path, 0, "no row gives both BID and ASK")


# ---------------------------------------------------------------------------------------------------------
# MT5 bar export

BAR_EXPORT = mt5_bars(
    "2024.01.02\t00:00:00\t1.10450\t1.10500\t1.10400\t1.10480\t120\t0\t12",
    "2024.01.02\t00:05:00\t1.10480\t1.10490\t1.10300\t1.1035\t80\t0\t10",
    "2024.01.02\t00:15:00\t1.10350\t1.10360\t1.10340\t1.10340\t7\t0\t0",
)


def test_mt5_bars(tmp_path):
    bars = read_market_file(write(tmp_path, BAR_EXPORT), utc_offset_hours=2)
    assert isinstance(bars, Bars)
    start = utc_ms("2024-01-01T22:00:00")
    assert bars.times_ms.tolist() == [start, start + 300_000, start + 900_000]
    assert bars.open.tolist() == [1.1045, 1.1048, 1.1035]
    assert bars.high.tolist() == [1.105, 1.1049, 1.1036]
    assert bars.low.tolist() == [1.104, 1.103, 1.1034]
    assert bars.close.tolist() == [1.1048, 1.1035, 1.1034]
    assert bars.volume.tolist() == [120.0, 80.0, 7.0]  # TICKVOL, not VOL
    assert bars.spread_points.tolist() == [12.0, 10.0, 0.0]
    assert bars.timeframe_s == 300
    assert bars.point == 1e-05  # five decimals written


def test_point_given_overrides_inference(tmp_path):
    bars = read_market_file(write(tmp_path, BAR_EXPORT), point=0.0001)
    assert bars.point == 0.0001


# ---------------------------------------------------------------------------------------------------------
# Plain CSV


def test_csv_bars_any_column_order_and_case(tmp_path):
    text = (
        "Volume,TIME,close,Open,low,High,Spread\n"
        "10,2024-01-02 00:00,1.105,1.1,1.09,1.11,3\n"
        "4,2024-01-02 01:00:00,1.102,1.105,1.1,1.1055,2\n"
    )
    bars = read_market_file(write(tmp_path, text, "bars.csv"))
    start = utc_ms("2024-01-02T00:00:00")
    assert bars.times_ms.tolist() == [start, start + 3_600_000]
    assert bars.open.tolist() == [1.1, 1.105]
    assert bars.high.tolist() == [1.11, 1.1055]
    assert bars.low.tolist() == [1.09, 1.1]
    assert bars.close.tolist() == [1.105, 1.102]
    assert bars.volume.tolist() == [10.0, 4.0]
    assert bars.spread_points.tolist() == [3.0, 2.0]
    assert bars.timeframe_s == 3600
    assert bars.point == 1e-04  # the most decimals in any price column: 1.1055


def test_csv_bars_without_spread(tmp_path):
    text = "time,open,high,low,close,volume\n2024-01-02 00:00,10,11,9,10.5,1\n2024-01-02 00:01,10.5,11,10,10,2\n"
    bars = read_market_file(write(tmp_path, text, "bars.csv"))
    assert bars.spread_points.tolist() == [0.0, 0.0]
    assert bars.timeframe_s == 60
    assert bars.point == 0.1


@pytest.mark.parametrize(
    "written, iso",
    [
        ("2024-03-04 05:06", "2024-03-04T05:06:00"),
        ("2024-03-04 05:06:07", "2024-03-04T05:06:07"),
        ("2024-03-04 05:06:07.089", "2024-03-04T05:06:07.089"),
        ("2024-03-04T05:06:07.5Z", "2024-03-04T05:06:07.500"),
        ("2024-03-04T05:06Z", "2024-03-04T05:06:00"),
        ("2024.03.04 05:06:07.123", "2024-03-04T05:06:07.123"),
        ("2024-02-29 23:59:59.999", "2024-02-29T23:59:59.999"),
        ("1709528767", "2024-03-04T05:06:07"),  # epoch seconds
        ("1709528767089", "2024-03-04T05:06:07.089"),  # epoch milliseconds
    ],
)
def test_csv_time_forms(tmp_path, written, iso):
    ticks = read_market_file(write(tmp_path, f"time,bid,ask\n{written},1.5,1.6\n", "ticks.csv"))
    assert ticks.times_ms.tolist() == [utc_ms(iso)]


def test_csv_ticks_volume_optional(tmp_path):
    text = "ASK,time,BID\n1.2,1709528767000,1.1\n1.3,1709528767000,1.2\n"
    ticks = read_market_file(write(tmp_path, text, "t.csv"))
    assert ticks.bid.tolist() == [1.1, 1.2]
    assert ticks.ask.tolist() == [1.2, 1.3]
    assert ticks.volume.tolist() == [1.0, 1.0]
    text = "time,bid,ask,volume\n1709528767,1.1,1.2,7\n1709528768,1.1,1.2,\n"
    ticks = read_market_file(write(tmp_path, text, "v.csv"))
    assert ticks.volume.tolist() == [7.0, 1.0]


def test_trailing_blank_lines_are_fine(tmp_path):
    text = "time,bid,ask\n1709528767,1.1,1.2\n\n\n   \n"
    assert len(read_market_file(write(tmp_path, text, "t.csv"))) == 1


# ---------------------------------------------------------------------------------------------------------
# Rejected content: the right line and a reason naming the column and the value

OK_TICK = "2024.01.02\t00:00:00.100\t1.10450\t1.10460\t\t\t6"
OK_BAR = "2024.01.02\t00:00:00\t1.10450\t1.10500\t1.10400\t1.10480\t120\t0\t12"
NEXT_BAR = "2024.01.02\t00:01:00\t1.10480\t1.10500\t1.10400\t1.10450\t50\t0\t12"


@pytest.mark.parametrize(
    "text, line, fragments",
    [
        (mt5_ticks(OK_TICK, "2024.01.02\t00:00:00.200\t1.10450\t1.10460\t\t6"), 3, ["expected 7", "found 6"]),
        (mt5_ticks(OK_TICK, "2024.01.02\t00:00:00.200\tabc\t\t\t\t2"), 3, ["BID 'abc' is not a number"]),
        (mt5_ticks(OK_TICK, "2024.01.02\t00:00:00.200\t\t1.1x\t\t\t4"), 3, ["ASK '1.1x' is not a number"]),
        (mt5_ticks(OK_TICK, "2024.01.02\t00:00:00.200\t\t\t\tmany\t8"), 3, ["VOLUME 'many' is not a number"]),
        (mt5_ticks(OK_TICK, "2024.01.02\t24:00:00.200\t1.1\t\t\t\t2"), 3, ["TIME '24:00:00.200' is not a time"]),
        (mt5_ticks(OK_TICK, "2024.02.30\t00:00:00.200\t1.1\t\t\t\t2"), 3, ["DATE '2024.02.30' is not a date"]),
        (mt5_ticks(OK_TICK, "\t00:00:00.200\t1.1\t\t\t\t2"), 3, ["DATE '' is not a date"]),
        (mt5_ticks(OK_TICK, "2024.01.02\t\t1.1\t\t\t\t2"), 3, ["TIME '' is not a time"]),
        (mt5_ticks(OK_TICK, "2024.01.02\t00:00:00.200\tnan\t\t\t\t2"), 3, ["BID 'nan'", "positive finite price"]),
        (mt5_ticks(OK_TICK, "2024.01.02\t00:00:00.200\t\tinf\t\t\t4"), 3, ["ASK 'inf'", "positive finite price"]),
        (mt5_ticks(OK_TICK, "2024.01.02\t00:00:00.200\t0\t\t\t\t2"), 3, ["BID '0'", "positive finite price"]),
        (mt5_ticks(OK_TICK, "2024.01.02\t00:00:00.200\t-1.1\t\t\t\t2"), 3, ["BID '-1.1'", "positive"]),
        (mt5_ticks(OK_TICK, "2024.01.02\t00:00:00.200\t1.10470\t\t\t\t2"), 3, ["BID 1.1047 is above ASK 1.1046"]),
        (mt5_ticks(OK_TICK, "2024.01.02\t00:00:00.200\t\t\t\t-2\t8"), 3, ["VOLUME '-2' is negative"]),
        (
            mt5_ticks(OK_TICK, "2024.01.02\t00:00:00.050\t1.1\t\t\t\t2"),
            3,
            ["'2024.01.02 00:00:00.050' is earlier than '2024.01.02 00:00:00.100' on line 2"],
        ),
        (mt5_ticks(OK_TICK, "", OK_TICK), 3, ["blank line inside the data"]),
        (mt5_bars(OK_BAR, "2024.01.02\t00:01:00\t1.1\t1.2\t1.0\t1.1\t5\t0"), 3, ["expected 9", "found 8"]),
        (
            mt5_bars(OK_BAR, "2024.01.02\t00:01:00\t1.10480\t1.10470\t1.10400\t1.10450\t50\t0\t12"),
            3,
            ["HIGH '1.10470' is below OPEN '1.10480'"],
        ),
        (
            mt5_bars(OK_BAR, "2024.01.02\t00:01:00\t1.10450\t1.10470\t1.10400\t1.10480\t50\t0\t12"),
            3,
            ["HIGH '1.10470' is below CLOSE '1.10480'"],
        ),
        (
            mt5_bars(OK_BAR, "2024.01.02\t00:01:00\t1.10450\t1.10500\t1.10460\t1.10480\t50\t0\t12"),
            3,
            ["LOW '1.10460' is above OPEN '1.10450'"],
        ),
        (
            mt5_bars(OK_BAR, "2024.01.02\t00:01:00\t1.10450\t1.10450\t1.10460\t1.10450\t50\t0\t12"),
            3,
            ["HIGH '1.10450' is below LOW '1.10460'"],
        ),
        (mt5_bars(OK_BAR, NEXT_BAR.replace("\t50\t", "\t-50\t")), 3, ["TICKVOL '-50' is negative"]),
        (mt5_bars(OK_BAR, NEXT_BAR[: -len("12")] + "-3"), 3, ["SPREAD '-3' is negative"]),
        (mt5_bars(OK_BAR, NEXT_BAR.replace("1.10480", "1.1O480")), 3, ["OPEN '1.1O480' is not a number"]),
        (
            mt5_bars(NEXT_BAR, OK_BAR),
            3,
            ["bar time '2024.01.02 00:00:00' is not after '2024.01.02 00:01:00' on line 2"],
        ),
        (mt5_bars(OK_BAR, OK_BAR), 3, ["duplicate bar time '2024.01.02 00:00:00'", "line 2"]),
        (mt5_bars("\t" + OK_BAR.split("\t", 1)[1]), 2, ["DATE '' is not a date"]),
        (mt5_bars(OK_BAR.replace("00:00:00", "")), 2, ["TIME '' is not a time"]),
        (mt5_bars(OK_BAR, NEXT_BAR.replace("1.10500", "nan")), 3, ["HIGH 'nan' is not a positive finite price"]),
        (
            mt5_bars(OK_BAR, NEXT_BAR, "2024.01.02\t00:02:30\t1.1045\t1.105\t1.104\t1.1045\t50\t0\t12"),
            4,
            ["'2024.01.02 00:02:30' does not start a M1 bar"],
        ),
    ],
)
def test_mt5_rows_rejected(tmp_path, text, line, fragments):
    expect_error(write(tmp_path, text), line, *fragments)


def test_mt5_bar_time_without_seconds(tmp_path):
    bars = read_market_file(write(tmp_path, mt5_bars(OK_BAR, NEXT_BAR.replace("00:01:00", "00:01"))))
    assert np.diff(bars.times_ms).tolist() == [60_000]


@pytest.mark.parametrize(
    "text, line, fragments",
    [
        ("time,bid,ask\n1709528767,1.1\n", 2, ["expected 3 comma-separated columns (time, bid, ask), found 2"]),
        ("time,bid,ask\n2024-13-01 00:00,1.1,1.2\n", 2, ["time '2024-13-01 00:00' is not a time", "YYYY-MM-DD"]),
        ("time,bid,ask\n2024-01-01 00:00:61,1.1,1.2\n", 2, ["time '2024-01-01 00:00:61' is not a time"]),
        ("time,bid,ask\nyesterday,1.1,1.2\n", 2, ["time 'yesterday' is not a time"]),
        ("time,bid,ask\n1709528767,1.1,1.0\n", 2, ["bid '1.1' is above ask '1.0'"]),
        ("time,bid,ask\n1709528767,1.1,1.2\n1709528767,,1.2\n", 3, ["bid '' is not a number"]),
        ("time,bid,ask,volume\n1709528767,1.1,1.2,-1\n", 2, ["volume '-1' is negative"]),
        ("time,bid,ask\n1709528767,1.1,1.2\n1709528766,1.1,1.2\n", 3, ["'1709528766' is earlier than '1709528767'"]),
        (
            "time,open,high,low,close,volume,spread\n2024-01-01 00:00,1,1,1,1,1,-2\n",
            2,
            ["spread '-2' is negative"],
        ),
        ("time,open,high,low,close,volume\n2024-01-01 00:00,1,1,1,1,-1\n", 2, ["volume '-1' is negative"]),
        ("time,open,high,low,close,volume\n2024-01-01 00:00,1,2,0,1,1\n", 2, ["low '0' is not a positive"]),
        (
            "time,open,high,low,close,volume\n2024-01-01 00:00,1,2,1,1,1\n2024-01-01 00:00:00,1,2,1,1,1\n",
            3,
            ["duplicate bar time '2024-01-01 00:00:00'", "line 2"],
        ),
        ("", 0, ["the file is empty"]),
        ("\n\n", 0, ["the file is empty"]),
        ("time,bid,ask\n", 0, ["header but no data rows"]),
        (TICK_HEADER + "\n\n", 0, ["header but no data rows"]),
        (BAR_HEADER + "\n", 0, ["header but no data rows"]),
        (
            "date;bid;ask\n2024-01-01;1;2\n",
            1,
            ["unrecognised header 'date;bid;ask'", "<DATE>\\t<TIME>", "time,bid,ask"],
        ),
        ("<DATE>\t<TIME>\t<BID>\t<ASK>\n", 1, ["unrecognised header", "accepted headers"]),
        ("time,bid,ask,last\n1,1,1,1\n", 1, ["unexpected column(s) 'last'", "time,bid,ask[,volume]"]),
        ("time,open,high,low,close,volume,tickvol,real\n", 1, ["unexpected column(s) 'tickvol', 'real'"]),
        ("time,open,high,low,close\n", 1, ["needs the column(s) volume"]),
        ("time,bid,bid,ask\n", 1, ["column 'bid' appears more than once"]),
    ],
)
def test_csv_rows_rejected(tmp_path, text, line, fragments):
    expect_error(write(tmp_path, text, "data.csv"), line, *fragments)


def test_error_names_file_line_and_reason(tmp_path):
    path = write(tmp_path, "time,bid,ask\n1709528767,1.1,1.2\n1709528768,x,1.2\n", "t.csv")
    err = expect_error(path, 3, "bid 'x' is not a number")
    assert str(err) == f"{path}:3: {err.reason}"
    assert isinstance(err, ValueError)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.path, copy.line, copy.reason) == (err.path, err.line, err.reason)


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"time,bid,ask\n1709528767,1.1,1.2\n1709528768,\xff,1.2\n")
    expect_error(path, 3, "not readable as utf-8")


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_market_file(tmp_path / "nope.csv")


# ---------------------------------------------------------------------------------------------------------
# Timeframe inference


def minutes(*offsets: float) -> np.ndarray:
    return np.array([round(m * 60_000) for m in offsets], dtype=np.int64)


@pytest.mark.parametrize(
    "times, expected",
    [
        (minutes(0, 1, 2, 3, 10, 11), 60),
        (minutes(0, 5, 10, 15, 60 * 48, 60 * 48 + 5), 300),
        (minutes(0, 15, 30, 45, 60, 61 * 60, 62 * 60), 900),
        (minutes(0, 60, 120, 180, 60 * 66, 60 * 67), 3600),
    ],
)
def test_infer_timeframe(times, expected):
    assert infer_timeframe(times, "f.csv") == expected


def test_infer_timeframe_rejects_other_periods():
    with pytest.raises(MarketDataError) as info:
        infer_timeframe(minutes(0, 2, 4, 6, 8), "f.csv")
    err = info.value
    assert (err.path, err.line) == ("f.csv", 0)
    assert "most common gap between bars is 120 s" in err.reason
    assert "M1 (60 s), M5 (300 s), M15 (900 s), H1 (3600 s)" in err.reason


def test_infer_timeframe_needs_two_bar_times():
    with pytest.raises(MarketDataError, match="f.csv:0: cannot infer the timeframe from 1 bar"):
        infer_timeframe(minutes(0), "f.csv")


def test_bar_file_of_an_unsupported_timeframe(tmp_path):
    text = "time,open,high,low,close,volume\n2024-01-01 00:00,1,1,1,1,1\n2024-01-01 00:30,1,1,1,1,1\n"
    expect_error(write(tmp_path, text, "b.csv"), 0, "1800 s", "supported timeframes")


# ---------------------------------------------------------------------------------------------------------
# Bars expanded to ticks


def rebuild_bars(ticks: Ticks, timeframe_s: int):
    """Bars of one timeframe from ticks: first, highest, lowest and last bid, and summed volume per period."""
    period = timeframe_s * 1000
    bucket = ticks.times_ms // period
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(bucket)]
    return (
        bucket[starts] * period,
        ticks.bid[starts],
        np.maximum.reduceat(ticks.bid, starts),
        np.minimum.reduceat(ticks.bid, starts),
        ticks.bid[ends - 1],
        np.add.reduceat(ticks.volume, starts),
    )


def random_bars(n: int, timeframe_s: int, seed: int) -> Bars:
    rng = np.random.default_rng(seed)
    steps = rng.integers(1, 4, n)  # gaps of one to three periods, like quiet hours
    times = (1_704_153_600_000 // (timeframe_s * 1000) + np.cumsum(steps)) * timeframe_s * 1000
    o = np.round(1.1 + rng.normal(0, 0.01, n), 5)
    c = np.round(o + rng.normal(0, 0.001, n), 5)
    h = np.round(np.maximum(o, c) + rng.exponential(0.0005, n), 5)
    lo = np.round(np.minimum(o, c) - rng.exponential(0.0005, n), 5)
    # Some bars with both extremes equally far from the open, and some flat ones, exercise the tie rule.
    tie = rng.random(n) < 0.2
    h[tie] = o[tie] + 0.0003
    lo[tie] = o[tie] - 0.0003
    c[tie] = np.clip(c[tie], lo[tie], h[tie])
    flat = rng.random(n) < 0.05
    o[flat] = h[flat] = lo[flat] = c[flat]
    volume = rng.integers(0, 500, n).astype(np.float64)
    spread = rng.integers(0, 30, n).astype(np.float64)
    return Bars(times, o, h, lo, c, volume, spread, timeframe_s, 1e-05)


@pytest.mark.parametrize("timeframe_s", [60, 300, 900, 3600])
def test_expanded_ticks_rebuild_the_bars(timeframe_s):
    bars = random_bars(500, timeframe_s, seed=timeframe_s)
    ticks = expand_bars_to_ticks(bars)
    assert len(ticks) == 4 * len(bars)
    assert ticks.times_ms.dtype == np.int64
    assert np.all(np.diff(ticks.times_ms) > 0)
    period = timeframe_s * 1000
    owner = np.repeat(bars.times_ms, 4)
    assert np.all((ticks.times_ms >= owner) & (ticks.times_ms < owner + period))
    times, o, h, lo, c, v = rebuild_bars(ticks, timeframe_s)
    assert np.array_equal(times, bars.times_ms)
    assert np.array_equal(o, bars.open)
    assert np.array_equal(h, bars.high)
    assert np.array_equal(lo, bars.low)
    assert np.array_equal(c, bars.close)
    assert np.array_equal(v, bars.volume)
    assert np.allclose(ticks.ask - ticks.bid, np.repeat(bars.spread_points * bars.point, 4), rtol=0, atol=1e-12)


def test_expansion_path_and_tie_rule():
    start = utc_ms("2024-01-02T10:00:00")
    bars = Bars(
        times_ms=np.array([start, start + 60_000, start + 120_000, start + 180_000], dtype=np.int64),
        open=np.array([1.0, 1.0, 1.0, 1.0]),
        high=np.array([1.1, 1.5, 1.5, 1.5]),  # bar 0: high nearer; bar 1: low nearer; bars 2, 3: a tie
        low=np.array([0.5, 0.9, 0.5, 0.5]),
        close=np.array([0.8, 1.2, 1.2, 0.8]),
        volume=np.array([8.0, 4.0, 2.0, 1.0]),
        spread_points=np.array([10.0, 0.0, 0.0, 0.0]),
        timeframe_s=60,
        point=0.01,
    )
    ticks = expand_bars_to_ticks(bars)
    assert ticks.times_ms[:4].tolist() == [start, start + 15_000, start + 30_000, start + 45_000]
    assert ticks.bid.reshape(-1, 4).tolist() == [
        [1.0, 1.1, 0.5, 0.8],  # high nearer the open: high first
        [1.0, 0.9, 1.5, 1.2],  # low nearer the open: low first
        [1.0, 0.5, 1.5, 1.2],  # tie, closes up: low first, so the last leg runs up to the close
        [1.0, 1.5, 0.5, 0.8],  # tie, closes down: high first
    ]
    assert np.allclose(ticks.ask[:4], ticks.bid[:4] + 0.1)
    assert ticks.volume.tolist() == [2.0] * 4 + [1.0] * 4 + [0.5] * 4 + [0.25] * 4


def test_bar_file_round_trip(tmp_path):
    bars = read_market_file(write(tmp_path, BAR_EXPORT))
    ticks = expand_bars_to_ticks(bars)
    times, o, h, lo, c, v = rebuild_bars(ticks, bars.timeframe_s)
    assert times.tolist() == bars.times_ms.tolist()
    assert (o.tolist(), h.tolist(), lo.tolist(), c.tolist(), v.tolist()) == (
        bars.open.tolist(), bars.high.tolist(), bars.low.tolist(), bars.close.tolist(), bars.volume.tolist()
    )
