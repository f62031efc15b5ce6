"""The wire protocol: generated files are current, every message survives the wire, every bad frame is refused
with the right error code and a message that names the field."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from pydantic import ValidationError

from mt5bridge.bridge import protocol as p
from mt5bridge.bridge import protocol_gen as gen

ALL_MESSAGES = (*p.EA_MESSAGES, *p.BRIDGE_MESSAGES)
BIG = 10 * p.MAX_FRAME_BYTES  # room for the oversized-but-legal frames some cases build


def frame(obj: Any) -> bytes:
    return json.dumps(obj).encode("utf-8")


def example(model: type[p.WireModel], **changes: Any) -> dict[str, Any]:
    msg = copy.deepcopy(model.example)
    msg.update(changes)
    return msg


def tick_with_position(**changes: Any) -> dict[str, Any]:
    msg = example(p.Tick)
    msg["positions"][0].update(changes)
    return msg


def refused(data: bytes, max_bytes: int = BIG) -> p.ProtocolError:
    with pytest.raises(p.ProtocolError) as caught:
        p.parse_request(data, max_bytes)
    return caught.value


# --- generated files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", list(gen.GENERATED), ids=lambda path: path.name)
def test_generated_file_is_current(path, repo_root):
    # Compare with the checkout's file: the package may be installed elsewhere than the repository.
    relative = path.relative_to(gen.ROOT)
    committed = repo_root / relative
    expected = gen.GENERATED[path]().encode("utf-8")
    assert committed.exists(), f"{relative} is missing: run {gen.COMMAND}"
    assert committed.read_bytes() == expected, f"{relative} is stale: run {gen.COMMAND}"


@pytest.mark.parametrize("render", list(gen.GENERATED.values()), ids=lambda render: render.__name__)
def test_generation_is_deterministic_with_unix_line_endings(render):
    text = render()
    assert text == render()
    assert "\r" not in text and text.endswith("\n")


def test_mqh_is_plain_defines_with_an_include_guard():
    text = gen.render_mqh()
    lines = text.splitlines()
    assert lines[-1].startswith("#endif")
    body = [line for line in lines if line and not line.startswith("//")]
    assert body[:2] == ["#ifndef MT5B_PROTOCOL_MQH", "#define MT5B_PROTOCOL_MQH"] and body[-1].startswith("#endif")
    define = re.compile(r'^#define (MT5B_[A-Z0-9_]+) +(-?\d+|\(-\d+\)|"[^"\\]*")$')
    names = []
    for line in body[2:-1]:
        match = define.match(line)
        assert match, f"not a plain #define: {line!r}"
        names.append(match.group(1))
    assert len(names) == len(set(names)), "a constant is defined twice"
    assert "MT5B_PROTOCOL_VERSION" in names and f"{p.PROTOCOL_VERSION}" in text


def test_mqh_names_every_message_field_and_enum_value():
    text = gen.render_mqh()
    for kind in p.MESSAGES:
        assert f'#define MT5B_MSG_{kind} ' in text and f'"{kind}"' in text
    for model in (*ALL_MESSAGES, *p.NESTED_MODELS):
        for name in model.model_fields:
            assert re.search(rf'^#define MT5B_F_{name.upper()} +"{name}"$', text, re.M), name
    for prefix, enum in p.ENUMS.items():
        for value in p.enum_values(enum):
            assert re.search(rf'^#define MT5B_{prefix}_\w+ +"{value}"$', text, re.M), (prefix, value)
    assert '#define MT5B_TIME_MSC' not in text  # field names carry the F_ prefix
    assert text.count('"time_msc"') == 1  # one constant per distinct field name


def test_schema_defines_every_message_and_requires_its_type():
    schema = gen.schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    refs = [entry["$ref"] for entry in schema["oneOf"]]
    assert refs == [f"#/$defs/{m.__name__}" for m in ALL_MESSAGES]
    for model in ALL_MESSAGES:
        definition = schema["$defs"][model.__name__]
        assert definition["required"][0] == "type"
        assert definition["properties"]["type"]["const"] == p.message_type(model)
        assert definition["additionalProperties"] is False
        assert all("description" in prop for name, prop in definition["properties"].items() if name != "type")
    assert "Position" in schema["$defs"]


def test_reference_page_covers_every_message_and_error_code():
    page = gen.render_markdown()
    for kind in p.MESSAGES:
        assert f"### {kind}\n" in page
    for code in p.ERROR_CODES:
        assert f"`{code}`" in page
    for model in (*ALL_MESSAGES, *p.NESTED_MODELS):
        for name in model.model_fields:
            assert f"| `{name}` |" in page


# --- round trips --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ALL_MESSAGES, ids=p.message_type)
def test_every_message_survives_the_wire(model):
    parse = p.parse_request if model in p.EA_MESSAGES else p.parse_reply
    sent = model.model_validate(model.example)
    data = p.encode(sent)
    received = parse(data, p.MAX_FRAME_BYTES)
    assert type(received) is model and received == sent
    assert p.encode(received) == data
    assert json.loads(data) == model.example  # the documented example is exactly what goes on the wire
    assert parse(frame(model.example), p.MAX_FRAME_BYTES) == sent


def test_encoding_is_compact_utf8():
    data = p.encode(p.Command.model_validate(p.Command.example))
    assert data.count(b'":') == len(p.Command.example) and b'": ' not in data and b', "' not in data
    data = p.encode(p.Bye(seq=4, reason="Übergabe"))
    assert "Übergabe".encode() in data


def test_null_free_text_reads_as_empty():
    msg = p.parse_request(frame(tick_with_position(comment=None)), BIG)
    assert msg.positions[0].comment == ""
    assert p.parse_request(frame(example(p.Bye, reason=None)), BIG).reason == ""
    assert p.parse_request(frame(example(p.Hello, initial_balance=None)), BIG).initial_balance is None


def test_integers_are_accepted_where_prices_are_floats():
    msg = p.parse_request(frame(example(p.Tick, bid=1, ask=2, positions=[])), BIG)
    assert isinstance(msg.bid, float) and msg.bid == 1.0


def test_a_refusal_becomes_an_error_reply_the_ea_can_read():
    error = refused(frame(example(p.Tick, seq=9, bid=1.2, ask=1.1)))
    reply = p.parse_reply(p.encode(error.to_reply()), BIG)
    assert reply == p.ErrorReply(reply_to=9, code="INVALID_VALUE", message=error.message)


# --- refusals -----------------------------------------------------------------------------------------------

_bars = example(p.Warmup)

BAD_FRAMES: list[tuple[str, bytes, str, str, int]] = [
    # (case, frame, code, text the message must contain, reply_to)
    ("truncated JSON", b'{"type": "TICK", "seq": 3', "MALFORMED_JSON", "not valid JSON", -1),
    ("not UTF-8", b'{"type": "BYE", "seq": 3, "reason": "\xff"}', "MALFORMED_JSON", "not valid JSON", -1),
    ("JSON array", b'[{"type": "TICK"}]', "NOT_AN_OBJECT", "got an array", -1),
    ("JSON number", b"42", "NOT_AN_OBJECT", "got a number", -1),
    ("unknown type", frame({"type": "QUOTE", "seq": 3}), "UNKNOWN_TYPE", '"QUOTE"', 3),
    ("bridge type from the EA", frame({"type": "COMMAND", "seq": 3}), "UNKNOWN_TYPE", '"COMMAND"', 3),
    ("type missing", frame({"seq": 3, "bid": 1.1}), "MISSING_FIELD", "type: required field is missing", 3),
    (
        "newer protocol",
        frame(example(p.Hello, protocol_version=p.PROTOCOL_VERSION + 1, new_field=1)),
        "PROTOCOL_VERSION",
        f"HELLO.protocol_version: bridge speaks {p.PROTOCOL_VERSION}, got {p.PROTOCOL_VERSION + 1}",
        0,
    ),
    ("field missing", frame({k: v for k, v in example(p.Tick).items() if k != "ask"}), "MISSING_FIELD", "TICK.ask", 42),
    (
        "nested field missing",
        frame(example(p.Tick, positions=[{k: v for k, v in p.Position.example.items() if k != "ticket"}])),
        "MISSING_FIELD",
        "TICK.positions[0].ticket: required field is missing",
        42,
    ),
    ("extra field", frame(example(p.Tick, bid_size=5)), "EXTRA_FIELD", "TICK.bid_size: unexpected field", 42),
    (
        "NaN literal",
        frame(example(p.Tick, bid=float("nan"))),
        "INVALID_VALUE",
        "TICK.bid: must be a finite number, got NaN",
        42,
    ),
    (
        "Infinity literal",
        frame(example(p.Tick, equity=float("inf"))),
        "INVALID_VALUE",
        "TICK.equity: must be a finite number, got Infinity",
        42,
    ),
    (
        "-Infinity in a position",
        frame(tick_with_position(profit=float("-inf"))),
        "INVALID_VALUE",
        "TICK.positions[0].profit: must be a finite number",
        42,
    ),
    (
        "NaN inside a bar array",
        frame(example(p.Warmup, close=[1.08502, float("nan"), 1.08509])),
        "INVALID_VALUE",
        "WARMUP.close[1]: must be a finite number",
        1,
    ),
    ("negative price", frame(example(p.Tick, bid=-1.1)), "INVALID_VALUE", "TICK.bid: must be > 0, got -1.1", 42),
    ("zero open price", frame(tick_with_position(open_price=0)), "INVALID_VALUE", "TICK.positions[0].open_price", 42),
    ("bid above ask", frame(example(p.Tick, bid=1.2, ask=1.1)), "INVALID_VALUE", "TICK.bid: 1.2 > ask 1.1", 42),
    (
        "negative position volume",
        frame(tick_with_position(volume=-1)),
        "INVALID_VALUE",
        "TICK.positions[0].volume: must be > 0, got -1",
        42,
    ),
    (
        "absurd position volume",
        frame(tick_with_position(volume=1e9)),
        "INVALID_VALUE",
        "TICK.positions[0].volume: must be <= 100000, got 1000000000.0",
        42,
    ),
    (
        "absurd filled volume",
        frame(example(p.TradeResult, volume=5e6)),
        "INVALID_VALUE",
        "RESULT.volume: must be <= 100000",
        43,
    ),
    (
        "volume_min above volume_max",
        frame(example(p.Hello, volume_min=5.0, volume_max=1.0)),
        "INVALID_VALUE",
        "HELLO.volume_min: 5.0 > volume_max 1.0",
        0,
    ),
    ("price as a string", frame(example(p.Tick, bid="1.1")), "INVALID_VALUE", 'TICK.bid: must be a number, got "1.1"', 42),
    ("price null", frame(example(p.Tick, ask=None)), "INVALID_VALUE", "TICK.ask: must be a number, got null", 42),
    ("seq as a float", frame(example(p.Tick, seq=42.0)), "INVALID_VALUE", "TICK.seq: must be an integer, got 42.0", -1),
    ("ticket as a string", frame(tick_with_position(ticket="7")), "INVALID_VALUE", "TICK.positions[0].ticket", 42),
    ("unknown side", frame(tick_with_position(side="LONG")), "INVALID_VALUE", "TICK.positions[0].side: must be 'BUY' or 'SELL'", 42),
    ("comment too long", frame(tick_with_position(comment="x" * 32)), "INVALID_VALUE", "at most 31 characters", 42),
    ("too many positions", frame(example(p.Tick, positions=[p.Position.example] * 501)), "INVALID_VALUE", "at most 500 items", 42),
    ("lower-case currency", frame(example(p.Hello, currency="usd")), "INVALID_VALUE", "HELLO.currency: must match", 0),
    ("server offset of a day", frame(example(p.Hello, server_utc_offset_s=86400)), "INVALID_VALUE", "HELLO.server_utc_offset_s", 0),
    ("unknown deal reason", frame(example(p.Deal, reason="CORPORATE")), "INVALID_VALUE", "DEAL.reason: must be", 44),
    (
        "high below low",
        frame(example(p.Warmup, high=[1.08506, 1.08490, 1.08517])),
        "INVALID_VALUE",
        "WARMUP.high[1]: 1.0849 < low 1.08498",
        1,
    ),
    (
        "high below close",
        frame(example(p.Warmup, high=[1.08506, 1.08505, 1.08517])),
        "INVALID_VALUE",
        "WARMUP.high[1]: 1.08505 < max(open, close) 1.08511",
        1,
    ),
    (
        "low above open",
        frame(example(p.Warmup, low=[1.0849, 1.08503, 1.08503])),
        "INVALID_VALUE",
        "WARMUP.low[1]: 1.08503 > min(open, close) 1.08502",
        1,
    ),
    (
        "arrays of unequal length",
        frame(example(p.Warmup, close=_bars["close"][:2])),
        "INVALID_VALUE",
        "WARMUP.close: 2 items, time_msc has 3",
        1,
    ),
    (
        "bar times not increasing",
        frame(example(p.Warmup, time_msc=[1783416480000, 1783416480000, 1783416600000])),
        "INVALID_VALUE",
        "WARMUP.time_msc[1]",
        1,
    ),
    ("chunk past the last", frame(example(p.Warmup, chunk=1, chunks=1)), "INVALID_VALUE", "WARMUP.chunk: 1 must be < chunks 1", 1),
    (
        "too many bars",
        frame(example(p.Warmup, **{k: v * 1667 for k, v in _bars.items() if isinstance(v, list)})),
        "INVALID_VALUE",
        "at most 5000 items",
        1,
    ),
]


@pytest.mark.parametrize(("data", "code", "text", "reply_to"), [c[1:] for c in BAD_FRAMES], ids=[c[0] for c in BAD_FRAMES])
def test_bad_frame_is_refused_with_a_clear_reason(data, code, text, reply_to):
    error = refused(data)
    assert error.code == code
    assert text in error.message, error.message
    assert error.reply_to == reply_to


def test_oversized_frame_is_refused_before_parsing():
    data = frame(example(p.Tick))
    assert p.parse_request(data, len(data)).seq == 42  # exactly at the limit is fine
    error = refused(data, max_bytes=len(data) - 1)
    assert (error.code, error.reply_to) == ("FRAME_TOO_LARGE", -1)
    assert f"{len(data)} bytes exceeds {len(data) - 1}" in error.message
    # Not even looked at: garbage that size is refused for its size, not its content.
    assert refused(b"[" * 2000, max_bytes=1000).code == "FRAME_TOO_LARGE"


def test_several_problems_report_the_first_and_count_the_rest():
    error = refused(frame(example(p.Tick, bid=-1, ask=-2, volume=-3)))
    assert error.message.startswith("TICK.bid: must be > 0")
    assert error.message.endswith("(and 2 more problems)")


# --- replies ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"action": "HOLD", "command_id": 17}, "COMMAND.command_id: 17 must be 0 for HOLD"),
        ({"command_id": 0}, "COMMAND.command_id: must be > 0 for OPEN"),
        ({"side": ""}, "COMMAND.side: must be BUY or SELL for OPEN"),
        ({"volume": 0.0}, "COMMAND.volume: must be > 0 for OPEN"),
        ({"action": "CLOSE", "ticket": 0}, "COMMAND.ticket: must be > 0 for CLOSE"),
        ({"reason_code": ""}, "COMMAND.reason_code: must match"),
        ({"reason": None}, "COMMAND.reason: must be a string, got null"),
    ],
)
def test_command_carries_what_its_action_needs(changes, text):
    with pytest.raises(p.ProtocolError) as caught:
        p.parse_reply(frame(example(p.Command, **changes)), BIG)
    assert caught.value.code == "INVALID_VALUE" and text in caught.value.message, caught.value.message
    with pytest.raises(ValidationError):
        p.Command(**{k: v for k, v in example(p.Command, **changes).items() if k != "type"})


def test_hold_needs_no_side_ticket_or_volume():
    hold = p.Command(
        reply_to=42,
        command_id=p.HOLD_COMMAND_ID,
        action="HOLD",
        symbol="EURUSD",
        side="",
        volume=0,
        sl=0,
        tp=0,
        ticket=0,
        reason_code="NO_SIGNAL",
        reason="score 0.12 below the 0.65 entry threshold",
    )
    assert p.parse_reply(p.encode(hold), BIG) == hold


def test_welcome_of_another_protocol_version_is_refused():
    with pytest.raises(p.ProtocolError) as caught:
        p.parse_reply(frame(example(p.Welcome, protocol_version=p.PROTOCOL_VERSION - 1)), BIG)
    assert caught.value.code == "PROTOCOL_VERSION"
    assert (f"WELCOME.protocol_version: must be {p.PROTOCOL_VERSION}, got {p.PROTOCOL_VERSION - 1}"
            in caught.value.message)


def test_every_error_code_is_described():
    assert tuple(p.ERROR_CODES) == p.enum_values(p.ErrorCode)
    assert all(p.ERROR_CODES.values())


# --- bounds of numbers --------------------------------------------------------------------------------------


def _numeric_fields(model: type[p.WireModel]) -> list[tuple[str, dict[str, Any]]]:
    """(name, schema of one value) of every numeric field of a model, a list's items and a nullable one's
    number included."""
    out = []
    for name, prop in gen.schema()["$defs"][model.__name__]["properties"].items():
        prop = prop.get("items", prop)
        prop = next((alt for alt in prop.get("anyOf", [prop]) if alt.get("type") != "null"), prop)
        if prop.get("type") in ("integer", "number"):
            out.append((name, prop))
    return out


def test_every_number_the_protocol_accepts_fits_the_journal_the_engine_and_date_arithmetic():
    import datetime

    for model in (*ALL_MESSAGES, *p.NESTED_MODELS):
        for name, prop in _numeric_fields(model):
            where = f"{model.__name__}.{name}"
            if name == "protocol_version":
                assert prop["const"] == p.PROTOCOL_VERSION
                continue
            low = prop.get("minimum", prop.get("exclusiveMinimum"))
            high = prop.get("maximum", prop.get("exclusiveMaximum"))
            assert low is not None and high is not None, f"{where} is not bounded on both sides"
            if prop["type"] == "integer":
                # SQLite's INTEGER and the engine's long long are signed 64-bit.
                assert -(2**63) <= low and high <= 2**63 - 1, where
                if name not in ("chart_id", "magic"):   # the two that MT5 hands out as any 64-bit value
                    assert high <= p.MAX_SAFE_INTEGER, f"{where} may exceed 2**53: not exact in a double"
            else:
                assert -1e12 <= low and high <= 1e12, f"{where} may overflow the arithmetic done on it"
            if name.endswith("time_msc"):
                assert (low, high) == (p.MIN_TIME_MSC, p.MAX_TIME_MSC), where
    # The window's ends, a day and the widest server offset beyond them, are dates Python can make.
    for ms in (p.MIN_TIME_MSC - 86_400_000 - p.MAX_UTC_OFFSET_S * 1000, p.MAX_TIME_MSC + 86_400_000 + p.MAX_UTC_OFFSET_S * 1000):
        datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    assert datetime.datetime.fromtimestamp(p.MIN_TIME_MSC / 1000, datetime.timezone.utc).year == 2000
    assert datetime.datetime.fromtimestamp(p.MAX_TIME_MSC / 1000, datetime.timezone.utc).year == 2100


def test_a_tick_dated_far_ahead_is_refused_at_the_door():
    # 2**62 ms passed the protocol once and overflowed the journal later, outside the per-frame guard.
    error = refused(frame(example(p.Tick, time_msc=2**62)))
    assert (error.code, error.reply_to) == ("INVALID_VALUE", 42)
    assert error.message == f"TICK.time_msc: must be <= {p.MAX_TIME_MSC}, got {2**62}"
    error = refused(frame(example(p.Tick, time_msc=1_783_416_645)))   # seconds, not milliseconds
    assert error.message == f"TICK.time_msc: must be >= {p.MIN_TIME_MSC}, got 1783416645"


EA_NUMBERS = [(model, name) for model in p.EA_MESSAGES for name, _ in _numeric_fields(model) if name != "seq"]


@pytest.mark.parametrize(("model", "name"), EA_NUMBERS, ids=[f"{p.message_type(m)}.{n}" for m, n in EA_NUMBERS])
def test_a_number_beyond_any_range_is_refused_by_name_and_answers_the_seq(model, name):
    msg = example(model)
    for value in (2**53, 2**63, 2**64, -(2**63) - 1, 10**30, 1e300, -1e300):
        changed = copy.deepcopy(msg)
        if isinstance(msg[name], list):
            changed[name] = [value] * len(msg[name])
        else:
            changed[name] = value
        if name in ("chart_id", "magic") and value == 2**53:
            assert p.parse_request(frame(changed), BIG)   # 64-bit values: 2**53 is one
            continue
        error = refused(frame(changed))
        expected = "PROTOCOL_VERSION" if name == "protocol_version" else "INVALID_VALUE"
        assert error.code == expected, (value, error.message)
        assert error.message.startswith(f"{p.message_type(model)}.{name}"), (value, error.message)
        assert error.reply_to == msg["seq"], value


def test_a_position_beyond_any_range_is_refused_by_name():
    for name, _ in _numeric_fields(p.Position):
        for value in (2**63, -(2**63) - 1, 1e300):
            error = refused(frame(tick_with_position(**{name: value})))
            assert error.code == "INVALID_VALUE" and error.reply_to == 42
            assert error.message.startswith(f"TICK.positions[0].{name}:"), error.message


# --- reply_to of an ERROR -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("seq", "reply_to"), [
    (0, 0), (p.MAX_SAFE_INTEGER, p.MAX_SAFE_INTEGER), (p.MAX_SAFE_INTEGER + 1, -1), (2**63, -1), (2**64, -1),
    (-1, -1), (-5, -1), (7.0, -1), (True, -1), ("7", -1), (None, -1),
], ids=["0", "2**53-1", "2**53", "2**63", "2**64", "-1", "-5", "float", "bool", "string", "null"])
def test_an_error_answers_the_seq_when_it_is_an_integer_in_range(seq, reply_to):
    error = refused(frame(example(p.Tick, seq=seq, bid=2.0)))   # bid above ask, and seq what it is
    assert error.reply_to == reply_to
    assert p.frame_seq(frame(example(p.Tick, seq=seq))) == reply_to


@pytest.mark.parametrize(("data", "code"), [
    (b'{"type":"BYE","seq":5,"reason":' + b"[" * 199 + b"]" * 199 + b"}", "INVALID_VALUE"),
    (b'{"type":"BYE","seq":5,"reason":"x","reason":' + b"9" * 4000 + b"}", "INVALID_VALUE"),
    (b'{"type":"BYE","seq":5,"reason":"x","z":NaN}', "EXTRA_FIELD"),
    (b'{"seq":5,"type":"BYE","seq":6,"reason":"x","x":1}', "EXTRA_FIELD"),   # a repeated key: the last counts
], ids=["nested 200 deep", "4000-digit number", "NaN literal", "repeated seq"])
def test_an_error_answers_the_seq_of_any_frame_that_reads_as_an_object(data, code):
    error = refused(data)
    assert error.code == code
    assert error.reply_to == p.frame_seq(data) == (6 if b'"seq":6' in data else 5)


@pytest.mark.parametrize("data", [
    b"", b"\x00", b'{"type":"BYE","seq":5', b'{"type":"BYE","seq":5,"reason":"\xff"}',
    b'\xef\xbb\xbf{"type":"BYE","seq":5,"reason":"x"}', b'{"type":"BYE","seq":5}{}',
    '{"type":"BYE","seq":5,"reason":"x"}'.encode("utf-16"), b'{"type":"BYE","seq":' + b"9" * 5000 + b',"reason":"x"}',
    # Python's reader would read the next two, as deep as the stack of its caller allows: a seq that depends
    # on where it is asked is no seq, so the protocol's reader decides.
    b'{"type":"BYE","seq":5,"reason":' + b"[" * 300 + b"]" * 300 + b"}", b'{"type":"BYE","seq":5,"reason":"\\ud800"}',
    b"[" * 100_000,
], ids=["empty", "NUL", "cut short", "not UTF-8", "BOM", "two objects", "UTF-16", "5000-digit seq",
        "nested 301 deep", "lone surrogate", "nested past any reader"])
def test_a_frame_that_is_not_one_json_object_answers_minus_one(data):
    error = refused(data)
    assert error.code in ("MALFORMED_JSON", "NOT_AN_OBJECT") and error.reply_to == p.REPLY_TO_UNKNOWN
    assert p.frame_seq(data) == p.REPLY_TO_UNKNOWN


def test_a_frame_too_large_is_never_read_so_it_answers_minus_one():
    data = frame(example(p.Tick, seq=77))
    error = refused(data, max_bytes=len(data) - 1)
    assert (error.code, error.reply_to) == ("FRAME_TOO_LARGE", p.REPLY_TO_UNKNOWN)


def test_an_error_message_describes_only_the_frame_itself():
    # Every part of a protocol refusal comes from the frame: the field's path, the value seen, the rule.
    msg = example(p.Tick, positions=[dict(p.Position.example, ticket=2**63)])
    error = refused(frame(msg))
    assert error.message == f"TICK.positions[0].ticket: must be <= 9007199254740991, got {2**63}"
    # A long value or a made-up key is cut and spelled as JSON, so no frame makes a long ERROR (or log line)
    # out of its own content, nor one with a line break in it.
    error = refused(frame(example(p.Bye, reason=None, extra="x" * 10_000)))
    assert len(error.message) < 200
    error = refused(frame(example(p.Bye, **{"k" * 10_000 + "\n2026-07-06 CRITICAL": 1})))
    assert error.code == "EXTRA_FIELD" and len(error.message) < 200 and "\n" not in error.message
    assert error.message.startswith('BYE."kkkk')
    error = refused(frame(tick_with_position(**{"\x1b[2J": 1})))
    assert error.message == 'TICK.positions[0]."\\u001b[2J": unexpected field (value 1)'
