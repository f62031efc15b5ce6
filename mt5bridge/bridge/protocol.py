"""The wire protocol between the Expert Advisor and the bridge: the single source of truth.

One JSON object per ZeroMQ frame, UTF-8, with a ``type`` that names the message. The EA (a DEALER per chart)
sends HELLO, WARMUP, TICK, RESULT, DEAL, FAILSAFE, HEARTBEAT, CLOCK and BYE, each with a ``seq`` that increases per
chart; the bridge (one ROUTER) answers with WELCOME, COMMAND or ERROR, each with ``reply_to`` set to the request's
``seq``. What a client must know beyond the fields (warm-up, identity, what a RESULT carries, optional fields) is in
the "What a client needs to know" section of ``docs/protocol.md``, written in ``mt5bridge/bridge/protocol_gen.py``.

Three files are generated from this module by ``python -m mt5bridge.bridge.protocol_gen --write`` and a test fails
when any is stale: ``docs/protocol.md``, ``docs/protocol.schema.json`` and the EA's
``mql5/Include/MT5Bridge/Protocol.mqh``. Change the protocol here, never in those files.

Validation is strict on purpose: a price sent as a string, a volume of NaN or a field the other side does not
know about is a bug on one side of the wire, and it is cheaper to refuse the frame with a message naming the
field than to trade on a guess.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, ClassVar, Literal, Union, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError, from_json

PROTOCOL_VERSION = 2
"""Sent by the EA in HELLO and by the bridge in WELCOME; a HELLO with any other version is refused."""

MAX_FRAME_BYTES = 1 << 20
"""A sensible frame cap: a full WARMUP chunk (5,000 bars) is about 600 kB, a TICK with 500 positions 150 kB."""

MAX_WARMUP_BARS = 5000
"""Bars per WARMUP chunk; the EA splits longer histories into chunks."""

MAX_POSITIONS = 500
"""Positions per TICK. MT5 accounts hold far fewer; more means the EA is sending garbage."""

MAX_COMMENT_CHARS = 31
"""MT5 keeps at most 31 characters of an order or position comment."""

MAX_LOTS = 100_000.0
"""Ceiling on any traded or held volume in lots. No account holds this much of one symbol: a larger number is
a unit mistake (units or money sent in a lots field)."""

MAX_UTC_OFFSET_S = 14 * 3600
"""Time zones run from UTC-12 to UTC+14; a server offset outside ±14 h is a broken clock or a unit mistake."""

REPLY_TO_UNKNOWN = -1
"""``reply_to`` of an ERROR for a frame whose ``seq`` could not be read: the frame is too large to be read at all
(FRAME_TOO_LARGE), is not valid JSON (MALFORMED_JSON: nested too deep and numbers too long count as not valid),
is not an object, or its ``seq`` is missing, not an integer or out of range."""

# --- Bounds of numbers --------------------------------------------------------------------------------------
# Every number a message carries is bounded, so that no frame the protocol accepts can overflow what later
# holds it: the journal (SQLite INTEGER, signed 64-bit), the engine's C integers and doubles, Python's date
# arithmetic, and the EA's JSON library.

MIN_TIME_MSC = 946_684_800_000
"""2000-01-01 00:00 in ms since 1970: the earliest time (``time_msc``, ``open_time_msc``, bar times) a message may
carry. MT5 keeps no trading history before it, and a smaller number is most likely seconds sent as milliseconds."""

MAX_TIME_MSC = 4_102_444_800_000
"""2100-01-01 00:00 in ms since 1970: the latest time a message may carry. Any time up to it, with a day or a
server offset added, stays within what dates, the journal and the engine's 64-bit times can hold."""

MAX_SAFE_INTEGER = 2**53 - 1
"""Largest sequence number, command id, ticket, deal, order, position id, login or count on the wire: every
integer up to it is exact in a double, so a JSON reader that reads numbers as doubles keeps it."""

MIN_INT64 = -(2**63)
"""Smallest value of a signed 64-bit integer (an MQL5 ``long``; a SQLite INTEGER)."""

MAX_INT64 = 2**63 - 1
"""Largest value of a signed 64-bit integer: the bound of ``chart_id`` (ChartID() values exceed 2**53) and magic
numbers, which MT5 hands out as ``long``."""

MAX_INT32 = 2**31 - 1
"""Largest value of an MQL5 ``int``: the bound of fields the EA holds in one (stops levels, timings)."""

MAX_UINT32 = 2**32 - 1
"""Largest value of an MQL5 ``uint``: the bound of ``retcode`` (MqlTradeResult.retcode is a uint)."""

MAX_FILLING_MODES = 0xFF
"""Bound of the ``filling_modes`` bitmask: MT5 defines bits 1 (FOK), 2 (IOC) and 4 (BOC); a byte leaves room for
flags a later build adds, and anything larger is not a set of filling flags."""

MAX_ROUND_TRIP_US = 3_600_000_000
"""Bound of ``TICK.round_trip_us``: an hour. The EA only reports a round trip that met its deadline (seconds at
most); a larger number is a broken clock."""

MAX_PRICE = 1e12
"""Ceiling on any price, stop, point or tick size. No instrument is quoted near it; the bound keeps price
arithmetic (price × contract size × lots) far from overflowing a double."""

MAX_MONEY = 1e12
"""Ceiling on the magnitude of any amount of money (balance, equity, margin, profit, swap, commission, tick
value): a trillion in the account currency, far beyond any trading account, and far from overflowing a double
in the sums the limits are computed from."""

MAX_QUANTITY = 1e12
"""Ceiling on market volumes (tick and bar volumes), contract sizes and a symbol's largest volume in lots, which
brokers set far above what is traded."""

HOLD_COMMAND_ID = 0
"""``command_id`` of a HOLD: nothing to execute, so nothing to acknowledge."""

COMMENT_PREFIX = "mt5b:"
"""The EA comments every order of a command ``mt5b:<command_id>``: the bridge settles a command whose RESULT
never came by looking for that comment on the account's positions, and the EA finds what it already did after a
restart by it."""

FILLING_FOK = 1
"""Bit of ``filling_modes`` (MT5 SYMBOL_FILLING_MODE): fill-or-kill is allowed."""

FILLING_IOC = 2
"""Bit of ``filling_modes``: immediate-or-cancel is allowed. With neither bit set only RETURN is."""


# --- Enumerations -------------------------------------------------------------------------------------------
# Each is defined once here; the models validate against it and the generators list its values.

MarginMode = Literal["HEDGING", "NETTING", "EXCHANGE"]
TradeMode = Literal["FULL", "LONGONLY", "SHORTONLY", "CLOSEONLY", "DISABLED"]
Timeframe = Literal["M1", "M5", "M15", "H1"]
Side = Literal["BUY", "SELL"]
CommandSide = Literal[Side, ""]  # "" where the action has no direction (HOLD, CLOSE, MODIFY, CLOSE_ALL)
Action = Literal["HOLD", "OPEN", "ADD", "CLOSE", "MODIFY", "CLOSE_ALL"]
DealEntry = Literal["IN", "OUT", "INOUT", "OUT_BY"]
DealReason = Literal["CLIENT", "MOBILE", "WEB", "EXPERT", "SL", "TP", "SO", "ROLLOVER", "VMARGIN", "SPLIT"]
FailsafeKind = Literal["BRIDGE_SILENT", "BRIDGE_BACK", "EQUITY_GUARD", "RATE_LIMIT", "DUPLICATE_COMMAND"]
ResultOutcome = Literal["DONE", "PARTIAL", "PLACED", "REFUSED", "UNKNOWN"]
ErrorCode = Literal[
    "MALFORMED_JSON",
    "NOT_AN_OBJECT",
    "UNKNOWN_TYPE",
    "PROTOCOL_VERSION",
    "MISSING_FIELD",
    "EXTRA_FIELD",
    "INVALID_VALUE",
    "FRAME_TOO_LARGE",
    "NOT_INTRODUCED",
    "TIME_BACKWARDS",
    "SEQUENCE",
    "INTERNAL_ERROR",
    "TIME_AHEAD",
    "FORBIDDEN",
    "CAPACITY",
]

ERROR_CODES: dict[str, str] = {
    "MALFORMED_JSON": "The frame is not valid UTF-8 JSON.",
    "NOT_AN_OBJECT": "The frame is valid JSON but not an object (an array, a number, a string, null).",
    "UNKNOWN_TYPE": "`type` names no message the receiver accepts.",
    "PROTOCOL_VERSION": "HELLO.protocol_version differs from the bridge's; the chart is not admitted.",
    "MISSING_FIELD": "A required field is absent (`type` included).",
    "EXTRA_FIELD": "A field the message does not define is present: one side runs a different protocol.",
    "INVALID_VALUE": "A field has the wrong JSON type or breaks a rule (range, enum, finite number, cross-field).",
    "FRAME_TOO_LARGE": "The frame is larger than the bridge accepts; it was not parsed.",
    "NOT_INTRODUCED": "A message other than HELLO arrived from a chart that has not been welcomed.",
    "TIME_BACKWARDS": "TICK.time_msc is earlier than the previous TICK's from this chart.",
    "SEQUENCE": "seq is lower than the last one accepted from this chart and is not a re-send of the latest.",
    "INTERNAL_ERROR": "The bridge failed on a valid frame (its journal, say); nothing was sent for it. For a TICK "
    "the EA holds.",
    "TIME_AHEAD": "A time is implausibly far ahead of the chart's previous one and of the bridge's clock; it moves "
    "no clock and nothing is traded on it.",
    "FORBIDDEN": "The sender may not do this: a login not on the bridge's allow-list, or a RESULT or DEAL for a "
    "command or position of another account.",
    "CAPACITY": "The bridge serves as many charts or accounts as it is configured for; this one is not admitted.",
}
"""What each error code means."""

assert tuple(ERROR_CODES) == get_args(ErrorCode), "ERROR_CODES must describe every ErrorCode, in order"

ENUMS: dict[str, Any] = {
    "MARGIN_MODE": MarginMode,
    "TRADE_MODE": TradeMode,
    "TF": Timeframe,
    "SIDE": CommandSide,
    "ACTION": Action,
    "ENTRY": DealEntry,
    "DEAL_REASON": DealReason,
    "FAILSAFE": FailsafeKind,
    "OUTCOME": ResultOutcome,
    "ERR": ErrorCode,
}
"""Every enumeration on the wire under the prefix its MQL5 constants carry (``MT5B_SIDE_BUY``)."""


def enum_values(enum: Any) -> tuple[str, ...]:
    """The values of one of the ``Literal`` enumerations above, in definition order."""
    return tuple(get_args(enum))


# --- Field types --------------------------------------------------------------------------------------------


def _null_as_empty(value: Any) -> Any:
    # The EA's JSON library (JAson) writes an empty string as null, so for free-text fields null means "".
    return "" if value is None else value


def _check_protocol_version(value: int) -> int:
    if value != PROTOCOL_VERSION:
        raise PydanticCustomError(
            "protocol_version", "must be {expected}, got {got}", {"expected": PROTOCOL_VERSION, "got": value}
        )
    return value


def _text(description: str, max_length: int | None = None) -> Any:
    """A free-text field the EA may leave empty (sent as null by its JSON library)."""
    return Field(
        description=f"{description} Null is read as an empty string.",
        max_length=max_length,
    )


FreeText = Annotated[str, BeforeValidator(_null_as_empty, json_schema_input_type=Union[str, None])]
Version = Annotated[int, AfterValidator(_check_protocol_version)]
Price = Annotated[float, Field(gt=0, le=MAX_PRICE)]
NonNegative = Annotated[float, Field(ge=0, le=MAX_QUANTITY)]
Lots = Annotated[float, Field(gt=0, le=MAX_LOTS)]
TimeMsc = Annotated[int, Field(ge=MIN_TIME_MSC, le=MAX_TIME_MSC)]


def _fix_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    # `type` has a default so the bridge can build replies without repeating it, but on the wire it is
    # required (it selects the model). Titles pydantic derives from field names are noise in the schema.
    props = schema.get("properties", {})
    if "type" in props:
        props["type"].pop("default", None)
        schema["required"] = ["type", *[r for r in schema.get("required", []) if r != "type"]]
    for prop in props.values():
        prop.pop("title", None)
    if model.__doc__:
        schema["description"] = " ".join(model.__doc__.split())
    example = getattr(model, "example", None)
    if example:
        schema["examples"] = [example]


class WireModel(BaseModel):
    """Settings every message shares: unknown fields refused, no NaN or infinity, no silent coercion."""

    example: ClassVar[dict[str, Any]] = {}
    """A valid instance as it appears on the wire; shown in the docs and the schema, round-tripped by the tests."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        strict=True,
        frozen=True,
        json_schema_extra=_fix_schema,
    )


def _problem(field: str, message: str) -> PydanticCustomError:
    # A cross-field rule fails on the model, not on one field; `field` tells the error translation where.
    return PydanticCustomError("cross_field", message, {"field": field})


# --- EA → bridge --------------------------------------------------------------------------------------------


class Request(WireModel):
    """A message from the EA; ``seq`` lets the bridge match its reply and recognise a re-sent request."""

    type: str
    seq: int = Field(ge=0, le=MAX_SAFE_INTEGER, description="Per-chart message number: increases with every message the EA sends.")


class Hello(Request):
    """Introduces a chart: the account, the symbol's trading specification and the EA's identity. Sent first,
    and again after every reconnect; a chart whose HELLO is refused is not admitted."""

    example: ClassVar[dict[str, Any]] = {
        "type": "HELLO", "seq": 0, "protocol_version": 2, "ea_version": "1.0.0", "login": 1510234567,
        "server": "FTMO-Demo", "company": "FTMO Global Markets Ltd", "currency": "USD", "margin_mode": "HEDGING",
        "initial_balance": 100000.0, "first_deposit": 100000.0, "day_start_balance": 101250.5,
        "balance": 101250.5, "equity": 101180.25, "symbol": "EURUSD", "digits": 5,
        "point": 1e-05, "tick_size": 1e-05, "tick_value": 1.0, "contract_size": 100000.0, "volume_min": 0.01,
        "volume_step": 0.01, "volume_max": 100.0, "stops_level": 0, "freeze_level": 0, "filling_modes": 3,
        "trade_mode": "FULL", "server_utc_offset_s": 10800, "margin_per_lot": 1085.19, "magic": 20260101,
        "chart_id": 133476532849512345,
        "time_msc": 1783416645123,
    }  # fmt: skip

    type: Literal["HELLO"] = "HELLO"
    protocol_version: Version = Field(
        description="Protocol the EA speaks; must equal the bridge's.", json_schema_extra={"const": PROTOCOL_VERSION}
    )
    ea_version: str = Field(min_length=1, description="Version string of the EA build.")
    login: int = Field(gt=0, le=MAX_SAFE_INTEGER, description="Account number (ACCOUNT_LOGIN).")
    server: str = Field(min_length=1, description="Trade server name (ACCOUNT_SERVER).")
    company: FreeText = _text("Broker name (ACCOUNT_COMPANY).")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="Account currency (ACCOUNT_CURRENCY); money fields are in it.")
    margin_mode: MarginMode = Field(description="ACCOUNT_MARGIN_MODE: positions per symbol are netted or hedged.")
    initial_balance: float | None = Field(
        gt=0, le=MAX_MONEY, description="Initial capital the prop-firm limits are measured against, as the trader set it in the "
        "EA's inputs; null when not set."
    )
    first_deposit: float | None = Field(
        None, gt=0, le=MAX_MONEY, description="The account's first deposit: the first balance deal in the account history "
        "(HistorySelect from 0); null when the history does not reach it. The bridge takes it as the initial "
        "balance when neither its configuration nor the EA's input gives one."
    )
    day_start_balance: float | None = Field(
        None, ge=-MAX_MONEY, le=MAX_MONEY, description="The balance at the last midnight Europe/Prague: ACCOUNT_BALANCE minus the profit, swap "
        "and commission of every deal since then (balance deals included); null when the EA cannot tell. A bridge "
        "started mid-day measures the daily loss limit from it."
    )
    balance: float = Field(ge=-MAX_MONEY, le=MAX_MONEY, description="ACCOUNT_BALANCE.")
    equity: float = Field(ge=-MAX_MONEY, le=MAX_MONEY, description="ACCOUNT_EQUITY.")
    symbol: str = Field(min_length=1, description="The chart's symbol; every TICK from this chart is for it.")
    digits: int = Field(ge=0, le=10, description="SYMBOL_DIGITS: prices are rounded to this many decimals.")
    point: float = Field(gt=0, le=MAX_PRICE, description="SYMBOL_POINT: one price point.")
    tick_size: float = Field(gt=0, le=MAX_PRICE, description="SYMBOL_TRADE_TICK_SIZE: smallest price change.")
    tick_value: float = Field(gt=0, le=MAX_MONEY, description="SYMBOL_TRADE_TICK_VALUE: money per tick_size per lot.")
    contract_size: float = Field(gt=0, le=MAX_QUANTITY, description="SYMBOL_TRADE_CONTRACT_SIZE: units per lot.")
    volume_min: float = Field(gt=0, le=MAX_LOTS, description="SYMBOL_VOLUME_MIN in lots; at most volume_max.")
    volume_step: float = Field(gt=0, le=MAX_LOTS, description="SYMBOL_VOLUME_STEP in lots.")
    volume_max: float = Field(gt=0, le=MAX_QUANTITY, description="SYMBOL_VOLUME_MAX in lots.")
    stops_level: int = Field(ge=0, le=MAX_INT32, description="SYMBOL_TRADE_STOPS_LEVEL: minimum SL/TP distance in points.")
    freeze_level: int = Field(ge=0, le=MAX_INT32, description="SYMBOL_TRADE_FREEZE_LEVEL: no modification this close, in points.")
    filling_modes: int = Field(
        ge=0, le=MAX_FILLING_MODES, description="SYMBOL_FILLING_MODE bitmask: 1 = FOK, 2 = IOC allowed; 0 = only RETURN."
    )
    trade_mode: TradeMode = Field(description="SYMBOL_TRADE_MODE: which trades the symbol currently allows.")
    server_utc_offset_s: int = Field(
        ge=-MAX_UTC_OFFSET_S,
        le=MAX_UTC_OFFSET_S,
        description="Trade server time minus UTC, in seconds; converts every time_msc to UTC.",
    )
    margin_per_lot: float = Field(
        0.0, ge=0, le=MAX_MONEY, description="OrderCalcMargin of one lot BUY at the ask, in the account currency; 0 = unknown "
        "(the bridge then estimates margin from the notional at 1:100)."
    )
    magic: int = Field(ge=0, le=MAX_INT64, description="Magic number the EA puts on its orders.")
    chart_id: int = Field(ge=MIN_INT64, le=MAX_INT64, description="ChartID() of the chart the EA runs on.")
    time_msc: TimeMsc = Field(description="Server time in ms since 1970 when the HELLO was built.")

    @model_validator(mode="after")
    def _volume_range(self) -> Hello:
        if self.volume_min > self.volume_max:
            raise _problem("volume_min", f"{self.volume_min!r} > volume_max {self.volume_max!r}")
        return self


class Warmup(Request):
    """A chunk of closed bars of one timeframe so the engine is warm before the first tick; bars are sent
    oldest first, chunk by chunk."""

    example: ClassVar[dict[str, Any]] = {
        "type": "WARMUP", "seq": 1, "timeframe": "M1", "chunk": 0, "chunks": 1,
        "time_msc": [1783416480000, 1783416540000, 1783416600000],
        "open": [1.08495, 1.08502, 1.08511], "high": [1.08506, 1.08515, 1.08517],
        "low": [1.0849, 1.08498, 1.08503], "close": [1.08502, 1.08511, 1.08509], "volume": [38.0, 52.0, 41.0],
    }  # fmt: skip

    type: Literal["WARMUP"] = "WARMUP"
    timeframe: Timeframe = Field(description="Timeframe of the bars.")
    chunk: int = Field(ge=0, le=MAX_SAFE_INTEGER, description="Index of this chunk, from 0; less than chunks.")
    chunks: int = Field(ge=1, le=MAX_SAFE_INTEGER, description="Number of chunks of this timeframe.")
    time_msc: list[TimeMsc] = Field(
        max_length=MAX_WARMUP_BARS, description="Bar open times, server time in ms since 1970, strictly increasing."
    )
    open: list[Price] = Field(max_length=MAX_WARMUP_BARS, description="Bar open prices (bid).")
    high: list[Price] = Field(max_length=MAX_WARMUP_BARS, description="Bar highs: at least max(open, close).")
    low: list[Price] = Field(max_length=MAX_WARMUP_BARS, description="Bar lows: at most min(open, close).")
    close: list[Price] = Field(max_length=MAX_WARMUP_BARS, description="Bar close prices (bid).")
    volume: list[NonNegative] = Field(max_length=MAX_WARMUP_BARS, description="Bar tick volumes.")

    @model_validator(mode="after")
    def _bars(self) -> Warmup:
        if self.chunk >= self.chunks:
            raise _problem("chunk", f"{self.chunk} must be < chunks {self.chunks}")
        n = len(self.time_msc)
        for name in ("open", "high", "low", "close", "volume"):
            if len(getattr(self, name)) != n:
                raise _problem(name, f"{len(getattr(self, name))} items, time_msc has {n}")
        times = self.time_msc
        for i in range(1, n):
            if times[i] <= times[i - 1]:
                raise _problem(f"time_msc[{i}]", f"{times[i]} not after the previous bar {times[i - 1]}")
        for i, (o, h, lo, c) in enumerate(zip(self.open, self.high, self.low, self.close)):
            if h < lo:
                raise _problem(f"high[{i}]", f"{h!r} < low {lo!r}")
            if h < max(o, c):
                raise _problem(f"high[{i}]", f"{h!r} < max(open, close) {max(o, c)!r}")
            if lo > min(o, c):
                raise _problem(f"low[{i}]", f"{lo!r} > min(open, close) {min(o, c)!r}")
        return self


class Position(WireModel):
    """One open position as MT5 reports it (PositionGetXxx)."""

    example: ClassVar[dict[str, Any]] = {
        "ticket": 123456789, "symbol": "EURUSD", "side": "BUY", "volume": 1.0, "open_price": 1.08405,
        "sl": 1.08205, "tp": 1.08905, "profit": 107.0, "swap": -6.9, "commission": -5.0, "magic": 20260101,
        "open_time_msc": 1783410000000, "comment": "mt5b:16",
    }  # fmt: skip

    ticket: int = Field(gt=0, le=MAX_SAFE_INTEGER, description="POSITION_TICKET.")
    symbol: str = Field(min_length=1, description="POSITION_SYMBOL.")
    side: Side = Field(description="POSITION_TYPE.")
    volume: Lots = Field(description="POSITION_VOLUME in lots.")
    open_price: float = Field(gt=0, le=MAX_PRICE, description="POSITION_PRICE_OPEN.")
    sl: float = Field(ge=0, le=MAX_PRICE, description="POSITION_SL; 0 = none.")
    tp: float = Field(ge=0, le=MAX_PRICE, description="POSITION_TP; 0 = none.")
    profit: float = Field(
        ge=-MAX_MONEY, le=MAX_MONEY, description="POSITION_PROFIT: floating profit in the account currency."
    )
    swap: float = Field(
        ge=-MAX_MONEY, le=MAX_MONEY, description="POSITION_SWAP: accumulated swap in the account currency."
    )
    commission: float = Field(
        ge=-MAX_MONEY, le=MAX_MONEY, description="Commission charged so far in the account currency (from its deals)."
    )
    magic: int = Field(ge=0, le=MAX_INT64, description="POSITION_MAGIC; 0 = opened by hand.")
    open_time_msc: TimeMsc = Field(description="POSITION_TIME_MSC: server time in ms since 1970.")
    comment: FreeText = _text("POSITION_COMMENT.", max_length=MAX_COMMENT_CHARS)


class Tick(Request):
    """A new quote on the chart's symbol with the account's state at that moment. The EA waits for the COMMAND
    whose reply_to equals this seq, up to deadline_ms."""

    example: ClassVar[dict[str, Any]] = {
        "type": "TICK", "seq": 42, "time_msc": 1783416645391, "bid": 1.08512, "ask": 1.08519, "volume": 0.0,
        "balance": 101250.5, "equity": 101345.6, "margin": 1085.19, "free_margin": 100260.41,
        "positions": [Position.example], "round_trip_us": 412,
    }  # fmt: skip

    type: Literal["TICK"] = "TICK"
    time_msc: TimeMsc = Field(description="MqlTick.time_msc: server time in ms since 1970.")
    bid: float = Field(gt=0, le=MAX_PRICE, description="Bid price; at most ask.")
    ask: float = Field(gt=0, le=MAX_PRICE, description="Ask price.")
    volume: float = Field(ge=0, le=MAX_QUANTITY, description="MqlTick.volume_real; 0 where the feed has none.")
    balance: float = Field(ge=-MAX_MONEY, le=MAX_MONEY, description="ACCOUNT_BALANCE.")
    equity: float = Field(
        ge=-MAX_MONEY, le=MAX_MONEY,
        description="ACCOUNT_EQUITY: balance plus floating profit, swaps and commissions.",
    )
    margin: float = Field(ge=-MAX_MONEY, le=MAX_MONEY, description="ACCOUNT_MARGIN: margin in use.")
    free_margin: float = Field(ge=-MAX_MONEY, le=MAX_MONEY, description="ACCOUNT_MARGIN_FREE.")
    positions: list[Position] = Field(
        max_length=MAX_POSITIONS,
        description="Every open position on the account, all symbols and magics, so the bridge sees the whole "
        "account's risk.",
    )
    round_trip_us: int = Field(
        0, ge=0, le=MAX_ROUND_TRIP_US, description="The EA's own time from sending its previous TICK to holding the COMMAND for it, in "
        "microseconds (GetMicrosecondCount); 0 = none yet, or that reply missed the deadline."
    )

    @model_validator(mode="after")
    def _spread(self) -> Tick:
        if self.bid > self.ask:
            raise _problem("bid", f"{self.bid!r} > ask {self.ask!r}")
        return self


class TradeResult(Request):
    """The outcome of one non-HOLD COMMAND (MqlTradeResult), one per command_id, kept by the EA until the bridge
    has read it (a reply to a later message of the same connection) and sent again after a reconnect until then:
    a RESULT for a command that already has one is a duplicate, not a second outcome. ``outcome`` says what is
    known: DONE (filled, or for MODIFY applied), PARTIAL (part of the volume filled; for CLOSE_ALL some positions
    closed), PLACED (the server took an order that is not yet filled: not a fill), REFUSED (the server or the EA
    refused it: nothing was done) or UNKNOWN (a timeout or lost connection: it may still be filled; the EA never
    sends it again and the bridge settles it from the positions and deals carrying its comment). Only DONE and
    PARTIAL carry a fill: otherwise price, volume, sl and tp are 0."""

    example: ClassVar[dict[str, Any]] = {
        "type": "RESULT", "seq": 43, "command_id": 17, "outcome": "DONE", "retcode": 10009, "ticket": 123456790,
        "price": 1.08519, "volume": 0.5, "sl": 1.08319, "tp": 1.08919, "text": "Request executed",
        "time_msc": 1783416645412,
    }  # fmt: skip

    type: Literal["RESULT"] = "RESULT"
    command_id: int = Field(gt=0, le=MAX_SAFE_INTEGER, description="command_id of the COMMAND this reports on.")
    outcome: ResultOutcome = Field(description="What is known of the command's execution (see above).")
    retcode: int = Field(ge=0, le=MAX_UINT32, description="MqlTradeResult.retcode (10009 = done, 10010 = done partially); for a "
                         "command the EA refused itself, the retcode of the check that failed or 0.")
    ticket: int = Field(ge=0, le=MAX_SAFE_INTEGER, description="Position ticket opened or acted on; 0 = none.")
    price: float = Field(ge=0, le=MAX_PRICE, description="Fill price; 0 when nothing was filled.")
    volume: float = Field(ge=0, le=MAX_LOTS, description="Lots filled; 0 when nothing was filled.")
    sl: float = Field(
        0.0, ge=0, le=MAX_PRICE, description="Stop loss in force on the position after the command; differs from the COMMAND's "
        "when the broker moved it (a minimum stop distance); 0 = none, or nothing was done."
    )
    tp: float = Field(
        0.0, ge=0, le=MAX_PRICE, description="Take profit in force on the position after the command; 0 = none."
    )
    text: FreeText = _text("MqlTradeResult.comment or the EA's reason for refusing the command.")
    time_msc: TimeMsc = Field(description="Server time in ms since 1970 when the result was known.")


class Deal(Request):
    """A deal on the account (OnTradeTransaction), including fills the EA did not ask for: SL, TP, stop-out.

    The same deal may come more than once: the EA keeps a DEAL until the bridge has answered a later message on the
    same connection and sends it again after the next WELCOME (one refused as NOT_INTRODUCED by a restarted bridge
    included), and after every WELCOME it sends its symbol's deals again from the account history. The bridge takes
    a deal it already has (same account and ``deal``) as a duplicate and ignores it.
    """

    example: ClassVar[dict[str, Any]] = {
        "type": "DEAL", "seq": 44, "deal": 98765432, "order": 123456790, "position_id": 123456790,
        "symbol": "EURUSD", "side": "BUY", "entry": "IN", "reason": "EXPERT", "volume": 0.5, "price": 1.08519,
        "profit": 0.0, "swap": 0.0, "commission": -2.5, "magic": 20260101, "time_msc": 1783416645409,
        "comment": "mt5b:17",
    }  # fmt: skip

    type: Literal["DEAL"] = "DEAL"
    deal: int = Field(gt=0, le=MAX_SAFE_INTEGER, description="DEAL_TICKET.")
    order: int = Field(ge=0, le=MAX_SAFE_INTEGER, description="DEAL_ORDER; 0 = none.")
    position_id: int = Field(ge=0, le=MAX_SAFE_INTEGER, description="DEAL_POSITION_ID: the position the deal opened, changed or closed.")
    symbol: str = Field(min_length=1, description="DEAL_SYMBOL.")
    side: Side = Field(description="DEAL_TYPE.")
    entry: DealEntry = Field(description="DEAL_ENTRY: opens, closes, reverses or closes by an opposite position.")
    reason: DealReason = Field(description="DEAL_REASON: who or what caused the deal.")
    volume: Lots = Field(description="DEAL_VOLUME in lots.")
    price: float = Field(gt=0, le=MAX_PRICE, description="DEAL_PRICE.")
    profit: float = Field(ge=-MAX_MONEY, le=MAX_MONEY, description="DEAL_PROFIT in the account currency.")
    swap: float = Field(ge=-MAX_MONEY, le=MAX_MONEY, description="DEAL_SWAP in the account currency.")
    commission: float = Field(ge=-MAX_MONEY, le=MAX_MONEY, description="DEAL_COMMISSION in the account currency.")
    magic: int = Field(ge=0, le=MAX_INT64, description="DEAL_MAGIC.")
    time_msc: TimeMsc = Field(description="DEAL_TIME_MSC: server time in ms since 1970.")
    comment: FreeText = _text("DEAL_COMMENT.")


class Failsafe(Request):
    """Something the EA did on its own, without the bridge: stopped opening while the bridge was silent (and
    started again), closed its positions at the local equity floor, held back trade requests over the rate limit,
    or refused a command id it had already executed. Sent when it happens, or queued until the bridge is back."""

    example: ClassVar[dict[str, Any]] = {
        "type": "FAILSAFE", "seq": 47, "kind": "EQUITY_GUARD", "time_msc": 1783416700000,
        "detail": "equity 94990.00 below floor 95000.00: closed 2 positions",
    }  # fmt: skip

    type: Literal["FAILSAFE"] = "FAILSAFE"
    kind: FailsafeKind = Field(description="Which failsafe acted.")
    time_msc: TimeMsc = Field(description="Server time in ms since 1970 when it acted (not when it was sent).")
    detail: FreeText = _text("What it saw and what it did, for the journal and the trader.")


class Heartbeat(Request):
    """Keeps the chart alive while no ticks arrive (a quiet market, a weekend)."""

    example: ClassVar[dict[str, Any]] = {"type": "HEARTBEAT", "seq": 45, "time_msc": 1783416705000}

    type: Literal["HEARTBEAT"] = "HEARTBEAT"
    time_msc: TimeMsc = Field(description="Server time in ms since 1970 (TimeTradeServer).")


class Clock(Request):
    """The trade server's UTC offset changed (a daylight-saving switch): every time_msc from now on converts to
    UTC with the new offset. Sent as soon as the EA sees the change, before the next TICK. The EA checks the
    offset once a second (server time against the PC clock, to the whole hour); HELLO carries the offset at the
    start of each session, CLOCK every change after it."""

    example: ClassVar[dict[str, Any]] = {
        "type": "CLOCK", "seq": 48, "server_utc_offset_s": 7200, "time_msc": 1792375200000,
    }  # fmt: skip

    type: Literal["CLOCK"] = "CLOCK"
    server_utc_offset_s: int = Field(
        ge=-MAX_UTC_OFFSET_S, le=MAX_UTC_OFFSET_S, description="Trade server time minus UTC, in seconds, from now on."
    )
    time_msc: TimeMsc = Field(description="Server time in ms since 1970 (new offset) when the change was seen.")


class Bye(Request):
    """The EA is leaving the chart (OnDeinit); the bridge forgets the chart's session."""

    example: ClassVar[dict[str, Any]] = {"type": "BYE", "seq": 46, "reason": "chart closed"}

    type: Literal["BYE"] = "BYE"
    reason: FreeText = _text("Why: the OnDeinit reason in words.")


# --- bridge → EA --------------------------------------------------------------------------------------------


class Reply(WireModel):
    """A message from the bridge, answering the EA request whose seq is ``reply_to``."""

    type: str
    reply_to: int = Field(
        ge=REPLY_TO_UNKNOWN,
        le=MAX_SAFE_INTEGER,
        description="seq of the request this answers; -1 when that seq could not be read (a frame too large to "
        "be read, not a JSON object, or without an integer seq in range).",
    )


class Welcome(Reply):
    """Admits a chart after HELLO and hands the EA the timings and failsafes it must apply on its own."""

    example: ClassVar[dict[str, Any]] = {
        "type": "WELCOME", "reply_to": 0, "protocol_version": 2, "deadline_ms": 250, "heartbeat_ms": 1000,
        "stale_after_ms": 5000, "failsafe_silence_ms": 10000, "equity_floor": 90500.0,
        "max_requests_per_minute": 30, "journal_id": "5f0c3a9e2b7d4e61a8c9d0f1e2a3b4c5",
    }  # fmt: skip

    type: Literal["WELCOME"] = "WELCOME"
    protocol_version: Version = Field(
        description="Protocol the bridge speaks.", json_schema_extra={"const": PROTOCOL_VERSION}
    )
    deadline_ms: int = Field(gt=0, le=MAX_INT32, description="How long the EA waits for the COMMAND answering a TICK; then HOLD.")
    heartbeat_ms: int = Field(gt=0, le=MAX_INT32, description="Send a HEARTBEAT after this long without sending anything.")
    stale_after_ms: int = Field(
        gt=0, le=MAX_INT32, description="The bridge treats the chart as gone after this long without a message; > heartbeat_ms."
    )
    failsafe_silence_ms: int = Field(
        gt=0, le=MAX_INT32, description="Nothing received from the bridge for this long while sending: the EA opens nothing new."
    )
    equity_floor: float = Field(
        ge=0,
        le=MAX_MONEY,
        description="Local equity guard the EA applies even when the bridge is unreachable: at or below this "
        "equity it closes its own positions and opens nothing new (for the Prague day it was sent on); 0 = off.",
    )
    max_requests_per_minute: int = Field(gt=0, le=MAX_INT32, description="Trade requests the EA may send to the server per minute.")
    journal_id: str = Field(
        pattern=r"^[0-9a-f]{32}$",
        description="Identity of the bridge's journal, made when the journal was created. Command ids are unique "
        "within one journal; the EA keys the ids it has executed by (journal_id, command_id), so a new journal's "
        "ids are never mistaken for an old one's.",
    )

    @model_validator(mode="after")
    def _timings(self) -> Welcome:
        if self.stale_after_ms <= self.heartbeat_ms:
            raise _problem("stale_after_ms", f"{self.stale_after_ms} must be > heartbeat_ms {self.heartbeat_ms}")
        return self


class Command(Reply):
    """What to do on this tick. Every non-HOLD command carries a unique command_id and is answered by exactly
    one RESULT; a HOLD (command_id 0) is neither executed nor acknowledged. OPEN and ADD need side BUY or SELL
    (anything else is refused); on CLOSE, MODIFY and CLOSE_ALL the side is not read: the position decides the
    direction. MODIFY sets both stops as given: 0 removes that stop, so a MODIFY that keeps one repeats its
    current price."""

    example: ClassVar[dict[str, Any]] = {
        "type": "COMMAND", "reply_to": 42, "command_id": 17, "action": "OPEN", "symbol": "EURUSD", "side": "BUY",
        "volume": 0.5, "sl": 1.08319, "tp": 1.08919, "ticket": 0, "reason_code": "ENTRY_SIGNAL",
        "reason": "long score 0.71 above 0.65; risks 0.10% of balance at a 20-pip stop",
    }  # fmt: skip

    type: Literal["COMMAND"] = "COMMAND"
    command_id: int = Field(ge=0, le=MAX_SAFE_INTEGER, description="Unique per command, > 0; 0 for HOLD.")
    action: Action = Field(
        description="HOLD nothing; OPEN a new position; ADD to an existing one (scale-in); CLOSE a position, all "
        "or part; MODIFY a position's SL/TP; CLOSE_ALL every open position on the account, whoever opened it (the "
        "flatten of a HALTED account)."
    )
    symbol: str = Field(min_length=1, description="Symbol to act on: the chart's symbol.")
    side: CommandSide = Field(description="Direction for OPEN and ADD; \"\" where it is not relevant.")
    volume: float = Field(
        ge=0, le=MAX_LOTS, description="Lots: to open or add (> 0), to close (0 = the whole position); else 0."
    )
    sl: float = Field(ge=0, le=MAX_PRICE, description="Stop-loss price; 0 = none.")
    tp: float = Field(ge=0, le=MAX_PRICE, description="Take-profit price; 0 = none.")
    ticket: int = Field(ge=0, le=MAX_SAFE_INTEGER, description="Position to CLOSE, MODIFY or ADD to; 0 = none.")
    reason_code: str = Field(
        pattern=r"^[A-Z][A-Z0-9_]*$", description="Machine code of the decision, e.g. ENTRY_SIGNAL, DAILY_LIMIT_HEADROOM."
    )
    reason: str = Field(min_length=1, description="The decision in words, for the EA's log.")

    @model_validator(mode="after")
    def _action_fields(self) -> Command:
        is_hold = self.action == "HOLD"
        if is_hold and self.command_id != HOLD_COMMAND_ID:
            raise _problem("command_id", f"{self.command_id} must be 0 for HOLD")
        if not is_hold and self.command_id == HOLD_COMMAND_ID:
            raise _problem("command_id", f"must be > 0 for {self.action}")
        if self.action in ("OPEN", "ADD"):
            if self.side == "":
                raise _problem("side", f"must be BUY or SELL for {self.action}")
            if self.volume <= 0:
                raise _problem("volume", f"must be > 0 for {self.action}, got {self.volume!r}")
        if self.action in ("CLOSE", "MODIFY") and self.ticket == 0:
            raise _problem("ticket", f"must be > 0 for {self.action}")
        return self


class ErrorReply(Reply):
    """The bridge refused a frame. The EA logs it; for a refused TICK it holds, for a refused HELLO it stays out."""

    example: ClassVar[dict[str, Any]] = {
        "type": "ERROR", "reply_to": 42, "code": "INVALID_VALUE", "message": "TICK.bid: 1.08522 > ask 1.08519",
    }  # fmt: skip

    type: Literal["ERROR"] = "ERROR"
    code: ErrorCode = Field(description="What kind of problem; see the error codes.")
    message: str = Field(min_length=1, description="Names the field, the value seen and what was expected.")


EaMessage = Annotated[
    Union[Hello, Warmup, Tick, TradeResult, Deal, Failsafe, Heartbeat, Clock, Bye],
    Field(discriminator="type"),
]
BridgeMessage = Annotated[Union[Welcome, Command, ErrorReply], Field(discriminator="type")]

EA_MESSAGES: tuple[type[Request], ...] = (Hello, Warmup, Tick, TradeResult, Deal, Failsafe, Heartbeat, Clock, Bye)
BRIDGE_MESSAGES: tuple[type[Reply], ...] = (Welcome, Command, ErrorReply)
NESTED_MODELS: tuple[type[WireModel], ...] = (Position,)


def message_type(model: type[WireModel]) -> str:
    """The ``type`` string of a message model (``Tick`` → ``"TICK"``)."""
    return get_args(model.model_fields["type"].annotation)[0]


MESSAGES: dict[str, type[WireModel]] = {message_type(m): m for m in (*EA_MESSAGES, *BRIDGE_MESSAGES)}
"""Every message model by its ``type``."""

ANSWERED_BY: dict[str, str] = {"HELLO": "WELCOME", "TICK": "COMMAND"}
"""The reply each request waits for; other requests are answered only when refused (ERROR)."""

_EA_ADAPTER: TypeAdapter[Any] = TypeAdapter(EaMessage)
_BRIDGE_ADAPTER: TypeAdapter[Any] = TypeAdapter(BridgeMessage)


# --- Parsing and encoding -----------------------------------------------------------------------------------


class ProtocolError(Exception):
    """A frame the receiver refuses: ``code`` is an ErrorCode, ``message`` names the field, value and rule,
    ``reply_to`` is the frame's seq when it could be read (else -1)."""

    def __init__(self, code: ErrorCode, message: str, reply_to: int = REPLY_TO_UNKNOWN) -> None:
        super().__init__(f"{code}: {message}")
        self.code: ErrorCode = code
        self.message = message
        self.reply_to = reply_to

    def to_reply(self) -> ErrorReply:
        """The ERROR message telling the EA why its frame was refused."""
        return ErrorReply(reply_to=self.reply_to, code=self.code, message=self.message)


def parse_request(frame: bytes, max_bytes: int) -> EaMessage:
    """Parse one EA → bridge frame into its message model, or raise ProtocolError."""
    return _parse(frame, max_bytes, _EA_ADAPTER, "seq")


def parse_reply(frame: bytes, max_bytes: int) -> BridgeMessage:
    """Parse one bridge → EA frame into its message model, or raise ProtocolError; for EA simulators."""
    return _parse(frame, max_bytes, _BRIDGE_ADAPTER, "reply_to")


def encode(msg: WireModel) -> bytes:
    """One message as a compact UTF-8 JSON frame."""
    return msg.model_dump_json().encode("utf-8")


def _parse(frame: bytes, max_bytes: int, adapter: TypeAdapter[Any], id_field: str) -> Any:
    # Refuse before parsing: a huge frame costs memory and time even to reject.
    if len(frame) > max_bytes:
        raise ProtocolError("FRAME_TOO_LARGE", f"frame of {len(frame)} bytes exceeds {max_bytes}")
    try:
        return adapter.validate_json(frame)
    except ValidationError as exc:
        # Errors are rare, so only now pay for a second parse to learn the seq and the message type.
        raise _translate(exc, frame, id_field) from None


def _translate(exc: ValidationError, frame: bytes, id_field: str) -> ProtocolError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    if first["type"] == "json_invalid":
        # Not read, so no seq: what another reader might make of it (Python's reads a nesting pydantic's
        # refuses as deep as the caller's stack allows) would make the answer depend on where it is asked.
        return ProtocolError("MALFORMED_JSON", f"not valid JSON: {first['ctx']['error']}")
    raw = _read_json(frame)
    reply_to = readable_seq(raw, id_field)
    if not isinstance(raw, dict):
        return ProtocolError("NOT_AN_OBJECT", f"message must be a JSON object, got {_json_kind(raw)}")
    kind = raw.get("type")
    # A newer EA's HELLO may differ everywhere; the version is the one problem worth reporting then.
    if kind == "HELLO" and "protocol_version" in raw and raw["protocol_version"] != PROTOCOL_VERSION:
        return ProtocolError(
            "PROTOCOL_VERSION",
            f"HELLO.protocol_version: bridge speaks {PROTOCOL_VERSION}, got {_show(raw['protocol_version'])}",
            reply_to,
        )
    code, text = _describe(first)
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return ProtocolError(code, text, reply_to)


_UNREADABLE = object()


def _read_json(frame: bytes) -> Any:
    """The frame as Python's JSON reader reads strict UTF-8 text (a repeated key keeps its last value, as
    pydantic's does); ``_UNREADABLE`` when it cannot."""
    try:
        return json.loads(frame.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep, a number too long
        return _UNREADABLE


def readable_seq(raw: Any, id_field: str = "seq") -> int:
    """The ``seq`` (or ``id_field``) of a frame already read as JSON when it is an integer in range, for the
    ``reply_to`` of its ERROR; else REPLY_TO_UNKNOWN. A seq out of range is not read: echoing a number the
    EA cannot hold (2**64, say) would only move the problem to its side."""
    value = raw.get(id_field) if isinstance(raw, dict) else None
    return value if type(value) is int and REPLY_TO_UNKNOWN <= value <= MAX_SAFE_INTEGER else REPLY_TO_UNKNOWN


def frame_seq(frame: bytes, id_field: str = "seq") -> int:
    """The ``reply_to`` of an ERROR answering ``frame``, whatever went wrong with it (a fault of the bridge's
    own included): its seq when the frame is valid JSON as the protocol reads it and an object with an integer
    seq in range, else REPLY_TO_UNKNOWN. A frame over the size limit is answered REPLY_TO_UNKNOWN without
    calling this: it is never read."""
    try:
        from_json(frame)   # the protocol's own JSON reader: what it cannot read has no seq
    except ValueError:
        return REPLY_TO_UNKNOWN
    return readable_seq(_read_json(frame), id_field)


def _describe(err: Any) -> tuple[ErrorCode, str]:
    kind = err["type"]
    ctx = err.get("ctx", {})
    if kind == "union_tag_not_found":
        return "MISSING_FIELD", "type: required field is missing"
    if kind == "union_tag_invalid":
        return "UNKNOWN_TYPE", f"type: unknown message type {_show(err['input'].get('type'))}, expected {ctx['expected_tags']}"
    path = _path(err["loc"])
    if kind == "missing":
        return "MISSING_FIELD", f"{path}: required field is missing"
    if kind == "extra_forbidden":
        return "EXTRA_FIELD", f"{path}: unexpected field (value {_show(err['input'])})"
    if kind == "protocol_version":
        return "PROTOCOL_VERSION", f"{path}: {err['msg']}"
    if kind == "cross_field":
        return "INVALID_VALUE", f"{path}.{ctx['field']}: {err['msg']}"
    return "INVALID_VALUE", f"{path}: {_rule(kind, ctx, err)}, got {_show(err['input'])}"


_RULES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "finite_number": "must be a finite number",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "list_type": "must be an array",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "literal_error": "must be {expected}",
    "string_pattern_mismatch": "must match {pattern}",
    "string_too_short": "must not be empty",
}


def _rule(kind: str, ctx: dict[str, Any], err: Any) -> str:
    if kind in ("too_long", "too_short"):
        unit = "characters" if isinstance(err["input"], str) else "items"
        bound = "at most" if kind == "too_long" else "at least"
        limit = ctx["max_length"] if kind == "too_long" else ctx["min_length"]
        return f"must have {bound} {limit} {unit}"
    template = _RULES.get(kind)
    return template.format(**{k: _number(v) for k, v in ctx.items()}) if template else str(err["msg"]).lower()


def _number(value: Any) -> Any:
    # Bounds come back as floats ("> 0.0"); a trader reads "> 0".
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _path(loc: tuple[Any, ...]) -> str:
    # loc starts with the message type (the union's tag): ('TICK', 'positions', 2, 'volume').
    out = str(loc[0]) if loc else "message"
    for part in loc[1:]:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            # A key the frame made up (an extra field) is shown in JSON spelling and cut, like a value: the
            # message stays short and holds no line break or control code of the frame's.
            out += f".{part}" if part.isidentifier() and len(part) <= 40 else f".{_show(part, 40)}"
    return out


def _show(value: Any, limit: int = 60) -> str:
    # JSON spelling, so a string price shows its quotes and NaN shows as NaN.
    if isinstance(value, float) and not math.isfinite(value):
        text = repr(value).replace("nan", "NaN").replace("inf", "Infinity")
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_kind(value: Any) -> str:
    if value is _UNREADABLE:   # pydantic read what Python's JSON reader cannot
        return "a value that cannot be read"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__
