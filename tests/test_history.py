"""`mt5bridge history` and `mt5bridge reconcile` against a stand-in MetaTrader5 package (tests/fake_mt5).

The stand-in holds its data in server time, as the terminal does; the tests run the commands as on Windows
(``platform="win32"``) and check what a trader relies on: the exported file reads back as the terminal's
prices in UTC, the spec file has HELLO's key names, and reconcile finds every difference with a real journal.
"""

from __future__ import annotations

import importlib
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from conftest import aggregate_bars

from mt5bridge.cli.entry import build_parser, main
from mt5bridge.mt5.history import prague_midnight_utc_ms
from mt5bridge.bridge.journal import Journal
from mt5bridge.market.readers import Bars, Ticks, read_market_file
from mt5bridge.bridge.protocol import Hello
from mt5bridge.market.symbolspec import OPTIONAL_KEYS, SPEC_KEYS, SpecFileError, read_spec_file, write_spec

FAKE = Path(__file__).resolve().parent / "fake_mt5"
HOUR_MS = 3_600_000
SERVER = 2 * HOUR_MS  # the stand-in's trade server runs at UTC+2, as FTMO's in winter
LOGIN = 1510234567


@pytest.fixture
def mt5(monkeypatch):
    monkeypatch.syspath_prepend(str(FAKE))
    monkeypatch.delitem(sys.modules, "MetaTrader5", raising=False)
    module = importlib.import_module("MetaTrader5")
    monkeypatch.setitem(sys.modules, "MetaTrader5", module)  # gone again after the test
    module._terminal.reset()
    module._terminal.symbols["EURUSD"] = module.symbol("EURUSD")
    return module


def run(argv: list[str], **kwargs) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args, platform="win32", **kwargs)


@pytest.fixture(scope="module")
def market() -> Ticks:
    from mt5bridge.market.synthetic import generate_ticks

    return generate_ticks("EURUSD", days=3, seed=4)  # 2024-01-08 (Monday) 00:00 UTC onwards


def server_ticks(mt5, ticks: Ticks) -> np.ndarray:
    """The ticks as the terminal stores them: server time, both sides, flags; plus trade-only ticks and one
    crossed quote that are not a market to trade."""
    n = len(ticks)
    arr = np.zeros(n, dtype=mt5.TICK_DTYPE)
    arr["time_msc"] = ticks.times_ms + SERVER
    arr["time"] = arr["time_msc"] // 1000
    arr["bid"], arr["ask"] = ticks.bid, ticks.ask
    arr["flags"] = mt5.TICK_FLAG_BID | mt5.TICK_FLAG_ASK
    trade = arr[::50].copy()
    trade["flags"] = mt5.TICK_FLAG_LAST | mt5.TICK_FLAG_VOLUME
    trade["last"], trade["volume"], trade["volume_real"] = trade["bid"], 3, 3.0
    crossed = arr[n // 2 : n // 2 + 1].copy()
    crossed["bid"], crossed["ask"] = crossed["ask"] + 0.0001, crossed["ask"]
    allticks = np.concatenate([arr, trade, crossed])
    return allticks[np.argsort(allticks["time_msc"], kind="stable")]


def test_ticks_export_reads_back_as_the_terminal_s_quotes_in_utc(mt5, market, tmp_path, capsys):
    mt5._terminal.ticks["EURUSD"] = server_ticks(mt5, market)
    out = tmp_path / "EURUSD_ticks.csv"
    code = run(["history", "--symbol", "EURUSD", "--from", "2024-01-08 06:00", "--to", "2024-01-10", "--ticks",
                "--out", str(out), "--server-utc-offset", "2"])
    err = capsys.readouterr().err
    assert code == 0, err

    got = read_market_file(out)
    assert isinstance(got, Ticks)
    start = datetime(2024, 1, 8, 6, tzinfo=timezone.utc).timestamp() * 1000
    end = datetime(2024, 1, 10, tzinfo=timezone.utc).timestamp() * 1000
    want = (market.times_ms >= start) & (market.times_ms < end)  # --to is exclusive; day chunks overlap nowhere
    assert np.array_equal(got.times_ms, market.times_ms[want])
    assert np.array_equal(got.bid, market.bid[want]) and np.array_equal(got.ask, market.ask[want])
    assert np.all(got.volume == 1.0)  # FX ticks carry no volume: each counts once
    assert "trade-only ticks" in err and "1 crossed" in err
    # Day by day, in server time, with every tick flag asked for.
    asked = [c for c in mt5._terminal.calls if c[0] == "copy_ticks_range"]
    assert len(asked) == 2 and all(c[4] == mt5.COPY_TICKS_ALL for c in asked)
    assert asked[0][2] == datetime(2024, 1, 8, 8, tzinfo=timezone.utc)
    assert mt5._terminal.calls[-1] == ("shutdown",)


def test_bars_export_and_spec_file_for_replay(mt5, market, tmp_path, capsys):
    t, o, h, lo, c, v = aggregate_bars(market.times_ms + SERVER, market.bid, market.volume, 60)
    rates = np.zeros(len(t), dtype=mt5.RATE_DTYPE)
    rates["time"] = t // 1000
    rates["open"], rates["high"], rates["low"], rates["close"] = o, h, lo, c
    rates["tick_volume"] = v
    rates["spread"] = np.where(np.arange(len(t)) % 3 == 0, 9, 7)
    mt5._terminal.rates[("EURUSD", mt5.TIMEFRAME_M1)] = rates
    out, spec = tmp_path / "EURUSD_M1.csv", tmp_path / "spec.toml"
    code = run(["history", "--symbol", "EURUSD", "--from", "2024-01-08", "--to", "2024-01-11", "--bars", "M1",
                "--out", str(out), "--spec-out", str(spec), "--commission-per-lot", "2.5",
                "--server-utc-offset", "2"])
    assert code == 0, capsys.readouterr().err

    bars = read_market_file(out)
    assert isinstance(bars, Bars) and bars.timeframe_s == 60 and bars.point == pytest.approx(1e-5)
    assert np.array_equal(bars.times_ms, t - SERVER)
    assert np.array_equal(bars.close, c) and np.array_equal(bars.high, h) and np.array_equal(bars.volume, v)
    assert np.array_equal(bars.spread_points, rates["spread"])
    asked = [call for call in mt5._terminal.calls if call[0] == "copy_rates_range"]
    assert asked and all(call[2] == mt5.TIMEFRAME_M1 for call in asked)

    specs = read_spec_file(spec)
    eurusd = specs["EURUSD"]
    assert list(eurusd) == [k for k in SPEC_KEYS if k not in OPTIONAL_KEYS]   # swaps are the trader's to add
    # The replay reads these under HELLO's names: every key but the two HELLO lacks is a HELLO field.
    assert set(SPEC_KEYS) - {"spread_points", "commission_per_lot"} - OPTIONAL_KEYS <= set(Hello.model_fields)
    info = mt5._terminal.symbols["EURUSD"]
    assert eurusd["digits"] == info.digits and eurusd["tick_value"] == info.trade_tick_value
    assert eurusd["contract_size"] == info.trade_contract_size and eurusd["volume_step"] == info.volume_step
    assert eurusd["spread_points"] == 7.0  # the median of the exported bars, not the terminal's spread now
    assert eurusd["commission_per_lot"] == 2.5

    # A second symbol joins the file; the first stays as it was.
    mt5._terminal.symbols["XAUUSD"] = mt5.symbol("XAUUSD", digits=2, point=0.01, spread=25, contract_size=100.0)
    gold = np.zeros(3, dtype=mt5.RATE_DTYPE)
    gold["time"] = (datetime(2024, 1, 8, 10, tzinfo=timezone.utc).timestamp() + np.arange(3) * 3600).astype(int)
    gold["open"] = gold["high"] = gold["low"] = gold["close"] = 2030.0
    mt5._terminal.rates[("XAUUSD", mt5.TIMEFRAME_H1)] = gold
    assert run(["history", "--symbol", "XAUUSD", "--from", "2024-01-08", "--to", "2024-01-09", "--bars", "H1",
                "--out", str(tmp_path / "gold.csv"), "--spec-out", str(spec)]) == 0
    both = read_spec_file(spec)
    assert both["EURUSD"] == eurusd and both["XAUUSD"]["contract_size"] == 100.0
    assert both["XAUUSD"]["spread_points"] == 25.0  # bars without spreads: the terminal's own
    assert "--server-utc-offset not given" in capsys.readouterr().err

    from mt5bridge.workbench.replay import load_specs

    assert load_specs(spec)["EURUSD"]["tick_value"] == 1.0  # the replay takes the file as written


def test_initialize_failure_shows_last_error(mt5, tmp_path, capsys):
    mt5._terminal.init_error = (-10003, "IPC initialize failed, MetaTrader 5 x64 not found")
    code = run(["history", "--symbol", "EURUSD", "--from", "2024-01-08", "--to", "2024-01-09", "--ticks",
                "--out", str(tmp_path / "t.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert "initialize() failed" in err and "-10003" in err and "MetaTrader 5 x64 not found" in err
    assert not (tmp_path / "t.csv").exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--symbol", "EURUSDX", "--from", "2024-01-08", "--to", "2024-01-09", "--ticks"], "'EURUSDX' is not known"),
        (["--symbol", "EURUSD", "--from", "2024-01-08", "--to", "2024-01-09", "--ticks"], "has no ticks of EURUSD"),
        (["--symbol", "EURUSD", "--from", "8.1.2024", "--to", "2024-01-09", "--ticks"], "--from '8.1.2024'"),
        (["--symbol", "EURUSD", "--from", "2024-01-09", "--to", "2024-01-08", "--ticks"], "is not after"),
        (["--symbol", "EURUSD", "--from", "2024-01-08", "--to", "2024-01-09", "--bars", "D1"], "--bars 'D1'"),
        (["--symbol", "EURUSD", "--from", "2024-01-08", "--to", "2024-01-09", "--bars", "H1",
          "--server-utc-offset", "5.5"], "off their period"),
    ],
)
def test_history_refuses_with_exit_2(mt5, argv, words, tmp_path, capsys):
    assert run(["history", *argv, "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mt5bridge history: error: ") and words in err
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("command", ["history", "reconcile"])
def test_without_the_package_the_commands_say_what_they_need(command, monkeypatch, tmp_path, capsys):
    argv = {"history": ["history", "--symbol", "EURUSD", "--from", "2024-01-08", "--to", "2024-01-09", "--ticks",
                        "--out", str(tmp_path / "t.csv")],
            "reconcile": ["reconcile", "--journal", str(tmp_path / "j.sqlite")]}[command]
    monkeypatch.setitem(sys.modules, "MetaTrader5", None)  # as on a Windows machine without the package
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert "MetaTrader5 package is not installed" in err and 'pip install "mt5bridge[mt5]"' in err
    if sys.platform != "win32":  # and through the real entry point, here, on this machine
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "needs Windows" in err and 'pip install "mt5bridge[mt5]"' in err


# --- reconcile -----------------------------------------------------------------------------------------------

NOW = datetime(2024, 1, 10, 12, 0, tzinfo=timezone.utc)  # winter: Prague is UTC+1, its day began 09 Jan 23:00 UTC


def _server_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000) + SERVER


def _position(ticket, *, side="BUY", volume=0.5, sl=1.083, tp=1.09, symbol="EURUSD") -> dict:
    return {"ticket": ticket, "symbol": symbol, "side": side, "volume": volume, "open_price": 1.085, "sl": sl,
            "tp": tp, "profit": 12.0, "swap": 0.0, "commission": -2.5, "magic": 20260101,
            "open_time_msc": _server_ms(NOW - timedelta(hours=3)), "comment": "mt5b"}


def _deal(ticket, when: datetime, *, volume=0.5, entry="IN", side="BUY") -> dict:
    return {"deal": ticket, "order": ticket + 1, "position_id": 101, "symbol": "EURUSD", "side": side,
            "entry": entry, "reason": "EXPERT", "volume": volume, "price": 1.085, "profit": 0.0, "swap": 0.0,
            "commission": -2.5, "magic": 20260101, "time_msc": _server_ms(when), "comment": "mt5b"}


def _terminal_position(mt5, p: dict):
    t = p["open_time_msc"]
    return mt5.TradePosition(
        ticket=p["ticket"], time=t // 1000, time_msc=t, time_update=t // 1000, time_update_msc=t,
        type=mt5.POSITION_TYPE_BUY if p["side"] == "BUY" else mt5.POSITION_TYPE_SELL, magic=p["magic"],
        identifier=p["ticket"], reason=mt5.POSITION_REASON_EXPERT, volume=p["volume"], price_open=p["open_price"],
        sl=p["sl"], tp=p["tp"], price_current=1.0852, swap=p["swap"], profit=p["profit"], symbol=p["symbol"],
        comment=p["comment"], external_id="",
    )


def _terminal_deal(mt5, d: dict, *, kind=None):
    t = d["time_msc"]
    return mt5.TradeDeal(
        ticket=d["deal"], order=d["order"], time=t // 1000, time_msc=t,
        type=kind if kind is not None else (mt5.DEAL_TYPE_BUY if d["side"] == "BUY" else mt5.DEAL_TYPE_SELL),
        entry=getattr(mt5, f"DEAL_ENTRY_{d['entry']}"), magic=d["magic"], position_id=d["position_id"],
        reason=getattr(mt5, f"DEAL_REASON_{d['reason']}"), volume=d["volume"], price=d["price"],
        commission=d["commission"], swap=d["swap"], profit=d["profit"], fee=0.0, symbol=d["symbol"],
        comment=d["comment"], external_id="",
    )


@pytest.fixture
def book(mt5, tmp_path):
    """A journal and a terminal that agree: two positions and two deals today."""
    path = tmp_path / "journal.sqlite"
    positions = [_position(101), _position(102, side="SELL", volume=0.2, sl=1.09, tp=1.07)]
    deals = [_deal(9001, NOW - timedelta(hours=3)), _deal(9002, NOW - timedelta(hours=2), volume=0.2, side="SELL")]
    with Journal(path) as journal:
        for p in positions:
            journal.record_position_seen(LOGIN, p, managed=True, time_ms=int(NOW.timestamp() * 1000) - 60_000)
        for d in deals:
            journal.record_deal(LOGIN, d)
    mt5._terminal.positions = [_terminal_position(mt5, p) for p in positions]
    mt5._terminal.deals = [_terminal_deal(mt5, d) for d in deals]
    return path


def reconcile(path, capsys, *extra: str) -> tuple[int, str, str]:
    code = run(["reconcile", "--journal", str(path), "--server-utc-offset", "2", *extra], clock=NOW.timestamp)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_reconcile_exits_0_when_journal_and_terminal_agree(book, capsys):
    code, out, err = reconcile(book, capsys)
    assert code == 0, err
    assert "no differences" in out and "open positions: terminal 2, journal 2" in out
    assert "terminal 2, journal 2" in out.split("deals since")[1]


def test_reconcile_lists_every_difference_and_exits_1(mt5, book, capsys):
    with Journal(book) as journal:
        journal.record_position_seen(LOGIN, _position(103), managed=True, time_ms=int(NOW.timestamp() * 1000))
        journal.record_deal(LOGIN, _deal(9004, NOW - timedelta(minutes=30)))  # the terminal never had it
    mt5._terminal.positions.append(_terminal_position(mt5, _position(104, volume=1.0)))  # opened by hand, unseen
    p101 = mt5._terminal.positions[0]
    mt5._terminal.positions[0] = p101._replace(sl=1.0845, volume=0.3)  # moved and partly closed while down
    mt5._terminal.deals += [
        _terminal_deal(mt5, _deal(9003, NOW - timedelta(hours=1), entry="OUT", side="SELL", volume=0.2)),
        _terminal_deal(mt5, _deal(8000, NOW - timedelta(hours=14))),  # yesterday's Prague day: not compared
        _terminal_deal(mt5, _deal(7000, NOW - timedelta(hours=4)), kind=mt5.DEAL_TYPE_BALANCE),  # not a trade
    ]
    code, out, _ = reconcile(book, capsys, "--json")
    assert code == 1
    import json

    report = json.loads(out)
    found = sorted((d["kind"], d["ticket"]) for d in report["differences"])
    assert found == sorted([
        ("position_not_in_journal", 104), ("position_not_in_terminal", 103), ("position_volume_differs", 101),
        ("position_sl_differs", 101), ("deal_not_in_journal", 9003), ("deal_not_in_terminal", 9004),
    ])
    volume = next(d for d in report["differences"] if d["kind"] == "position_volume_differs")
    assert "0.3 in the terminal, 0.5 in the journal" in volume["detail"]
    assert report["prague_day_start_utc"] == "2024-01-09 23:00"

    code, text, _ = reconcile(book, capsys)
    assert code == 1 and "6 differences" in text and "deal 9003" in text


def test_reconcile_counts_today_from_prague_midnight_in_server_time(mt5, book, capsys):
    # 23:30 server time is 21:30 UTC, before Prague's midnight (23:00 UTC): yesterday's deal, not today's.
    mt5._terminal.deals.append(_terminal_deal(mt5, _deal(8500, datetime(2024, 1, 9, 21, 30, tzinfo=timezone.utc))))
    assert reconcile(book, capsys)[0] == 0
    # Taken as UTC (no offset given) the same deal looks like today's, and is missing from the journal.
    code = run(["reconcile", "--journal", str(book)], clock=lambda: NOW.timestamp() - 2 * 3600)
    out = capsys.readouterr()
    assert code == 1 and "deal 8500" in out.out and "--server-utc-offset not given" in out.err


def test_reconcile_refuses_a_journal_of_another_account_or_none(mt5, book, tmp_path, capsys):
    mt5._terminal.account = mt5._terminal.account._replace(login=999)
    code, _, err = reconcile(book, capsys)
    assert code == 2 and "account 999" in err and str(LOGIN) in err
    code, _, err = reconcile(tmp_path / "nothing.sqlite", capsys)
    assert code == 2 and "no journal at" in err


def test_reconcile_finds_the_journal_through_the_config(mt5, book, tmp_path, capsys):
    config = tmp_path / "bridge.toml"
    config.write_text('[bridge]\njournal = "journal.sqlite"\n', encoding="utf-8")
    code = run(["reconcile", "--config", str(config), "--server-utc-offset", "2"], clock=NOW.timestamp)
    assert code == 0, capsys.readouterr().err


# --- time and the spec file ----------------------------------------------------------------------------------


def test_prague_midnight_follows_the_tz_database_across_summer_time_changes():
    prague = ZoneInfo("Europe/Prague")
    t = datetime(2023, 1, 1, tzinfo=timezone.utc)
    while t < datetime(2026, 1, 1, tzinfo=timezone.utc):
        local = t.astimezone(prague)
        midnight = datetime(local.year, local.month, local.day, tzinfo=prague)
        assert prague_midnight_utc_ms(int(t.timestamp() * 1000)) == int(midnight.timestamp() * 1000), t
        t += timedelta(minutes=37)


def test_spec_file_keeps_broker_suffixes_and_names_a_bad_value(tmp_path):
    path = tmp_path / "spec.toml"
    spec = {"digits": 2, "point": 0.01, "tick_size": 0.01, "tick_value": 0.01, "contract_size": 1.0,
            "volume_min": 0.01, "volume_step": 0.01, "volume_max": 50.0, "stops_level": 0, "freeze_level": 0,
            "spread_points": 150.0, "commission_per_lot": 0.0}
    write_spec(path, "US30.cash", spec)
    assert read_spec_file(path) == {"US30.cash": spec}
    with pytest.raises(SpecFileError, match=r"symbols\.US30\.cash\.tick_value = 0: must be above 0"):
        write_spec(path, "US30.cash", dict(spec, tick_value=0))
    path.write_text(path.read_text().replace("volume_max = 50.0", "volume_max = -1.0"))
    with pytest.raises(SpecFileError, match=r"spec\.toml: symbols\.US30\.cash\.volume_max = -1\.0"):
        read_spec_file(path)


def test_a_partial_table_written_for_replay_survives_an_export_of_another_symbol(tmp_path):
    path = tmp_path / "specs.toml"
    path.write_text("[symbols.XAUUSD]\ncommission_per_lot = 3.0\n")   # the rest from replay's preset
    full = {"digits": 5, "point": 1e-05, "tick_size": 1e-05, "tick_value": 1.0, "contract_size": 100000.0,
            "volume_min": 0.01, "volume_step": 0.01, "volume_max": 100.0, "stops_level": 0, "freeze_level": 0,
            "spread_points": 8.0, "commission_per_lot": 2.5}
    write_spec(path, "EURUSD", full)
    both = read_spec_file(path, partial=True)
    assert both["XAUUSD"] == {"commission_per_lot": 3.0} and both["EURUSD"] == full


def test_an_export_across_a_us_clock_change_is_warned_about(mt5, tmp_path, capsys):
    # FTMO's server moves from UTC+2 to UTC+3 with New York's clock (2024-03-10): one offset is wrong for part.
    bars = np.zeros(2, dtype=mt5.RATE_DTYPE)
    bars["time"] = [int(datetime(2024, 1, 8, 12, tzinfo=timezone.utc).timestamp()),
                    int(datetime(2024, 3, 15, 12, tzinfo=timezone.utc).timestamp())]
    bars["open"] = bars["high"] = bars["low"] = bars["close"] = 1.09
    mt5._terminal.rates[("EURUSD", mt5.TIMEFRAME_M1)] = bars
    out = tmp_path / "eurusd.csv"
    args = ["history", "--symbol", "EURUSD", "--bars", "M1", "--out", str(out), "--server-utc-offset", "2"]
    assert run([*args, "--from", "2024-01-08", "--to", "2024-01-09"]) == 0
    assert "summer-time change" not in capsys.readouterr().err
    assert run([*args, "--from", "2024-01-08", "--to", "2024-03-20"]) == 0
    assert "crosses a US summer-time change" in capsys.readouterr().err
