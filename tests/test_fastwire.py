"""The fast TICK reader answers exactly as the protocol's models do: the same frames accepted, the same values
read, and everything else left to the models (which word the ERROR). A node reading TICKs with it sends the
very bytes a node reading them with the models sends, and keeps the same book and journal."""

from __future__ import annotations

import copy
import json
import math
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mt5bridge.bridge import fastwire
from mt5bridge.bridge import protocol as wire
from mt5bridge.bridge import protocol_gen
from mt5bridge.config import Config
from mt5bridge.bridge.journal import Journal
from mt5bridge.bridge.node import Node
from test_protocol import BAD_FRAMES

BIG = 10 * wire.MAX_FRAME_BYTES
SERVER_OFFSET_MS = 3 * 3_600_000


def models_read(frame: bytes) -> dict[str, Any] | None:
    """What the protocol's models make of a frame: a TICK's model_dump(), else None (refused, or not a TICK)."""
    try:
        msg = wire.parse_request(frame, BIG)
    except wire.ProtocolError:
        return None
    return msg.model_dump() if msg.type == "TICK" else None


def as_dict(values: tuple | None) -> dict[str, Any] | None:
    """What the readers give (the TICK's values in TICK_FIELDS order), keyed by field name like model_dump()."""
    if values is None:
        return None
    assert isinstance(values, tuple) and len(values) == len(fastwire.TICK_FIELDS)
    return dict(zip(fastwire.TICK_FIELDS, values))


def typed(value: Any) -> Any:
    """A value with the type of every part spelled out, so that 1, 1.0 and True compare unequal."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    return (type(value).__name__, value)


def assert_same_answer(frame: bytes) -> None:
    expected = models_read(frame)
    got = as_dict(fastwire.read_tick(frame, BIG))
    if expected is None:
        assert got is None, frame
    else:
        assert got is not None, f"a valid TICK left to the slow path: {frame!r}"
        assert typed(got) == typed(expected), frame


def tick(**changes: Any) -> dict[str, Any]:
    msg = copy.deepcopy(wire.Tick.example)
    msg.update(changes)
    return msg


# Every bound of the TICK's fields met exactly, from below and from above.
LOW_EDGES = tick(seq=0, time_msc=wire.MIN_TIME_MSC, bid=5e-324, ask=5e-324, volume=0.0, balance=-wire.MAX_MONEY,
                 round_trip_us=0, positions=[dict(wire.Position.example, ticket=1, volume=5e-324, open_price=5e-324,
                                                  sl=0.0, tp=0.0, profit=-wire.MAX_MONEY, magic=0,
                                                  open_time_msc=wire.MIN_TIME_MSC)])
HIGH_EDGES = tick(seq=wire.MAX_SAFE_INTEGER, time_msc=wire.MAX_TIME_MSC, bid=wire.MAX_PRICE, ask=wire.MAX_PRICE,
                  volume=wire.MAX_QUANTITY, balance=wire.MAX_MONEY, round_trip_us=wire.MAX_ROUND_TRIP_US,
                  positions=[dict(wire.Position.example, ticket=wire.MAX_SAFE_INTEGER, volume=wire.MAX_LOTS,
                                  open_price=wire.MAX_PRICE, sl=wire.MAX_PRICE, tp=wire.MAX_PRICE,
                                  swap=wire.MAX_MONEY, magic=10**18 - 1, open_time_msc=wire.MAX_TIME_MSC)])


def compact(msg: Any) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode()


# --- fixed cases ----------------------------------------------------------------------------------------------


def test_the_reader_knows_every_rule_of_the_current_models():
    assert fastwire.ENABLED
    assert fastwire.TICK_FIELDS == tuple(wire.Tick.model_fields)   # the node unpacks a TICK in this order
    assert fastwire.tick_values(wire.Tick.model_validate(wire.Tick.example)) == tuple(
        wire.Tick.model_validate(wire.Tick.example).model_dump().values())


@pytest.mark.parametrize("msg", [
    tick(),
    tick(positions=[]),
    tick(positions=[dict(wire.Position.example, ticket=k, comment=None if k % 2 else "x" * 31) for k in range(1, 6)]),
    {k: v for k, v in tick().items() if k != "round_trip_us"},     # the model's default, 0
    tick(bid=1, ask=2, volume=0, balance=100000, positions=[dict(wire.Position.example, sl=0, profit=-3)]),
    tick(bid=1.1, ask=1.1),                                          # bid may equal ask
    tick(volume=-0.0, balance=-5.5, equity=wire.MAX_MONEY, margin=-wire.MAX_MONEY, free_margin=5e-324),
    LOW_EDGES,
    HIGH_EDGES,
    tick(positions=[dict(wire.Position.example, magic=wire.MAX_INT64)]),
    tick(positions=[dict(wire.Position.example, symbol="Ü", comment="€" * 31)]),
], ids=["example", "no positions", "null comments", "no round trip", "integers for floats", "bid equals ask",
        "edges of money", "low edges of ranges", "high edges of ranges", "19-digit magic", "non-ASCII text"])
def test_a_valid_tick_is_read_as_the_models_read_it(msg):
    for frame in (compact(msg), json.dumps(msg).encode(), json.dumps(msg, ensure_ascii=False, indent=1).encode()):
        assert_same_answer(frame)
        assert fastwire.read_tick(frame, BIG) is not None


@pytest.mark.parametrize(("data", "code"), [c[1:3] for c in BAD_FRAMES], ids=[c[0] for c in BAD_FRAMES])
def test_every_refused_frame_is_left_to_the_models(data, code):
    # They word the ERROR, so it stays what the protocol tests pin.
    assert fastwire.read_tick(data, BIG) is None


@pytest.mark.parametrize("frame", [
    compact(tick(positions=[wire.Position.example] * (wire.MAX_POSITIONS + 1))),
    compact(tick(positions=[dict(wire.Position.example, comment="x" * 32)])),
    compact(tick(positions=[dict(wire.Position.example, volume=wire.MAX_LOTS * (1 + 1e-15))])),
    compact(tick(seq=True)),
    compact(tick(bid=True)),
    compact(tick(round_trip_us=1.0)),
    compact(tick(type="TICKS")),
    compact(tick(positions={})),
    compact(tick(positions=[[]])),
    compact(tick(positions=[dict(wire.Position.example, magic=False)])),
    compact(tick(positions=[dict(wire.Position.example, extra=1)])),
    compact(tick(balance="101250.5")),
    b'{"type":"TICK","seq":1,"bid":1e400' + compact(tick())[1:],    # a duplicate key that is out of range
    compact(tick(equity=10**400)),
    compact(tick()) + b" x",
    b"\xef\xbb\xbf" + compact(tick()),
], ids=["501 positions", "32-character comment", "volume over the cap", "bool seq", "bool bid",
        "float round trip", "wrong type", "positions an object", "position an array", "bool magic",
        "extra position field", "string balance", "duplicate key", "huge integer", "trailing text", "BOM"])
def test_a_frame_the_models_refuse_is_refused_here_too(frame):
    assert models_read(frame) is None
    assert fastwire.read_tick(frame, BIG) is None


def test_a_duplicate_key_counts_as_the_models_count_it():
    # JSON lets a key repeat; both readers keep the last value.
    frame = b'{"bid":9.5,' + compact(tick())[1:]
    assert_same_answer(frame)
    frame = compact(tick())[:-1] + b',"ask":0.5}'   # now bid > ask
    assert_same_answer(frame)


def test_other_messages_and_oversized_frames_are_left_to_the_models():
    for model in wire.EA_MESSAGES:
        if model is not wire.Tick:
            assert fastwire.read_tick(compact(model.example), BIG) is None
    frame = compact(tick())
    assert fastwire.read_tick(frame, len(frame)) is not None
    assert fastwire.read_tick(frame, len(frame) - 1) is None     # FRAME_TOO_LARGE is the models' to say


def test_a_rule_the_reader_does_not_know_switches_it_off(monkeypatch):
    assert fastwire._rules_known()
    with monkeypatch.context() as m:
        m.setitem(fastwire.KNOWN_MODEL_RULES, "Tick", ())        # as if Tick had gained a cross-field rule
        assert not fastwire._rules_known()
    with monkeypatch.context() as m:
        m.setitem(wire.Position.model_config, "str_strip_whitespace", True)   # a setting that changes reading
        assert not fastwire._rules_known()
    with monkeypatch.context() as m:
        m.setattr(wire.Position.model_fields["symbol"], "alias", "sym")
        assert not fastwire._rules_known()
    import importlib

    try:
        with monkeypatch.context() as m:
            m.setitem(wire.Position.model_config, "str_strip_whitespace", True)
            importlib.reload(fastwire)
            assert not fastwire.ENABLED and fastwire._read_usual is None
            assert fastwire.read_tick(compact(tick()), BIG) is None
    finally:
        importlib.reload(fastwire)
    assert fastwire.ENABLED and fastwire.read_tick(compact(tick()), BIG) is not None


# --- the bounds: every number at, just inside and just outside each bound, and far beyond ----------------------

SCHEMA = protocol_gen.schema()["$defs"]    # the bounds as the published schema states them
# Numbers no field takes: past signed and unsigned 64-bit, past a double, below the smallest double.
HUGE_TOKENS = ["9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
               "18446744073709551615", "18446744073709551616", "1" + "0" * 30, "1" + "0" * 400, "1e308",
               "1.7976931348623157e308", "1e309", "-1e309", "1e-400", "-1.7976931348623157e308", "2e12", "1e19"]


def _numeric_schema(model: str, name: str) -> dict[str, Any]:
    prop = SCHEMA[model]["properties"][name]
    return next((alt for alt in prop.get("anyOf", [prop]) if alt.get("type") != "null"), prop)


def bounds(model: str, name: str) -> tuple[str, list[tuple[float, bool]]]:
    """A numeric field's JSON type and its bounds as (value, inclusive) pairs, from the published schema."""
    prop = _numeric_schema(model, name)
    found = [(prop[key], key in ("minimum", "maximum"))
             for key in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum") if key in prop]
    return prop["type"], found


def edge_values(model: str, name: str) -> list[int | float]:
    """Each bound of the field, the values one unit beside it and, for a float, the doubles next to it."""
    kind, found = bounds(model, name)
    out: list[int | float] = []
    for value, _ in found:
        if kind == "integer":
            out += [int(value) - 1, int(value), int(value) + 1]
        else:
            value = float(value)
            out += [value - 1, math.nextafter(value, -math.inf), value, math.nextafter(value, math.inf), value + 1]
    return out


def edge_tokens(model: str, name: str) -> list[str]:
    """The edge values as JSON number tokens, each float also spelled as an integer and with an exponent where
    it can be, so that every path of a reader's number parsing meets the bound."""
    tokens = []
    for value in edge_values(model, name):
        tokens.append(json.dumps(value))
        if isinstance(value, float):
            tokens.append(f"{value:.17e}")
            if value.is_integer() and abs(value) < 1e20:
                tokens.append(str(int(value)))
    return list(dict.fromkeys(tokens))


def within(model: str, name: str, token: str) -> bool:
    """Whether the number ``token`` meets the field's bounds and type, by the schema, read as Python reads it."""
    kind, found = bounds(model, name)
    value = json.loads(token)
    if kind == "integer" and not isinstance(value, int):
        return False
    if kind == "number":
        value = float(value) if isinstance(value, int) and abs(value) < 2**1000 else value
        if not isinstance(value, float) or not math.isfinite(value):
            return False
    prop = _numeric_schema(model, name)
    return (("minimum" not in prop or value >= prop["minimum"])
            and ("exclusiveMinimum" not in prop or value > prop["exclusiveMinimum"])
            and ("maximum" not in prop or value <= prop["maximum"])
            and ("exclusiveMaximum" not in prop or value < prop["exclusiveMaximum"]))


def near_bounds(model: str, name: str) -> st.SearchStrategy:
    """Values of the field: any in its range, or one at or beside a bound."""
    kind, _ = bounds(model, name)
    prop = _numeric_schema(model, name)
    lo = prop.get("minimum", prop.get("exclusiveMinimum"))
    hi = prop.get("maximum", prop.get("exclusiveMaximum"))
    inside = (st.integers(min_value=lo, max_value=hi) if kind == "integer"
              else st.floats(min_value=lo, max_value=hi, exclude_min="exclusiveMinimum" in prop))
    return st.one_of(inside, st.sampled_from(edge_values(model, name)))


NUMERIC = [(model, name) for model in ("Tick", "Position") for name, prop in SCHEMA[model]["properties"].items()
           if prop.get("type") in ("integer", "number")]


def test_every_numeric_field_of_a_tick_and_a_position_is_bounded_on_both_sides():
    # Unbounded numbers are what overflowed the journal and the engine: a field without both bounds is a hole.
    assert len(NUMERIC) == 20
    for model, name in NUMERIC:
        kind, found = bounds(model, name)
        assert len(found) == 2, f"{model}.{name} is not bounded on both sides: {found}"


def frame_with_token(model: str, name: str, token: str, layout: str) -> bytes:
    """The example TICK with one number written as ``token``: in the EA's layout, or spaced (for pydantic)."""
    msg = tick()
    target = msg if model == "Tick" else msg["positions"][0]
    target[name] = "@@token@@"
    text = as_the_ea_writes(msg).decode() if layout == "usual" else json.dumps(msg)
    return text.replace('"@@token@@"', token).encode()


@pytest.mark.parametrize(("model", "name"), NUMERIC, ids=[f"{m}.{n}" for m, n in NUMERIC])
def test_both_readers_hold_every_bound_exactly(model, name):
    for token in [*edge_tokens(model, name), *HUGE_TOKENS]:
        expected_valid = within(model, name, token)
        if name == "ask":   # the example's bid must stay at or below it
            expected_valid = expected_valid and json.loads(token) >= tick()["bid"]
        if name == "bid":
            expected_valid = expected_valid and json.loads(token) <= tick()["ask"]
        for layout in ("usual", "spaced"):
            frame = frame_with_token(model, name, token, layout)
            assert (models_read(frame) is not None) == expected_valid, (token, layout)
            assert_same_answer(frame)
            got = assert_compiled_agrees(frame)
            if layout == "usual" and expected_valid and len(token.lstrip("-")) <= 18:
                assert got is not None, f"a valid {name} of the usual layout fell back to pydantic: {token}"


# --- generated frames -----------------------------------------------------------------------------------------

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 0.0, -0.0, 5e-324, 1e-320, 1.0, 1.1, 100000.0, 100000.00000000001, 1e308, 2**53 + 1,
                     2**63, 2**64, -1, -1.0, "", "BUY", "SELL", "TICK", "x" * 31, "x" * 32, "€" * 31, [], {}]),
    st.sampled_from(sorted({v for model, name in NUMERIC for v in edge_values(model, name)})),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=2),
)
POSITION_FIELDS = list(wire.Position.model_fields)
TICK_FIELDS = [f for f in wire.Tick.model_fields]


@st.composite
def positions(draw) -> dict[str, Any]:
    return {
        "ticket": draw(near_bounds("Position", "ticket")),
        "symbol": draw(st.sampled_from(["EURUSD", "XAUUSD", "GER40.cash"])),
        "side": draw(st.sampled_from(["BUY", "SELL"])),
        "volume": draw(st.one_of(st.floats(min_value=0.01, max_value=wire.MAX_LOTS), near_bounds("Position", "volume"))),
        "open_price": draw(st.one_of(st.floats(min_value=1e-5, max_value=1e6), near_bounds("Position", "open_price"))),
        "sl": draw(st.sampled_from([0.0, 0, 1.08205, wire.MAX_PRICE, -1.0])),
        "tp": draw(near_bounds("Position", "tp")),
        "profit": draw(near_bounds("Position", "profit")),
        "swap": draw(st.floats(min_value=-1e6, max_value=1e6)),
        "commission": draw(st.sampled_from([0.0, -5.0, -5, -wire.MAX_MONEY, math.nextafter(-wire.MAX_MONEY, -2e12)])),
        "magic": draw(near_bounds("Position", "magic")),
        "open_time_msc": draw(near_bounds("Position", "open_time_msc")),
        "comment": draw(st.one_of(st.none(), st.text(max_size=33))),
    }


@st.composite
def tick_frames(draw) -> bytes:
    bid = draw(st.one_of(st.floats(min_value=1e-5, max_value=1e6), near_bounds("Tick", "bid")))
    msg: dict[str, Any] = {
        "type": "TICK", "seq": draw(near_bounds("Tick", "seq")),
        "time_msc": draw(near_bounds("Tick", "time_msc")), "bid": bid,
        "ask": draw(st.sampled_from([bid, bid + 0.0001, bid * 2, bid - 0.0001])),
        "volume": draw(st.sampled_from([0.0, 0, 3.5, wire.MAX_QUANTITY, wire.MAX_QUANTITY + 1])),
        "balance": draw(st.one_of(st.floats(allow_nan=False, allow_infinity=False), near_bounds("Tick", "balance"))),
        "equity": draw(near_bounds("Tick", "equity")),
        "margin": draw(st.floats(min_value=0, max_value=1e9)),
        "free_margin": draw(st.floats(min_value=-1e9, max_value=1e9)),
        "positions": draw(st.lists(positions(), max_size=3)),
        "round_trip_us": draw(near_bounds("Tick", "round_trip_us")),
    }
    # Break it, a little or a lot: a field of the tick or of a position takes an odd value, goes, or gains a
    # neighbour; the whole is written compact or spaced, in any key order, escaped or not.
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        target = msg
        book = msg.get("positions")
        if isinstance(book, list) and book and isinstance(book[0], dict) and draw(st.booleans()):
            target = book[draw(st.integers(min_value=0, max_value=len(book) - 1))]
        fields = POSITION_FIELDS if target is not msg else TICK_FIELDS
        name = draw(st.sampled_from(fields))
        action = draw(st.sampled_from(["odd", "odd", "drop", "extra"]))
        if action == "odd":
            target[name] = draw(ODD_VALUES)
        elif action == "drop":
            target.pop(name, None)
        else:
            target[draw(st.sampled_from(["bid_size", "colour", name.upper()]))] = draw(ODD_VALUES)
    keys = list(msg)
    if draw(st.booleans()):
        keys = draw(st.permutations(keys))
    msg = {k: msg[k] for k in keys}
    separators = draw(st.sampled_from([(",", ":"), (", ", ": ")]))
    return json.dumps(msg, separators=separators, ensure_ascii=draw(st.booleans()), allow_nan=True).encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tick_frames())
def test_generated_frames_get_the_same_answer_from_both_readers(frame):
    assert_same_answer(frame)


# --- the node: the same bytes out whichever reader read the TICK ----------------------------------------------


def run_node(tmp_path: Path, frames: list[bytes], fast: bool, monkeypatch,
             full_sync: bool = False) -> tuple[list[bytes], dict, list]:
    import mt5bridge.bridge.node as node_module

    folder = tmp_path / ("fast" if fast else "models") / ("full" if full_sync else "usual")
    folder.mkdir(parents=True)
    with monkeypatch.context() as m:
        if not fast:
            m.setattr(node_module, "read_tick", lambda frame, max_bytes: None)
        if full_sync:   # no two books ever look alike: every change of any field syncs the whole book
            m.setattr(node_module, "BOOK_FIXED", lambda position: object())
        cfg = Config.model_validate({"bridge": {"journal": str(folder / "journal.sqlite")}})
        journal = Journal(folder / "journal.sqlite")
        node = Node(cfg, journal, clock=iter(range(10**9)).__next__)
        replies = [node.handle(b"1510234567-EURUSD-1", frame) for frame in frames]
        # Each run has a journal of its own, so a WELCOME names another journal: the rest must be the same.
        replies = [r and r.replace(journal.journal_id.encode(), b"0" * 32) for r in replies]
        status = node.status()
        node.close()
        journal.close()
    db = sqlite3.connect(folder / "journal.sqlite")
    seen = db.execute("SELECT ticket, volume, sl, tp, last_volume, last_sl, last_tp, managed FROM positions_seen "
                      "ORDER BY ticket").fetchall()
    closed = db.execute("SELECT ticket, profit FROM closed_trades ORDER BY ticket").fetchall()
    db.close()
    return replies, status, [seen, closed]


def test_the_node_answers_the_same_bytes_whichever_reader_reads_the_tick(tmp_path, monkeypatch):
    rng = random.Random(5)
    hello = dict(wire.Hello.example, seq=0, symbol="EURUSD", server_utc_offset_s=SERVER_OFFSET_MS // 1000)
    frames = [json.dumps(hello).encode()]
    book: list[dict[str, Any]] = []
    t = 1_783_400_000_000 + SERVER_OFFSET_MS
    for seq in range(1, 400):
        if rng.random() < 0.05:      # a position opens (by hand, so the engine only counts it)
            book.append(dict(wire.Position.example, ticket=1000 + seq, magic=0, comment=None))
        if book and rng.random() < 0.03:
            book.pop(0)
        for p in book:
            if rng.random() < 0.3:   # floating profit moves; now and then the stop too
                p["profit"] = round(rng.uniform(-500, 500), 2)
            if rng.random() < 0.05:
                p["sl"] = round(p["sl"] + 0.0001, 5)
        msg = dict(wire.Tick.example, seq=seq, time_msc=t + 1000 * seq, bid=1.0851, ask=1.0852, positions=book)
        frame = compact(msg) if seq % 3 else json.dumps(msg).encode()
        if seq % 50 == 0:
            frame = compact(dict(msg, bid=1.2, ask=1.1))    # refused: bid above ask
        if seq % 70 == 0:
            frames.append(frame)                            # a re-send before the next
        frames.append(frame)
    fast = run_node(tmp_path, frames, True, monkeypatch)
    slow = run_node(tmp_path, frames, False, monkeypatch)
    assert fast[0] == slow[0]
    assert fast[1]["accounts"] == slow[1]["accounts"] and fast[1]["errors"] == slow[1]["errors"]
    assert fast[1]["requests"] == slow[1]["requests"]
    assert fast[2] == slow[2]
    assert fast[1]["errors"]["INVALID_VALUE"] >= 7
    assert fast[2][1], "no position closed: the scenario does not test the book"
    # Ticks where only floating profit moved give the book only the profits; a node that syncs the whole
    # book on every change keeps the same book (profits included), closes the same trades at the same
    # profit and answers the same bytes.
    full = run_node(tmp_path, frames, True, monkeypatch, full_sync=True)
    assert full[0] == fast[0] and full[1]["accounts"] == fast[1]["accounts"] and full[2] == fast[2]


# --- the compiled reader: the usual layout in C, never an answer the models would not give -------------------

NUMBER_TOKENS = st.one_of(
    st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(["01", "1.", ".5", "+1", "1e", "-", "1.5.2", "0x10", "Infinity", "NaN", "-0", "-0.0", "0e0",
                     "1E400", "-1e-400", "123456789012345678", "1234567890123456789", "9007199254740993",
                     "0.1000000000000000055511151231257827", "1.0000000000000002", "5e-324", "2.4703282292062328e-324",
                     "1.7976931348623157e308", "1.7976931348623159e308", "100000.00000000001", "100000", "true",
                     "null", '"1"', *HUGE_TOKENS]),
    st.sampled_from(sorted({t for model, name in NUMERIC for t in edge_tokens(model, name)})),
)
TICK_NUMBERS = [name for name in TICK_FIELDS if name not in ("type", "positions")]
POSITION_NUMBERS = [name for name in POSITION_FIELDS if name not in ("symbol", "side", "comment")]


def as_the_ea_writes(msg: dict[str, Any]) -> bytes:
    """Compact JSON, fields in the models' order, as the EA and the simulator write a TICK."""
    ordered = {name: msg[name] for name in TICK_FIELDS if name in msg}
    ordered["positions"] = [{name: p[name] for name in POSITION_FIELDS if name in p} for p in ordered["positions"]]
    return compact(ordered)


def assert_compiled_agrees(frame: bytes) -> dict[str, Any] | None:
    """The compiled reader gives None, or exactly what the models read (or the dict for a bid above the ask, which
    the caller refuses by `Tick._spread`, as the models do)."""
    got = as_dict(fastwire._read_usual(frame))
    if got is not None:
        expected = models_read(frame)
        if got["bid"] > got["ask"]:
            assert expected is None, frame
        else:
            assert expected is not None, f"the compiled reader accepted what the models refuse: {frame!r}"
            assert typed(got) == typed(expected), frame
            # -0.0 and 0.0 compare equal: the signs must agree as well.
            for key, value in got.items():
                if isinstance(value, float):
                    assert repr(value) == repr(expected[key]), (key, frame)
    return got


def test_the_compiled_reader_is_on():
    assert fastwire._read_usual is not None


@pytest.mark.parametrize("msg", [
    tick(),
    tick(positions=[]),
    tick(positions=[dict(wire.Position.example, ticket=k, comment=None if k % 2 else "x" * 31) for k in range(1, 6)]),
    tick(bid=1, ask=2, volume=0, balance=100000, positions=[dict(wire.Position.example, sl=0, profit=-3)]),
    tick(bid=1.1, ask=1.1),
    tick(volume=-0.0, balance=-5.5, equity=wire.MAX_MONEY, margin=-wire.MAX_MONEY, free_margin=5e-324),
    LOW_EDGES,
    HIGH_EDGES,     # every integer of at most 18 digits: the C reader's own
    tick(positions=[wire.Position.example] * wire.MAX_POSITIONS),
], ids=["example", "no positions", "null comments", "integers for floats", "bid equals ask", "edges of money",
        "low edges of ranges", "high edges of ranges", "500 positions"])
def test_the_usual_layout_is_read_in_c_as_the_models_read_it(msg):
    frame = as_the_ea_writes(msg)
    assert assert_compiled_agrees(frame) is not None, "the usual layout fell back to pydantic"


@pytest.mark.parametrize("frame", [
    json.dumps(tick()).encode(),                                     # spaced
    compact({k: v for k, v in tick().items() if k != "round_trip_us"}),   # a default left out
    compact(dict(reversed(list(tick().items())))),                   # another order
    compact(tick(positions=[dict(wire.Position.example, symbol="Ü")])),   # an escape
    json.dumps(tick(positions=[dict(wire.Position.example, comment="€")]), ensure_ascii=False,
               separators=(",", ":")).encode(),                      # raw UTF-8
    compact(tick(positions=[dict(wire.Position.example, magic=wire.MAX_INT64)])),   # 19 digits
], ids=["spaced", "default left out", "reordered", "escaped text", "UTF-8 text", "19-digit integer"])
def test_any_other_layout_is_left_to_pydantic_and_still_read(frame):
    assert fastwire._read_usual(frame) is None
    assert_same_answer(frame)
    assert fastwire.read_tick(frame, BIG) is not None


@pytest.mark.parametrize("frame", [
    compact(tick(positions=[wire.Position.example] * (wire.MAX_POSITIONS + 1))),
    compact(tick(positions=[dict(wire.Position.example, comment="x" * 32)])),
    compact(tick(positions=[dict(wire.Position.example, symbol="")])),
    compact(tick(positions=[dict(wire.Position.example, side="LONG")])),
    compact(tick(positions=[dict(wire.Position.example, symbol=None)])),
    compact(tick(positions=[dict(wire.Position.example, ticket=0)])),
    compact(tick(positions=[dict(wire.Position.example, volume=wire.MAX_LOTS * (1 + 1e-15))])),
    compact(tick(bid=0.0)),
    compact(tick(seq=-1)),
    compact(tick(round_trip_us=1.0)),
    compact(tick(type="TICKS")),
    compact(tick())[:-1],
    compact(tick()) + b"}",
], ids=["501 positions", "32-character comment", "empty symbol", "unknown side", "null symbol", "ticket 0",
        "volume over the cap", "zero bid", "negative seq", "float round trip", "wrong type", "cut short",
        "trailing brace"])
def test_a_usual_layout_frame_the_models_refuse_is_not_read_in_c(frame):
    assert models_read(frame) is None
    assert fastwire._read_usual(frame) is None


@st.composite
def number_frames(draw) -> bytes:
    """The EA's layout with raw number tokens (valid JSON or not) in some numeric fields."""
    msg = tick(positions=[dict(wire.Position.example, ticket=1 + k) for k in range(draw(st.integers(0, 2)))])
    slots: dict[str, str] = {}
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        marker = f"@@{len(slots)}@@"
        if msg["positions"] and draw(st.booleans()):
            target = msg["positions"][draw(st.integers(0, len(msg["positions"]) - 1))]
            name = draw(st.sampled_from(POSITION_NUMBERS))
        else:
            target, name = msg, draw(st.sampled_from(TICK_NUMBERS))
        target[name] = marker
        slots[marker] = draw(NUMBER_TOKENS)
    text = as_the_ea_writes(msg).decode()
    for marker, token in slots.items():
        text = text.replace(f'"{marker}"', token)
    return text.encode()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(number_frames())
def test_generated_numbers_are_read_in_c_exactly_as_the_models_read_them(frame):
    assert_compiled_agrees(frame)
    assert_same_answer(frame)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tick_frames())
def test_generated_frames_read_in_c_are_read_as_the_models_read_them(frame):
    assert_compiled_agrees(frame)


def test_a_constraint_the_compiled_reader_does_not_know_keeps_it_off(monkeypatch):
    import annotated_types

    assert fastwire._layout(wire.Tick) and fastwire._layout(wire.Position)
    monkeypatch.setattr(wire.Position.model_fields["volume"], "metadata",
                        [*wire.Position.model_fields["volume"].metadata, annotated_types.MultipleOf(0.01)])
    with pytest.raises(fastwire.UnknownRule, match="Position.volume"):
        fastwire._layout(wire.Position)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.binary(max_size=300))
def test_the_hold_reply_is_the_head_the_sequence_number_and_the_tail(seq, tail):
    assert fastwire.hold_reply(seq, tail) == b'{"type":"COMMAND","reply_to":' + str(seq).encode() + tail


def test_the_nodes_hold_reply_is_a_valid_command(tmp_path):
    journal = Journal(tmp_path / "journal.sqlite")
    node = Node(Config.model_validate({"bridge": {"journal": str(tmp_path / "journal.sqlite")}}), journal)
    hello = dict(wire.Hello.example, seq=0, symbol="EURUSD", server_utc_offset_s=SERVER_OFFSET_MS // 1000)
    node.handle(b"chart", compact(hello))
    # A long-running chart's seq has many digits: the HOLD's reply_to is written in full.
    node.handle(b"old chart", compact(dict(hello, seq=10**12 - 1, chart_id=7)))
    for i, (identity, seq) in enumerate(((b"chart", 1), (b"chart", 2), (b"old chart", 10**12))):
        raw = node.handle(identity, compact(tick(seq=seq, time_msc=1_783_400_000_000 + i, positions=[])))
        reply = wire.parse_reply(raw, BIG)
        assert (reply.type, reply.reply_to, reply.action, reply.reason_code) == ("COMMAND", seq, "HOLD", "NOT_WARM")
    node.close()
    journal.close()
