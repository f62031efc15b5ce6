"""The Expert Advisor under the checks that stand in for MetaEditor, which cannot run here.

1. Syntax: every .mq5/.mqh parses with tree-sitter's C++ grammar after a pre-pass that rewrites MQL5's own
   syntax without moving a line or column (tests/mql5/prepass.py, syntax.py).
2. Compile: the EA, rewritten to C++ line for line, passes ``g++ -fsyntax-only`` against stub headers that
   declare the MQL5 built-ins, CTrade and nothing else (tests/mql5/rewrite.py, compile.py, stubs/). Its
   ``#import "libzmq.dll"`` block matches libzmq's zmq.h, and it keeps to the MQL5 subset g++ cannot police
   (tests/mql5/rules.py).
3. Conformance: every key the EA writes or reads is a field of that message in docs/protocol.schema.json,
   every required field is written, and no protocol string is retyped outside Protocol.mqh
   (tests/mql5/conformance.py).
4. Behaviour: the EA's pure includes (JSON, messages, Prague clock, trade arithmetic, deal re-send) are compiled
   and run; the frames they build go through the bridge's own parser, and Prague midnight is held against zoneinfo.
5. Mutations: broken copies of the EA make the matching check fail, so no check passes vacuously.

g++ must be installed (it is on CI); without it the compile checks fail rather than skip.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from mql5.compile import CompilerMissing, build_harness, compile_ea, first_errors
from mql5.prepass import prepass
from mql5.syntax import syntax_errors, syntax_errors_in

from mql5 import conformance, rules
from mt5bridge.bridge import protocol as wire

ROOT = Path(__file__).resolve().parents[1]
MQL5 = ROOT / "mql5"
SCHEMA = ROOT / "docs" / "protocol.schema.json"
STUBS = Path(__file__).resolve().parent / "mql5" / "stubs"
MAIN = Path("Experts") / "MT5Bridge.mq5"
INCLUDES = Path("Include") / "MT5Bridge"


def sources(root: Path = MQL5) -> list[Path]:
    return sorted([*(root / "Experts").glob("*.mq5"), *(root / "Include").rglob("*.mqh")])


def protocol(root: Path = MQL5) -> conformance.Protocol:
    return conformance.load_protocol(root / INCLUDES / "Protocol.mqh", SCHEMA)


def compiled(root: Path, work: Path) -> tuple[int, str]:
    try:
        return compile_ea(root, work)
    except CompilerMissing as exc:
        pytest.fail(str(exc))


def test_the_ea_and_its_includes_are_all_there():
    names = {p.relative_to(MQL5).as_posix() for p in sources()}
    assert MAIN.as_posix() in names
    for include in ("Protocol", "Json", "Messages", "Zmq", "Session", "Execution", "ExecutedIds", "EquityGuard",
                    "PragueClock", "TradeMath", "Terminal", "Log", "DealResend"):
        assert f"Include/MT5Bridge/{include}.mqh" in names


# ---- 1. syntax ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sources(), ids=lambda p: p.name)
def test_every_source_parses(path):
    assert syntax_errors(path) == []


@pytest.mark.parametrize("path", sources(), ids=lambda p: p.name)
def test_prepass_moves_no_line_or_column(path):
    text = path.read_text(encoding="utf-8")
    rewritten = prepass(text)
    assert len(rewritten) == len(text)
    assert [m.start() for m in re.finditer("\n", rewritten)] == [m.start() for m in re.finditer("\n", text)]


MQL5_ONLY = """#property copyright "x"
#property strict
#import "libzmq.dll"
long zmq_ctx_new();
int  zmq_send(long socket,const uchar &buf[],ulong len,int flags);
#import
input group "Bridge"
input string InpEndpoint = "tcp://127.0.0.1:5555"; // input in a comment stays
sinput int InpShown = 3;
color Background = C'20,30,40';
datetime Start = D'2024.01.08 00:00';
string Words = "input C'1,2,3' #property";
void OnStart(void) { Print(InpEndpoint, Words, Background, Start); }
"""


def test_prepass_rewrites_mql5_syntax_and_nothing_else():
    assert syntax_errors_in(MQL5_ONLY, "snippet.mq5") == []
    rewritten = prepass(MQL5_ONLY)
    assert len(rewritten) == len(MQL5_ONLY)
    assert "const string InpEndpoint" in rewritten and " const int InpShown" in rewritten
    assert '"input C\'1,2,3\' #property"' in rewritten and "// input in a comment stays" in rewritten
    assert "#property" not in rewritten.split('"input')[0] and "#import" not in rewritten
    assert "long zmq_ctx_new();" in rewritten
    # without the pre-pass the same MQL5 does not parse: the pre-pass is what makes the check meaningful
    from mql5.rewrite import parser

    assert parser().parse(MQL5_ONLY.encode()).root_node.has_error


# ---- 2. compile and the MQL5 subset -------------------------------------------------------------------------


def test_ea_compiles_against_the_stub_headers(tmp_path):
    status, messages = compiled(MQL5, tmp_path)
    assert status == 0, "g++ -fsyntax-only failed:\n" + first_errors(messages)


def _code(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", " ", text)


def test_stubs_declare_only_what_the_ea_calls():
    """The stubs declare exactly the built-ins the EA uses, so they cannot hide a call MQL5 lacks."""
    ea = _code("\n".join(p.read_text(encoding="utf-8") for p in sources()))
    stub_text = _code((STUBS / "mql5.h").read_text() + (STUBS / "Trade" / "Trade.mqh").read_text())
    declared = set(re.findall(r"\b([A-Z][A-Za-z0-9_]*)\s*\(", stub_text))
    declared -= {"CTrade", "CObject", "MqlArray"}  # constructors
    unused = sorted(name for name in declared if not re.search(rf"\b{name}\s*\(", ea))
    assert unused == [], f"declared in the stubs but never called by the EA: {unused}"


def test_every_stubbed_builtin_has_its_reference_page_in_docs():
    """docs/ea.md lists the MQL5 reference page of every built-in and CTrade member the stubs declare."""
    table = (ROOT / "docs" / "ea.md").read_text(encoding="utf-8")
    stub_text = _code((STUBS / "mql5.h").read_text())
    trade_text = _code((STUBS / "Trade" / "Trade.mqh").read_text().split("public:")[-1])
    names = set(re.findall(r"\b([A-Z][A-Za-z0-9]*)\s*\(", stub_text.split("---- functions")[-1])) - {"MqlArray"}
    missing = sorted(n for n in names if f"| `{n}` | https://www.mql5.com/en/docs/" not in table)
    methods = set(re.findall(r"\b([A-Z][A-Za-z]*)\s*\(", trade_text)) - {"CTrade"}
    missing += sorted(f"CTrade::{m}" for m in methods if f"| `CTrade::{m}` | https://www.mql5.com/en/docs/" not in table)
    assert missing == [], f"no reference page in docs/ea.md for {missing}"


def test_import_block_matches_zmq_h():
    assert rules.import_problems(MQL5 / INCLUDES / "Zmq.mqh", STUBS / "zmq_reference.h") == []


def test_ea_keeps_to_the_mql5_subset():
    assert rules.subset_problems(sources()) == []


def test_the_code_calls_what_its_promises_rest_on():
    assert rules.promise_problems(sources()) == []


def test_event_handlers_have_the_signatures_the_terminal_calls():
    assert rules.handler_problems(MQL5 / MAIN) == []


# ---- 3. conformance with the protocol -----------------------------------------------------------------------


def test_messages_write_and_read_exactly_the_protocols_fields():
    assert conformance.check(sources(), protocol()) == []


def test_no_protocol_string_is_retyped_outside_protocol_mqh():
    assert conformance.retyped_literals(sources(), protocol()) == []


def test_every_builder_and_parser_is_checked():
    names = {fn.name for fn in conformance.functions(sources())}
    assert set(conformance.BUILDERS) | set(conformance.PARSERS) | {conformance.REPLY_HEADER} <= names
    assert {wire.message_type(m) for m in wire.EA_MESSAGES} == set(conformance.BUILDERS.values()) - {"Position"}
    assert {wire.message_type(m) for m in wire.BRIDGE_MESSAGES} == set(conformance.PARSERS.values())


# ---- 4. behaviour of the pure includes ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    work = tmp_path_factory.mktemp("harness")
    try:
        return build_harness(MQL5, work)
    except CompilerMissing as exc:
        pytest.fail(str(exc))
    except subprocess.CalledProcessError as exc:
        pytest.fail("the EA's pure includes do not build with the runtime harness:\n" + exc.stderr[-4000:])


def run(harness: Path, mode: str, stdin: bytes = b"") -> list[bytes]:
    done = subprocess.run([str(harness), mode], input=stdin, capture_output=True, timeout=60, check=True)
    return done.stdout.splitlines()


TRICKY = 'quote " backslash \\ newline \n tab \t bell \x07 Zürich € 📈'


def test_every_frame_the_ea_builds_is_accepted_by_the_bridge(harness):
    frames = run(harness, "frames")
    messages = [wire.parse_request(frame, wire.MAX_FRAME_BYTES) for frame in frames]
    assert [wire.message_type(type(m)) for m in messages] == [
        "HELLO", "HELLO", "WARMUP", "TICK", "RESULT", "DEAL", "FAILSAFE", "HEARTBEAT", "CLOCK", "BYE"]
    assert [m.seq for m in messages] == list(range(len(messages)))
    hello, hello_known, warmup, tick, result, deal, failsafe, heartbeat, clock, bye = messages
    assert hello.initial_balance is None and hello_known.initial_balance == 100000.0
    assert (hello.first_deposit, hello.day_start_balance) == (None, None)
    assert (hello_known.first_deposit, hello_known.day_start_balance) == (100000.0, 101250.5)
    assert hello.company == TRICKY and result.text == TRICKY
    assert (hello.point, hello.tick_size, hello.chart_id) == (1e-05, 1e-05, 133476532849512345)
    assert warmup.time_msc == [1783416480000, 1783416540000, 1783416600000]
    assert warmup.close == [1.08502, 1.08511, 1.08509] and warmup.volume == [38.0, 39.0, 40.0]
    assert (tick.bid, tick.ask, tick.round_trip_us, len(tick.positions)) == (1.08512, 1.08519, 412, 2)
    assert tick.positions[0].comment == "mt5b:16" and tick.positions[1].open_price == 2345.67
    assert len(tick.positions[1].comment) == wire.MAX_COMMENT_CHARS
    assert (result.command_id, result.outcome, result.retcode, result.price, result.volume) == (
        17, "DONE", 10009, 1.08519, 0.5)
    assert (result.sl, result.tp) == (1.08319, 1.08919)
    assert (clock.server_utc_offset_s, clock.time_msc) == (7200, 1792375200000)
    assert (deal.side, deal.entry, deal.reason, deal.comment, deal.commission) == ("BUY", "IN", "EXPERT", "", -2.5)
    assert failsafe.kind == "EQUITY_GUARD" and heartbeat.time_msc == 1783416705000 and bye.reason == ""


def _hold(seq: int, reason: str) -> bytes:
    # the bridge's hand-built HOLD (node.py): json.dumps escapes non-ASCII as \\uXXXX
    return (b'{"type":"COMMAND","reply_to":%d,"command_id":0,"action":"HOLD","symbol":"EURUSD","side":"",'
            b'"volume":0.0,"sl":0.0,"tp":0.0,"ticket":0,"reason_code":"NO_SIGNAL","reason":%s}'
            % (seq, json.dumps(reason).encode()))


def test_the_ea_reads_every_frame_the_bridge_sends(harness):
    command = wire.Command(reply_to=42, command_id=17, action="OPEN", symbol="EURUSD", side="BUY", volume=0.5,
                           sl=1.08319, tp=1.08919, ticket=0, reason_code="ENTRY_SIGNAL",
                           reason="long score 0.71 — “quoted”, 📈 and a \\ backslash")
    close = wire.Command(reply_to=43, command_id=9_007_199_254_740_991, action="CLOSE", symbol="XAUUSD", side="",
                         volume=0.0, sl=0.0, tp=0.0, ticket=123456789012, reason_code="EXIT", reason="x")
    frames = [wire.encode(command), _hold(7, "no signal — Zürich"), wire.encode(close),
              wire.encode(wire.Welcome.model_validate(wire.Welcome.example)),
              wire.encode(wire.ErrorReply.model_validate(wire.ErrorReply.example)),
              b'  {\t"type" : "ERROR", "reply_to": -1, "code": "MALFORMED_JSON", "message": "a\\/b"}\r']
    got = [json.loads(line) for line in run(harness, "parse", b"\n".join(frames) + b"\n")]
    assert got[0] == {"kind": "COMMAND", "reply_to": 42, "command_id": 17, "action": "OPEN", "symbol": "EURUSD",
                      "side": "BUY", "volume": 0.5, "sl": 1.08319, "tp": 1.08919, "ticket": 0,
                      "reason_code": "ENTRY_SIGNAL", "reason": command.reason}
    assert got[1]["action"] == "HOLD" and got[1]["command_id"] == 0 and got[1]["side"] == ""
    assert got[1]["reason"] == "no signal — Zürich"
    assert (got[2]["command_id"], got[2]["ticket"], got[2]["volume"]) == (9_007_199_254_740_991, 123456789012, 0)
    welcome = wire.Welcome.example
    applied = {"applied_deadline_ms": welcome["deadline_ms"], "applied_heartbeat_ms": welcome["heartbeat_ms"],
               "applied_failsafe_silence_ms": welcome["failsafe_silence_ms"]}
    assert got[3] == {"kind": "WELCOME", **{k: welcome[k] for k in welcome if k not in ("type", "protocol_version")},
                      **applied}
    assert got[4] == {"kind": "ERROR", **{k: v for k, v in wire.ErrorReply.example.items() if k != "type"}}
    assert got[5]["message"] == "a/b" and got[5]["reply_to"] == -1


def _welcome(**changes) -> bytes:
    return json.dumps({**wire.Welcome.example, **changes}).encode()


def test_welcome_timings_are_held_to_the_eas_own_input_ranges(harness):
    """A bridge asking for a 60 s deadline would hold every OnTick, and the equity guard with it, for a minute."""
    frames = [_welcome(deadline_ms=60000, heartbeat_ms=1, stale_after_ms=5, failsafe_silence_ms=86_400_000),
              _welcome(deadline_ms=1, heartbeat_ms=600000, stale_after_ms=600001, failsafe_silence_ms=10)]
    got = [json.loads(line) for line in run(harness, "parse", b"\n".join(frames) + b"\n")]
    assert [(g["applied_deadline_ms"], g["applied_heartbeat_ms"], g["applied_failsafe_silence_ms"]) for g in got] == [
        (10000, 100, 3600000), (10, 60000, 1000)]


BROKEN_FRAMES = {
    "not JSON": b'{"type":"COMMAND",',
    "not an object": b'["COMMAND"]',
    "text after the object": b'{"type":"ERROR","reply_to":1,"code":"SEQUENCE","message":"m"} x',
    "key twice": b'{"type":"ERROR","reply_to":1,"reply_to":2,"code":"SEQUENCE","message":"m"}',
    "missing field": b'{"type":"ERROR","reply_to":1,"code":"SEQUENCE"}',
    "integer as float": b'{"type":"ERROR","reply_to":1.0,"code":"SEQUENCE","message":"m"}',
    "number as string": b'{"type":"WELCOME","reply_to":"0","protocol_version":1,"deadline_ms":250,"heartbeat_ms":1000,'
                        b'"stale_after_ms":5000,"failsafe_silence_ms":10000,"equity_floor":0,"max_requests_per_minute":30}',
    "NaN": b'{"type":"WELCOME","reply_to":0,"protocol_version":1,"deadline_ms":250,"heartbeat_ms":1000,'
           b'"stale_after_ms":5000,"failsafe_silence_ms":10000,"equity_floor":NaN,"max_requests_per_minute":30}',
    "other protocol version": _welcome(protocol_version=1),
    "no journal_id": json.dumps({k: v for k, v in wire.Welcome.example.items() if k != "journal_id"}).encode(),
    "journal_id that could name another file": _welcome(journal_id="..\\..\\executed_1_0123456789abcdef01234"),
    "journal_id in capitals": _welcome(journal_id="5F0C3A9E2B7D4E61A8C9D0F1E2A3B4C5"),
    "unknown action": _hold(3, "x").replace(b'"HOLD"', b'"BUY_EVERYTHING"'),
    "HOLD with an id": _hold(3, "x").replace(b'"command_id":0', b'"command_id":5'),
    "nested volume": _hold(3, "x").replace(b'"volume":0.0', b'"volume":[1]'),
    "unterminated string": b'{"type":"ERROR","reply_to":1,"code":"SEQUENCE","message":"m}',
    "bad escape": b'{"type":"ERROR","reply_to":1,"code":"SEQUENCE","message":"\\x"}',
    "integer too large": b'{"type":"ERROR","reply_to":9223372036854775808,"code":"SEQUENCE","message":"m"}',
}


def test_the_ea_refuses_a_broken_bridge_frame_instead_of_guessing(harness):
    got = [json.loads(line) for line in run(harness, "parse", b"\n".join(BROKEN_FRAMES.values()) + b"\n")]
    refused = {name: "error" in result for name, result in zip(BROKEN_FRAMES, got)}
    assert refused == {name: True for name in BROKEN_FRAMES}
    # a command whose id can still be read gets its RESULT: the id is reported with the problem
    assert got[list(BROKEN_FRAMES).index("unknown action")]["command_id"] == 0


def _moments() -> list[datetime]:
    moments = []
    start = datetime(2019, 1, 1, tzinfo=timezone.utc)
    for hours in range(0, 12 * 366 * 24, 7):  # every 7 hours for twelve years: all hours of the day, every DST
        moments.append(start + timedelta(hours=hours))
    for year in range(2019, 2031):
        for day in (datetime(year, 3, 31, tzinfo=timezone.utc), datetime(year, 10, 31, tzinfo=timezone.utc)):
            while day.weekday() != 6:
                day -= timedelta(days=1)
            for minutes in range(-26 * 60, 26 * 60, 30):  # around both switches, at 01:00 UTC on the last Sunday
                moments.append(day + timedelta(hours=1, minutes=minutes))
    return moments


def test_prague_midnight_matches_the_time_zone_database(harness):
    prague = ZoneInfo("Europe/Prague")
    moments = _moments()
    lines = run(harness, "prague", "\n".join(str(int(m.timestamp())) for m in moments).encode())
    assert len(lines) == len(moments)
    for moment, line in zip(moments, lines):
        midnight_utc, day_key, offset = (int(x) for x in line.split())
        local = moment.astimezone(prague)
        expected = local.replace(hour=0, minute=0, second=0).astimezone(timezone.utc)
        assert midnight_utc == int(expected.timestamp()), moment
        assert offset == int(local.utcoffset().total_seconds()), moment
        assert day_key == (local.date() - datetime(1970, 1, 1).date()).days, moment


def test_us_summer_time_in_the_tester_matches_the_time_zone_database(harness):
    """In the Strategy Tester the server's offset comes from the broker's rule (UTC+2, +3 on US summer time)."""
    new_york = ZoneInfo("America/New_York")
    days = [datetime(2019, 1, 1, 12, tzinfo=timezone.utc) + timedelta(days=d) for d in range(12 * 366)]
    lines = run(harness, "math", "\n".join(f"ussummer {int(d.timestamp())}" for d in days).encode())
    got = [line.decode() == "1" for line in lines]
    assert got == [bool(d.astimezone(new_york).dst()) for d in days]


MATH = [
    # volumes: down to the step, capped at the maximum, 0 below the minimum; a part to close
    ("open 0.537 0.01 0.01 100", "0.53000000"),
    ("open 0.3 0.01 0.01 100", "0.30000000"),  # 0.3/0.01 is 29.999...: still 0.30
    ("open 250 0.01 0.01 100", "100.00000000"),
    ("open 0.004 0.01 0.01 100", "0.00000000"),
    ("open 1.25 0.1 0.1 50", "1.20000000"),
    ("close 0 1.0 0.01 0.01", "1.00000000"),
    ("close 1.5 1.0 0.01 0.01", "1.00000000"),
    ("close 0.333 1.0 0.01 0.01", "0.33000000"),
    ("close 0.995 1.0 0.01 0.01", "0.99000000"),
    ("close 0.995 1.0 0.02 0.01", "0.00000000"),  # would leave 0.01, below the minimum of 0.02
    ("close 0.004 1.0 0.01 0.01", "0.00000000"),
    ("grid 1.0851249 0.00001 5", "1.08512"),
    ("grid 2345.678 0.05 2", "2345.70"),
    # stops: (outcome, level); buy closes at the bid, sell at the ask; 0 ok, 1 moved out, 2 wrong side
    ("stop 1.08400 1 1 1.08500 0.00050 0.00001 0.00001 5", "0 1.08400"),
    ("stop 1.08480 1 1 1.08500 0.00050 0.00001 0.00001 5", "1 1.08449"),
    ("stop 1.08600 1 1 1.08500 0.00050 0.00001 0.00001 5", "2 1.08600"),
    ("stop 1.08520 1 0 1.08500 0.00050 0.00001 0.00001 5", "1 1.08551"),
    ("stop 1.08400 0 1 1.08500 0.00000 0.00001 0.00001 5", "2 1.08400"),
    ("stop 1.08600 0 1 1.08500 0 0.00001 0.00001 5", "0 1.08600"),
    ("stop 0 1 1 1.08500 0.00050 0.00001 0.00001 5", "0 0.00000"),
    ("stop 2340.00 1 1 2345.00 10.0 0.01 0.05 2", "1 2334.95"),
    # retry policy by retcode: (kind, filled, outcome) with kind 0 never, 1 at a fresh price, 2 after a pause.
    # Only definite refusals are sent again; a timeout or a lost connection never (UNKNOWN); PLACED is no fill.
    ("retry 10004", "1 0 REFUSED"), ("retry 10020", "1 0 REFUSED"), ("retry 10021", "1 0 REFUSED"),
    ("retry 10024", "2 0 REFUSED"),
    ("retry 10012", "0 0 UNKNOWN"), ("retry 10031", "0 0 UNKNOWN"),
    ("retry 10014", "0 0 REFUSED"), ("retry 10016", "0 0 REFUSED"), ("retry 10017", "0 0 REFUSED"),
    ("retry 10018", "0 0 REFUSED"), ("retry 10019", "0 0 REFUSED"), ("retry 10030", "0 0 REFUSED"),
    ("retry 10006", "0 0 REFUSED"), ("retry 10008", "0 0 PLACED"),
    ("retry 10009", "0 1 DONE"), ("retry 10010", "0 1 PARTIAL"),
    # OPEN/ADD: BUY or SELL, nothing else ("-" is the empty side)
    ("side BUY", "BUY"), ("side SELL", "SELL"), ("side -", "refused"), ("side buy", "refused"),
    # the filling policy CTrade would send: execution (0 request, 1 instant, 2 market, 3 exchange), the
    # symbol's FOK|IOC bits, wanted (0 FOK, 1 IOC, 2 RETURN)
    ("filling 0 0 2", "0"), ("filling 1 2 1", "0"),
    ("filling 2 1 0", "0"), ("filling 2 2 1", "1"), ("filling 2 0 2", "none"), ("filling 2 1 1", "none"),
    ("filling 3 0 2", "2"), ("filling 3 2 1", "1"), ("filling 3 2 0", "none"),
    # NaN or infinity in a RESULT is never sent as if it were 0: zeroed, and the outcome becomes UNKNOWN
    ("result DONE 1.08519 0.5", "1 DONE 1.08519"), ("result DONE nan 0.5", "0 UNKNOWN 0"),
    ("result PARTIAL 1.1 inf", "0 UNKNOWN 1.1"), ("result REFUSED nan 0", "0 REFUSED 0"),
    # ... and a TICK with one is counted by the writer, which the session checks before sending
    ("written 1.08512", "0"), ("written nan", "1"), ("written -inf", "1"),
    # journal ids name files: 32 lowercase hex digits only
    ("journal 5f0c3a9e2b7d4e61a8c9d0f1e2a3b4c5", "1"), ("journal 5f0c3a9e2b7d4e61a8c9d0f1e2a3b4c", "0"),
    ("journal ../../5f0c3a9e2b7d4e61a8c9d0f1e2a3b", "0"),
    # JSON numbers
    ("number 1.08500 5", "1.085"), ("number 2 2", "2"), ("number -0.0 2", "0"), ("number 0.00001 12", "0.00001"),
    ("number -6.9 2", "-6.9"), ("number nan 2", "0"), ("number inf 5", "0"), ("number 123456789.5 0", "123456790"),
    # at most 3 requests in any minute: one more goes only when the oldest is a full minute old
    ("rate 3 0 1000 2000 3000 59999 60000 60001 61000", "11100101"),
    # the re-send after a WELCOME: from the trusted point less 5 minutes, never more than 72 hours back
    ("resendfrom 0 1700000000000", "1699740800000"),
    ("resendfrom 1699999000000 1700000000000", "1699998700000"),
    ("resendfrom 1600000000000 1700000000000", "1699740800000"),
    # ... the deals at or after that point, the newest when there are more than the cap, in the history's order
    ("resendpick 100 5 50 99 100 101 150", "2 3 4"),
    ("resendpick 100 2 50 100 101 150", "2 3"),
    ("resendpick 100 5 50 99", "-"),
    ("resendpick 100 0 100 101", "-"),
    # server minus UTC to the whole hour, and whether the PC clock agrees with it (within 120 s)
    ("offset 1700010805 1700000000", "10800 1"), ("offset 1700000000 1700010900", "-10800 1"),
    ("offset 1700007900 1700000000", "7200 0"), ("offset 1700000000 1700000000", "0 1"),
    ("offset 1800000000 1700000000", "0 0"),
]


def test_trade_arithmetic(harness):
    lines = run(harness, "math", "\n".join(line for line, _ in MATH).encode())
    assert [line.decode() for line in lines] == [expected for _, expected in MATH]


# ---- 5. mutations: each check catches what it is for ------------------------------------------------------


def broken_copy(tmp_path: Path, file: Path, old: str, new: str) -> Path:
    """A copy of the mql5 tree with exactly one occurrence of old in file replaced by new."""
    root = tmp_path / "mql5"
    shutil.copytree(MQL5, root)
    target = root / file
    text = target.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"the mutation must match once in {file}: {old!r}"
    target.write_text(text.replace(old, new), encoding="utf-8")
    return root


def test_a_missing_semicolon_fails_the_syntax_check_at_its_line(tmp_path):
    old = "   m_state=STATE_HELLO_SENT;\n   m_status=\"HELLO sent"
    root = broken_copy(tmp_path, INCLUDES / "Session.mqh", old, old.replace(";", "", 1))
    line = (MQL5 / INCLUDES / "Session.mqh").read_text().split(old)[0].count("\n") + 1
    errors = syntax_errors(root / INCLUDES / "Session.mqh")
    # tree-sitter reports it at the end of the line or at the token after it, as compilers do
    path = root / INCLUDES / "Session.mqh"
    assert errors and (errors[0].startswith(f"{path}:{line}:") or errors[0].startswith(f"{path}:{line + 1}:")), errors


def test_a_misspelled_builtin_parses_but_fails_to_compile(tmp_path):
    root = broken_copy(tmp_path, INCLUDES / "Terminal.mqh", "if(!SymbolInfoTick(symbol,tick))",
                       "if(!SymbolInfoTik(symbol,tick))")
    assert syntax_errors(root / INCLUDES / "Terminal.mqh") == []  # tree-sitter cannot see it ...
    status, messages = compiled(root, tmp_path / "work")  # ... g++ against the stubs can
    assert status != 0 and "'SymbolInfoTik' was not declared" in messages.replace("‘", "'").replace("’", "'")
    assert f"{root / INCLUDES / 'Terminal.mqh'}:" in messages


def test_a_wrong_argument_count_fails_to_compile(tmp_path):
    root = broken_copy(tmp_path, INCLUDES / "Execution.mqh", "m_trade.PositionModify((ulong)job.ticket,job.sl,job.tp)",
                       "m_trade.PositionModify((ulong)job.ticket,job.sl)")
    status, messages = compiled(root, tmp_path / "work")
    assert status != 0 and "no matching function for call" in messages and "PositionModify" in messages


def test_a_misspelled_field_constant_fails_to_compile_and_conformance(tmp_path):
    root = broken_copy(tmp_path, INCLUDES / "Messages.mqh", "w.Num(MT5B_F_BID,t.bid,t.digits);",
                       "w.Num(MT5B_F_BIDS,t.bid,t.digits);")
    status, messages = compiled(root, tmp_path / "work")
    assert status != 0 and "MT5B_F_BIDS" in messages
    problems = conformance.check(sources(root), protocol(root))
    assert any("MT5B_F_BIDS" in p for p in problems) and any("does not write 'bid'" in p for p in problems)


def test_a_field_of_another_message_fails_conformance(tmp_path):
    root = broken_copy(tmp_path, INCLUDES / "Messages.mqh", "   w.Int(MT5B_F_SEQ,seq);\n   w.Int(MT5B_F_TIME_MSC,time_msc);",
                       "   w.Int(MT5B_F_SEQ,seq);\n   w.Int(MT5B_F_TIME_MSC,time_msc);\n   w.Num(MT5B_F_BALANCE,0,2);")
    problems = conformance.check(sources(root), protocol(root))
    assert any("BuildHeartbeat writes 'balance', which HEARTBEAT does not have" in p for p in problems), problems


def test_a_dropped_required_field_fails_conformance(tmp_path):
    root = broken_copy(tmp_path, INCLUDES / "Messages.mqh", "   w.Num(MT5B_F_ASK,t.ask,t.digits);\n", "")
    problems = conformance.check(sources(root), protocol(root))
    assert any("BuildTick does not write 'ask', which TICK requires" in p for p in problems), problems


def test_a_bridge_field_left_unread_fails_conformance(tmp_path):
    root = broken_copy(tmp_path, INCLUDES / "Messages.mqh", "      !r.GetString(MT5B_F_REASON_CODE,m.reason_code,problem) ||\n", "")
    problems = conformance.check(sources(root), protocol(root))
    assert "the EA never reads 'reason_code' of COMMAND" in problems


def test_a_field_named_outside_the_message_functions_fails_conformance(tmp_path):
    root = broken_copy(tmp_path, INCLUDES / "Session.mqh", "   if(!m_reader.Parse(text))",
                       "   if(m_reader.Has(MT5B_F_CODE))\n      LogDebug(text);\n   if(!m_reader.Parse(text))")
    problems = conformance.check(sources(root), protocol(root))
    assert any("Classify names protocol fields ['code']" in p for p in problems), problems


@pytest.mark.parametrize("literal", ['"bid"', '"TICK"', '"CLOSE_ALL"', '"OUT_BY"', '"NOT_INTRODUCED"'])
def test_a_retyped_protocol_string_fails_conformance(tmp_path, literal):
    root = broken_copy(tmp_path, MAIN, 'g_last_failsafe="none";', f"g_last_failsafe={literal};")
    problems = conformance.retyped_literals(sources(root), protocol(root))
    assert len(problems) == 1 and "MT5Bridge.mq5:" in problems[0] and literal in problems[0], problems


def test_a_retyped_key_in_a_builder_fails_conformance(tmp_path):
    root = broken_copy(tmp_path, INCLUDES / "Messages.mqh", "w.Num(MT5B_F_BID,t.bid,t.digits);", 'w.Num("bid",t.bid,t.digits);')
    assert any('"bid"' in p for p in conformance.retyped_literals(sources(root), protocol(root)))
    assert any("does not write 'bid'" in p for p in conformance.check(sources(root), protocol(root)))


def test_a_structure_passed_by_value_fails_the_subset_check(tmp_path):
    root = broken_copy(tmp_path, MAIN, "void LogResult(const SCommand &c,const SResultInfo &r)",
                       "void LogResult(const SCommand c,const SResultInfo &r)")
    problems = rules.subset_problems(sources(root))
    assert len(problems) == 1 and "passed by reference only" in problems[0], problems


def test_a_variable_named_like_a_builtin_fails_the_subset_check(tmp_path):
    root = broken_copy(tmp_path, MAIN, "double equity_floor=g_guard.Floor();", "double floor=g_guard.Floor();")
    problems = rules.subset_problems(sources(root))
    assert len(problems) == 1 and "'floor' is an MQL5 built-in" in problems[0], problems


def test_a_pointer_fails_the_subset_check(tmp_path):
    root = broken_copy(tmp_path, MAIN, "CEquityGuard        g_guard;", "CEquityGuard       *g_guard;")
    assert any("pointers" in p for p in rules.subset_problems(sources(root)))


def test_a_handler_with_another_signature_fails(tmp_path):
    root = broken_copy(tmp_path, MAIN, "const MqlTradeRequest &request,const MqlTradeResult &result)",
                       "MqlTradeRequest &request,const MqlTradeResult &result)")
    problems = rules.handler_problems(root / MAIN)
    assert len(problems) == 1 and "OnTradeTransaction" in problems[0]


def test_an_import_unlike_zmq_h_fails(tmp_path):
    root = broken_copy(tmp_path, INCLUDES / "Zmq.mqh", "int  zmq_send(long socket,const uchar &buf[],ulong len,int flags);",
                       "int  zmq_send(long socket,const uchar &buf[],uint len,int flags);")
    problems = rules.import_problems(root / INCLUDES / "Zmq.mqh", STUBS / "zmq_reference.h")
    assert len(problems) == 1 and "zmq_send" in problems[0]


def test_a_wrong_zmq_constant_fails(tmp_path):
    root = broken_copy(tmp_path, INCLUDES / "Zmq.mqh", "#define ZMQ_RCVTIMEO           27", "#define ZMQ_RCVTIMEO           28")
    problems = rules.import_problems(root / INCLUDES / "Zmq.mqh", STUBS / "zmq_reference.h")
    assert problems == [f"{root / INCLUDES / 'Zmq.mqh'}: ZMQ_RCVTIMEO is 28, zmq.h says 27"]


def test_without_gxx_the_compile_check_fails_instead_of_skipping(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(CompilerMissing, match="g\\+\\+ is not installed"):
        compile_ea(MQL5, tmp_path)


# each promise undone in the EA: the check meant for it fails

UNDONE = [
    # a retry after TIMEOUT for an OPEN: the answer no longer ends the job
    (INCLUDES / "Execution.mqh", "if(IsOutcomeUnknown(first_retcode))", "if(false)",
     "Run does not contain 'IsOutcomeUnknown('"),
    # an empty side opens a SELL again
    (INCLUDES / "Execution.mqh", "if(!OpeningOrderType(c.side,order_type))", "if(false)",
     "ExecuteOpen does not contain 'OpeningOrderType('"),
    (INCLUDES / "Session.mqh", "   if(ClampWelcome(w))\n", "   if(false)\n", "ApplyWelcome does not contain 'ClampWelcome('"),
    (INCLUDES / "ExecutedIds.mqh", "return(FileMove(temporary,m_common,m_file,FILE_REWRITE|m_common));",
     "return(true);", "Rewrite does not contain 'FileMove('"),
    (MAIN, "   Reinitialise();\n", "\n", "OnInit does not contain 'Reinitialise()'"),
    (MAIN, "   g_guard.Reset(same_account);\n", "\n", "Reinitialise does not contain 'g_guard.Reset('"),
    (MAIN, "   string journal=g_session.JournalId();", "   string journal=\"common\";",
     "EnsureExecutedIds does not contain 'JournalId()'"),
    (INCLUDES / "Execution.mqh", "      if(i>0)\n         BetweenSteps(false);\n", "",
     "ExecuteCloseAll does not contain 'BetweenSteps('"),
    (INCLUDES / "Session.mqh", "   if(m_warmup_next<WARMUP_FRAMES)\n     {\n      WarmupStep();",
     "   if(m_warmup_next<WARMUP_FRAMES)\n     {\n      m_warmup_next=WARMUP_FRAMES;", "Service does not contain 'WarmupStep()'"),
    (MAIN, "   long offset=g_clock.Offset();", "   long offset=0;", "GuardOnce does not contain 'g_clock.Offset()'"),
    (INCLUDES / "Session.mqh", "      m_result_seq[i]=RESULT_UNSENT;\n   // ... and every unacknowledged DEAL",
     "   // ... and every unacknowledged DEAL", "Disconnect does not contain 'RESULT_UNSENT'"),
    # a DEAL refused as NOT_INTRODUCED (or lost with the connection) dropped again instead of sent after WELCOME
    (INCLUDES / "Session.mqh", "      m_deal_seq[i]=DEAL_UNSENT;\n   // a re-send cut short",
     "   // a re-send cut short", "Disconnect does not contain 'DEAL_UNSENT'"),
    # a DEAL forgotten as soon as it is sent, as before
    (INCLUDES / "Session.mqh",
     "         if(SendFrame(frame,seq,MT5B_MSG_DEAL,0,false))\n            m_deal_seq[i]=seq;\n"
     "         else\n            stopped=true;   // the rest on the next call\n",
     "         if(SendFrame(frame,seq,MT5B_MSG_DEAL,0,false))\n            continue;\n"
     "         stopped=true;\n", "Flush does not contain 'm_deal_seq[i]=seq'"),
    # no re-send of the history after a WELCOME
    (INCLUDES / "Session.mqh", "   m_resend_due=true;\n", "", "ApplyWelcome does not contain 'm_resend_due=true'"),
    (INCLUDES / "Session.mqh", "   if(m_resend_due || m_resend_next<m_resend_count)\n      ResendStep();\n", "",
     "Service does not contain 'ResendStep()'"),
    # the whole history at once, unbounded
    (INCLUDES / "Session.mqh", "   int count=PickDealsToResend(times,n,from_msc,RESEND_MAX_DEALS,picked);",
     "   int count=0;", "ReadResendHistory does not contain 'PickDealsToResend('"),
    (INCLUDES / "Zmq.mqh", "BytesOption(ZMQ_CURVE_SERVERKEY,server_key,ZMQ_Z85_KEY_CHARS+1)",
     "BytesOption(ZMQ_CURVE_SERVERKEY,server_key,ZMQ_Z85_KEY_CHARS)", "Open contains 'ZMQ_Z85_KEY_CHARS)'"),
    (INCLUDES / "Execution.mqh", "      if(!FillingAsCTrade(", "      if(!FillingAsCTrade_(", "SendOnce does not contain"),
]


@pytest.mark.parametrize("file,old,new,expected", UNDONE,
                         ids=lambda v: str(v)[:40] if isinstance(v, str) else None)
def test_an_undone_promise_fails_its_check(tmp_path, file, old, new, expected):
    root = broken_copy(tmp_path, file, old, new)
    problems = rules.promise_problems(sources(root))
    assert any(expected in p for p in problems), problems


def test_a_wait_in_the_look_after_an_unknown_answer_fails(tmp_path):
    root = broken_copy(tmp_path, INCLUDES / "Execution.mqh", "bool CCommandExecutor::SeenOnAccount(STradeJob &job)\n  {",
                       "bool CCommandExecutor::SeenOnAccount(STradeJob &job)\n  {\n   Sleep(400);")
    assert any("SeenOnAccount contains 'Sleep('" in p for p in rules.promise_problems(sources(root)))


HARNESS_UNDONE = {
    # the retry after TIMEOUT the issue names: RetryKind sends a 10012 again
    "retry after TIMEOUT": (INCLUDES / "TradeMath.mqh", "   if(retcode==TRADE_RETCODE_TOO_MANY_REQUESTS)\n",
                            "   if(retcode==TRADE_RETCODE_TOO_MANY_REQUESTS || retcode==TRADE_RETCODE_TIMEOUT)\n",
                            "retry 10012", "0 0 UNKNOWN"),
    "PLACED as a fill": (INCLUDES / "TradeMath.mqh",
                         "   return(retcode==TRADE_RETCODE_DONE || retcode==TRADE_RETCODE_DONE_PARTIAL);",
                         "   return(retcode==TRADE_RETCODE_DONE || retcode==TRADE_RETCODE_DONE_PARTIAL || "
                         "retcode==TRADE_RETCODE_PLACED);", "retry 10008", "0 0 PLACED"),
    "empty side as SELL": (INCLUDES / "TradeMath.mqh", "   if(side==MT5B_SIDE_SELL)\n", "   if(side!=MT5B_SIDE_BUY)\n",
                           "side -", "refused"),
    "unclamped WELCOME": (INCLUDES / "Messages.mqh", "   m.deadline_ms=deadline;\n", "", None, None),
    "re-send without its cap": (INCLUDES / "DealResend.mqh", "   if(n<=limit)\n      return(n);\n",
                                "   return(n);\n", "resendpick 100 2 50 100 101 150", "2 3"),
    "re-send from the start of time": (INCLUDES / "DealResend.mqh", "   if(trusted_msc<=0)\n      return(oldest);\n",
                                       "   if(trusted_msc<=0)\n      return(0);\n", "resendfrom 0 1700000000000",
                                       "1699740800000"),
    "NaN written as 0 unnoticed": (INCLUDES / "Json.mqh", "   if(!MathIsValidNumber(value))\n      m_bad_numbers++;\n",
                                   "", "written nan", "1"),
}


@pytest.mark.parametrize("name", HARNESS_UNDONE)
def test_an_undone_rule_changes_what_the_harness_sees(tmp_path, name):
    file, old, new, line, expected = HARNESS_UNDONE[name]
    root = broken_copy(tmp_path, file, old, new)
    binary = build_harness(root, tmp_path / "work")
    if line is None:
        frames = _welcome(deadline_ms=60000) + b"\n"
        got = json.loads(subprocess.run([str(binary), "parse"], input=frames, capture_output=True, check=True,
                                        timeout=60).stdout)
        assert got["applied_deadline_ms"] == 60000  # the mutation shows: the clamp is what keeps it at 10000
        return
    out = subprocess.run([str(binary), "math"], input=line.encode() + b"\n", capture_output=True, check=True,
                         timeout=60).stdout.decode().strip()
    assert out != expected, f"{name}: the harness still prints {expected!r}"
