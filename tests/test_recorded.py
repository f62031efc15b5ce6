"""Live proven equal to replay: a bridge on real sockets records a simulated terminal's session, and
`mt5bridge replay --recorded DAY` runs it again through the engine and finds every decision the same; with another
threshold, or a recording that lost a frame, each difference is listed with its cause. The recording itself never
stands in the way of trading: a full disk stops it (said once), not the ticks; the oldest days go first."""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from desk import always
from mt5bridge.bridge.recorder import FRAME, RECORD, Recorder, read_records, recorded_days
from mt5bridge.bridge.server import Bridge
from mt5bridge.cli.entry import main
from mt5bridge.config import load_config
from mt5bridge.simulator import SimulatedTerminal
from test_bridge import TOKENS, free_port

ENTRY = ('[entry]\nmin_score = 0\nrequire_warm = false\nrequire_h1_ema200_alignment = false\nsessions = []\n'
         'allowed_consensus = ["UNANIMOUS", "STRONG", "WEAK", "SPLIT"]\ncooldown_minutes = 0\n'
         '[dca]\nenabled = false\n[scale_in]\nenabled = false\n')


def write_config(path: Path, folder: Path, *, sizing: str = "", recording: str = "") -> Path:
    path.write_text(
        f'[bridge]\nendpoint = "tcp://127.0.0.1:{free_port()}"\ncontrol_endpoint = "tcp://127.0.0.1:{free_port()}"\n'
        f'journal = "{(folder / "journal.sqlite").as_posix()}"\ndeadline_ms = 2000\n'
        f'[recording]\nfolder = "{(folder / "recordings").as_posix()}"\n{recording}' + ENTRY + sizing,
        encoding="utf-8")
    return path


def trade_session(config: Path, model: str, ticks: int = 3000, days: float = 0.25, during=None, start=None):
    """A bridge serving (in this process, on real loopback sockets) a simulated terminal's two charts; ``during``,
    if given, runs beside them with the bridge."""
    cfg = load_config(config)
    bridge = Bridge(cfg, str(config), model=model)
    TOKENS[cfg.bridge.control_endpoint] = bridge.token
    thread = threading.Thread(target=bridge.serve, daemon=True)
    thread.start()
    if during is not None:
        threading.Thread(target=during, args=(bridge,), daemon=True).start()
    try:
        terminal = SimulatedTerminal(cfg.bridge.endpoint, ["EURUSD", "XAUUSD"], days=days, warmup_days=1.0, seed=5,
                                     start=start)
        report = terminal.run(max_ticks=ticks)
    finally:
        bridge.request_stop()
        thread.join(10)
        bridge.close()
    return report


def replay_recorded(day: str, config: Path, model: str, report: Path, *more: str) -> tuple[int, dict]:
    code = main(["replay", "--recorded", day, "--config", str(config), "--model", model, "--report", str(report),
                 *more])
    return code, json.loads(report.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """One recorded live session, made once: its config, model, recordings folder and day."""
    tmp_path = tmp_path_factory.mktemp("live")
    model = always("BUY", tmp_path)
    config = write_config(tmp_path / "live.toml", tmp_path)
    report = trade_session(config, model, ticks=8000, days=1.0)
    assert report.ticks_sent == 8000 and report.holds_by_timeout == 0 and not report.errors_by_code
    # Entries, stop moves, and a position closed at its stop or target: RESULTs and DEALs both ways.
    assert report.commands_by_action.get("OPEN", 0) >= 2 and report.commands_by_action.get("MODIFY", 0) >= 1
    folder = tmp_path / "recordings"
    return config, model, folder, recorded_days(folder)[-1]


@pytest.fixture
def recorded(session, tmp_path):
    """The recorded session, its recordings copied for a test that alters them (--recordings points there)."""
    config, model, folder, day = session
    mine = tmp_path / "recordings"
    shutil.copytree(folder, mine)
    return config, model, mine, day


def test_a_recorded_live_session_replays_to_the_same_decisions(session, tmp_path, capsys):
    config, model, folder, day = session
    code, out = replay_recorded(day, config, model, tmp_path / "same.json")
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert out["identical"] and out["differences"] == [] and out["causes"] == []
    # Every command the bridge sent that day was compared, field by field and byte for byte.
    assert out["commands_live"] == out["commands_replayed"] >= 2
    assert out["frames"] > 8000   # every TICK, and the HELLOs, warm-up, RESULTs and DEALs around them
    assert "IDENTICAL" in printed


def test_a_day_with_a_restart_replays_both_sessions_to_the_same_decisions(tmp_path):
    model = always("BUY", tmp_path)
    config = write_config(tmp_path / "live.toml", tmp_path)
    first = trade_session(config, model)
    # The bridge is restarted: it restores the account from its journal; the terminal comes back later in the day.
    second = trade_session(config, model, start="2024-01-09T08:00:00")
    assert not first.errors_by_code and not second.errors_by_code
    day = recorded_days(tmp_path / "recordings")[-1]
    code, out = replay_recorded(day, config, model, tmp_path / "restart.json")
    assert code == 0, out["differences"][:3]
    assert out["sessions"] == 2 and out["identical"]
    live = sum(n for a, n in first.commands_by_action.items() if a != "HOLD") + sum(
        n for a, n in second.commands_by_action.items() if a != "HOLD")
    assert out["commands_live"] == out["commands_replayed"] == live >= 4


def test_another_threshold_is_listed_difference_by_difference_with_the_setting_as_cause(session, tmp_path, capsys):
    config, model, folder, day = session
    # The trader's question: what would a smaller risk per trade have sent on that day?
    other = write_config(tmp_path / "smaller_risk.toml", config.parent,
                         sizing="[sizing]\nbase_risk_pct_min = 0.1\nbase_risk_pct_max = 0.2\n")
    code, out = replay_recorded(day, other, model, tmp_path / "other.json")
    printed = capsys.readouterr().out
    assert code == 1
    assert not out["identical"] and out["differences"]
    volumes = [d for d in out["differences"] if "volume" in d.get("fields", {})]
    assert volumes, out["differences"]
    for diff in volumes:
        assert diff["fields"]["volume"]["replay"] < diff["fields"]["volume"]["live"]
    for diff in out["differences"]:
        assert "sizing.base_risk_pct_max: 0.5 recorded, 0.2 replayed" in diff["cause"]
    assert "cause: the configuration is not the one recorded" in printed


def test_a_frame_missing_from_the_recording_is_named_as_the_cause(recorded, tmp_path):
    config, model, folder, day = recorded
    path = next(folder.glob(f"*/{day}.mt5rec"))
    records = list(read_records(path))
    # The EA's RESULT of the first command lost from the recording (a damaged file, a frame never written).
    lost = next(r for r in records if r.kind == FRAME and b'"RESULT"' in r.b)
    kept = b"".join(RECORD.pack(r.kind, r.event, r.mono, r.wall, len(r.a), len(r.b)) + r.a + r.b
                    for r in records if r is not lost)
    path.write_bytes(gzip.compress(kept))
    code, out = replay_recorded(day, config, model, tmp_path / "lost.json", "--recordings", str(folder))
    assert code == 1
    assert out["differences"]
    first = out["differences"][0]
    assert "result_retcode" in first["fields"]   # live: the EA's retcode; replay: no RESULT ever came
    assert first["fields"]["result_retcode"]["replay"] is None
    assert all("1 record(s) of session" in d["cause"] and "missing" in d["cause"] for d in out["differences"])


def test_a_recording_cut_off_mid_write_still_replays_what_it_holds(recorded, tmp_path):
    config, model, folder, day = recorded
    path = next(folder.glob(f"*/{day}.mt5rec"))
    whole = path.read_bytes()
    path.write_bytes(whole + gzip.compress(os.urandom(5000))[:400])   # a killed bridge's last, half-written block
    code, out = replay_recorded(day, config, model, tmp_path / "cut.json", "--recordings", str(folder))
    assert code == 0 and out["identical"]
    assert any("cut off" in note for note in out["notes"])


def test_a_day_without_a_recording_is_refused_with_the_days_there_are(session, capsys):
    config, model, folder, day = session
    assert main(["replay", "--recorded", "2020-01-01", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "no recording of 2020-01-01" in err and day in err and "Traceback" not in err
    assert main(["replay", "--recorded", "yesterday", "--config", str(config)]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to fill the disk")
def test_a_full_disk_stops_the_recording_once_and_never_the_trading(tmp_path, caplog):
    model = always("BUY", tmp_path)
    config = write_config(tmp_path / "live.toml", tmp_path, recording="flush_every_s = 0.1\n")
    # Today's recording of the account lands on a disk with no space left.
    from mt5bridge.simulator import DEFAULT_LOGIN
    import datetime as dt

    day = dt.datetime.now(dt.timezone.utc).date().isoformat()
    account = tmp_path / "recordings" / str(DEFAULT_LOGIN)
    account.mkdir(parents=True)
    (account / f"{day}.mt5rec").symlink_to("/dev/full")
    with caplog.at_level(logging.WARNING, logger="mt5bridge.bridge.recorder"):
        report = trade_session(config, model)
    assert report.ticks_sent == 3000 and report.holds_by_timeout == 0 and not report.errors_by_code
    assert report.commands_by_action.get("OPEN", 0) >= 1
    stopped = [r for r in caplog.records if "RECORDING STOPPED" in r.getMessage()]
    assert len(stopped) == 1 and "No space left" in stopped[0].getMessage()


def test_the_oldest_days_are_deleted_first_to_stay_under_the_cap(tmp_path):
    folder = tmp_path / "recordings"
    for login in ("1001", "1002"):
        for day in ("2026-01-01", "2026-01-02", "2026-01-03"):
            (folder / login).mkdir(parents=True, exist_ok=True)
            (folder / login / f"{day}.mt5rec").write_bytes(os.urandom(300_000))
    recorder = Recorder(folder, max_bytes=1_000_000, flush_every_s=1.0, session={})
    recorder.close()
    left = sorted(p.relative_to(folder).as_posix() for p in folder.glob("*/*.mt5rec"))
    # 1.8 MB on disk, 1 MB allowed: the two accounts' oldest days go, then the next oldest until under the cap.
    assert left == ["1001/2026-01-03.mt5rec", "1002/2026-01-03.mt5rec"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to fill the disk")
def test_recording_resumes_by_itself_when_the_disk_has_room_again_and_marks_the_gap(tmp_path, caplog, monkeypatch):
    from mt5bridge.bridge import recorder as recorder_module
    from mt5bridge.simulator import DEFAULT_LOGIN
    import datetime as dt

    monkeypatch.setattr(recorder_module, "RETRY_S", 0.2)
    model = always("BUY", tmp_path)
    config = write_config(tmp_path / "live.toml", tmp_path, recording="flush_every_s = 0.1\n")
    day = dt.datetime.now(dt.timezone.utc).date().isoformat()
    account = tmp_path / "recordings" / str(DEFAULT_LOGIN)
    account.mkdir(parents=True)
    full = account / f"{day}.mt5rec"
    full.symlink_to("/dev/full")
    cfg = load_config(config)
    bridge = Bridge(cfg, str(config), model=model)
    thread = threading.Thread(target=bridge.serve, daemon=True)
    thread.start()

    def wait_until(test) -> None:
        deadline = time.monotonic() + 10
        while not test() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert test()

    try:
        with caplog.at_level(logging.WARNING, logger="mt5bridge.bridge.recorder"):
            first = SimulatedTerminal(cfg.bridge.endpoint, ["EURUSD", "XAUUSD"], days=0.25, warmup_days=1.0,
                                      seed=5).run(max_ticks=3000)
            wait_until(lambda: not bridge.recorder.on)   # the disk is full
            full.unlink()                                 # the trader frees some space
            wait_until(lambda: bridge.recorder.on)
            second = SimulatedTerminal(cfg.bridge.endpoint, ["EURUSD", "XAUUSD"], days=0.25, warmup_days=1.0,
                                       seed=5, start="2024-01-09T08:00:00").run(max_ticks=3000)
    finally:
        bridge.request_stop()
        thread.join(10)
        bridge.close()
    for report in (first, second):
        assert report.ticks_sent == 3000 and report.holds_by_timeout == 0 and not report.errors_by_code
    said = [r.getMessage() for r in caplog.records]
    assert sum("RECORDING STOPPED" in m for m in said) == 1
    assert sum("recording resumed" in m for m in said) == 1
    # What came after is recorded, behind a gap mark; the replay names the gap.
    kinds = [r.kind for r in read_records(full)]
    assert kinds[:2] == [b"S", b"G"] and kinds.count(FRAME) > 100
    code, out = replay_recorded(day, config, model, tmp_path / "gap.json")
    assert any("the recording stopped before" in note for note in out["notes"])
    for diff in out["differences"]:
        assert "recording" in diff["cause"]


def test_files_rotate_at_utc_midnight_and_a_day_replays_from_its_session_start(tmp_path):
    """A bridge running across midnight: the next day's file goes on with the same session, and replaying that day
    runs the session from its start (the bars and the account carry over), comparing only that day."""
    import datetime as dt

    import mt5bridge
    from mt5bridge.bridge import protocol as wire
    from mt5bridge.bridge.journal import Journal
    from mt5bridge.bridge.node import Node
    from mt5bridge.config import Config
    from mt5bridge.workbench.recorded import compare_day

    clock = {"mono": 1000.0, "wall": dt.datetime(2026, 3, 2, 23, 50, tzinfo=dt.timezone.utc).timestamp()}
    cfg = Config.model_validate({"bridge": {"journal": str(tmp_path / "journal.sqlite")}})
    node = Node(cfg, Journal(tmp_path / "journal.sqlite"), clock=lambda: clock["mono"], wall=lambda: clock["wall"])
    recorder = Recorder(tmp_path / "recordings", max_bytes=1 << 30, flush_every_s=1.0, session={
        "config": cfg.model_dump(mode="json", by_alias=True), "model": "", "model_sha256": "shipped",
        "version": mt5bridge.__version__,
        "next_command_id": node.next_command_id, "halt": node.halt}, clock=lambda: clock["mono"],
        wall=lambda: clock["wall"])
    chart = b"1510234567-EURUSD-1"
    offset_ms = 7_200_000
    hello = dict(wire.Hello.example, seq=0, time_msc=int(clock["wall"] * 1000) + offset_ms,
                 server_utc_offset_s=offset_ms // 1000)
    frames = [json.dumps(hello).encode()]
    for i in range(1, 1201):   # 20 minutes of ticks a second apart: ten before midnight, ten after
        frames.append(json.dumps(dict(wire.Tick.example, seq=i, positions=[], bid=1.085 + i * 1e-5,
                                      ask=1.08507 + i * 1e-5,
                                      time_msc=int(clock["wall"] * 1000) + offset_ms + i * 1000)).encode())
    for i, frame in enumerate(frames):
        clock["mono"] = 1000.0 + i
        clock["wall"] += 1.0 if i else 0.0
        recorder.frame(chart, frame, node)
        assert node.handle(chart, frame) is not None
        if i % 100 == 0:
            recorder.housekeeping(node)
            node.housekeeping()
    recorder.close()
    node.close()
    node.journal.close()
    files = sorted(p.name for p in (tmp_path / "recordings" / "1510234567").iterdir())
    assert files == ["2026-03-02.mt5rec", "2026-03-03.mt5rec"]
    out = compare_day(tmp_path / "recordings", "2026-03-03", cfg, tmp_path / "journal.sqlite")
    assert out.identical and out.sessions == 1 and out.notes == []
    assert 590 <= out.frames <= 610   # the day's own frames only; the ones before midnight were replayed, not counted


def test_a_fault_of_the_recorder_stops_the_recording_not_the_trading(tmp_path, caplog, monkeypatch):
    from mt5bridge.bridge import recorder as recorder_module

    def broken(frame):
        raise RuntimeError("a bug in the recorder")

    monkeypatch.setattr(recorder_module, "_hello_login", broken)
    model = always("BUY", tmp_path)
    config = write_config(tmp_path / "live.toml", tmp_path)
    with caplog.at_level(logging.WARNING, logger="mt5bridge.bridge.recorder"):
        report = trade_session(config, model)
    assert report.ticks_sent == 3000 and report.holds_by_timeout == 0 and not report.errors_by_code
    assert report.commands_by_action.get("OPEN", 0) >= 1
    said = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("the recorder failed: a bug in the recorder") for m in said) == 1
    assert sum("RECORDING STOPPED" in m for m in said) == 1


def test_a_tick_of_a_known_chart_is_kept_in_its_accounts_file_without_looking_for_a_hello(tmp_path):
    """The usual frame, a TICK of a known chart in the EA's layout, goes to the chart's account as before; a HELLO
    under the same identity is still read for its login."""
    from types import SimpleNamespace

    from mt5bridge.bridge.recorder import FRAME, TICK_HEAD, Recorder

    rec = Recorder(tmp_path, max_bytes=1 << 30, flush_every_s=60, session={})
    node = SimpleNamespace(charts={b"c1": SimpleNamespace(account="111")}, accounts={"111": None, "222": None})
    tick = TICK_HEAD + b'"seq":1,"positions":[{"comment":"HELLO"}]}'
    hello = b'{"type":"HELLO","seq":2,"login":222}'
    rec.frame(b"c1", tick, node)
    rec.frame(b"c1", hello, node)
    rec.close()
    frames = {p.parent.name: [r.b for r in read_records(p) if r.kind == FRAME] for p in tmp_path.glob("*/*.mt5rec")}
    assert frames == {"111": [tick], "222": [hello]}
