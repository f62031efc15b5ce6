"""The trader's settings: every threshold of the decision engine, read from a TOML file and checked at start.

An empty file is the FTMO 2-Step challenge: every key has a default, and ``config/default.toml`` spells out
exactly those defaults (a test keeps the two equal). The presets in ``config/`` set only what differs.

A bad file never half-loads. Unknown keys, wrong types, numbers out of range and contradictory settings are
all collected and raised together as one ``ConfigError``, one line each, naming the file, the dotted key, the
value given and what is allowed::

    config/default.toml: entry.min_confidence = 1.4: must be between 0 and 1

Two tables are keyed by names the trader picks, and what a file gives there is added to what ships:
``[symbols.NAME]`` (an entry replaces the shipped entry of the same name; switch a symbol off with
``enabled = false``) and ``[sizing.correlation]`` (a pair replaces the shipped value of that pair in either
order; 0 ignores it). Every other table is fixed: its keys are the ones documented.

Public API: ``load_config``, ``parse_config``, ``Config``, ``ConfigError``, ``effective_toml``,
``engine_params``, ``symbol_settings``, ``symbol_class``, ``symbol_params``, ``correlation``,
``config_warnings``. ``docs/config.md`` is generated from the models: ``python -m mt5bridge.config
--write-docs`` (``--check-docs`` exits 1 when it is stale).

Adding a section: subclass ``Section`` (``extra="forbid"`` and the other checks come with it), give every
field a default and a description, add it to ``Config`` as ``name: MySection = Field(default_factory=...,
description=...)``, list its keys in ``config/default.toml``, and add its name to ``ENGINE_SECTIONS`` only
if the compiled engine reads it. Errors, the effective TOML and the docs pick it up by themselves.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import difflib
import logging
import math
import operator
import re
import sys
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, Optional, Union, get_args, get_origin

import annotated_types as at
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DOCS_PATH = ROOT / "docs" / "config.md"
DOCS_COMMAND = "python -m mt5bridge.config --write-docs"
PRESET_DIR = ROOT / "config"
PRESETS = ("default", "verification", "funded_standard", "funded_swing", "one_step")

# --- choices -------------------------------------------------------------------------------------------------
# The order of each tuple is the integer code the compiled engine receives (see ``engine_params``): append
# new choices at the end, never reorder.

Product = Literal["2-step", "1-step"]
Phase = Literal["challenge", "verification", "funded"]
MaxLossMode = Literal["static", "eod_trailing"]
BreakerAction = Literal["flatten", "stop_entries"]
SizingMode = Literal["full", "plain"]
# Same order as the engine's CONSENSUS_* codes (ext/scoring.pxi), so bit i of the mask is consensus code i.
Consensus = Literal["UNANIMOUS", "STRONG", "WEAK", "SPLIT"]
Session = Literal["asia", "london", "newyork"]
AssetClass = Literal["fx", "metals", "indices", "energies", "crypto"]
ASSET_CLASSES: tuple[str, ...] = get_args(AssetClass)

# ISO codes of the currencies FX brokers quote; a six-letter symbol made of two of them is a currency pair.
# The order is fixed: bit i of the engine's currency masks (news blackouts) is CURRENCY_CODES[i].
CURRENCY_CODES: tuple[str, ...] = (
    "USD", "EUR", "GBP", "JPY", "CHF", "AUD", "NZD", "CAD", "SEK", "NOK", "DKK", "PLN", "HUF", "CZK", "TRY",
    "ZAR", "MXN", "SGD", "HKD", "CNH", "ILS", "RUB", "THB",
)
CURRENCIES = frozenset(CURRENCY_CODES)
_METAL_CODES = ("XAU", "XAG", "XPT", "XPD")
_CRYPTO_CODES = ("BTC", "ETH", "LTC", "XRP", "BCH", "ADA", "DOT", "SOL", "DOGE", "XLM", "LINK", "AVAX", "BNB")
_ENERGY_PREFIXES = ("USOIL", "UKOIL", "WTI", "BRENT", "XTI", "XBR", "XNG", "NGAS", "NATGAS")
# Index names start with their market's code; the news that moves them is that market's currency.
_INDEX_CURRENCIES = (
    ("US", "USD"), ("NAS", "USD"), ("SPX", "USD"), ("DJ", "USD"),
    ("GER", "EUR"), ("DE", "EUR"), ("EU", "EUR"), ("FRA", "EUR"), ("SPN", "EUR"), ("ESP", "EUR"),
    ("N25", "EUR"), ("NL", "EUR"), ("IT", "EUR"),
    ("UK", "GBP"), ("JP", "JPY"), ("AUS", "AUD"), ("HK", "HKD"),
)


# --- errors --------------------------------------------------------------------------------------------------


class ConfigIssue(NamedTuple):
    """One thing wrong with a configuration file."""

    source: str
    key: str  # dotted TOML key, "" when the problem is the file itself
    value: str  # the value given, written as TOML; "" when there is none
    problem: str

    def __str__(self) -> str:
        if not self.key:
            return f"{self.source}: {self.problem}"
        if self.value.startswith("{"):
            return f"{self.source}: [{self.key}]: {self.problem}"
        return f"{self.source}: {self.key} = {self.value}: {self.problem}"


class ConfigError(ValueError):
    """A configuration that cannot be used. ``issues`` holds every problem found, one line each in ``str()``."""

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))

    @property
    def lines(self) -> list[str]:
        return [str(issue) for issue in self.issues]


# --- rules between settings ----------------------------------------------------------------------------------


class Violation(NamedTuple):
    """A broken rule: ``problem`` may hold ``{0}``, ``{1}`` ... for the keys in ``others``, written out in full
    where the message is shown."""

    key: tuple[str, ...]
    value: Any
    problem: str
    others: tuple[tuple[str, ...], ...] = ()


class Rule(NamedTuple):
    """A rule between settings: ``text`` for the docs, ``keys`` the dotted settings it reads (it is not
    checked while one of them is invalid), ``check`` returns a violation or None."""

    text: str
    keys: tuple[str, ...]
    check: Callable[[Any], Optional[Violation]]


def _path(dotted: str) -> tuple[str, ...]:
    return tuple(dotted.split("."))


def _get(obj: Any, dotted: str) -> Any:
    return operator.attrgetter(dotted)(obj)


def _comparison(holds: Callable[[Any, Any], bool], symbol: str, words: str) -> Callable[[str, str], Rule]:
    def rule(subject: str, limit: str) -> Rule:
        def check(obj: Any) -> Optional[Violation]:
            value, bound = _get(obj, subject), _get(obj, limit)
            if holds(value, bound):
                return None
            return Violation(_path(subject), value, f"must {words} {{0}} ({_toml_value(bound)})", (_path(limit),))

        return Rule(f"`{subject}` {symbol} `{limit}`", (subject, limit), check)

    return rule


at_most = _comparison(operator.le, "≤", "not be above")
below = _comparison(operator.lt, "<", "be below")
at_least = _comparison(operator.ge, "≥", "not be below")


SKIP_RULES = {"skip_rules": True}
"""Validation context that checks each setting on its own; used to find the rules a bad file also breaks."""


def _skipping_rules(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("skip_rules"))


def _raise_violations(violations: list[Violation]) -> None:
    if violations:
        summary = "; ".join(
            f"{_dotted(v.key)} = {_toml_value(v.value)}: "
            + v.problem.format(*(_dotted(o) for o in v.others))
            for v in violations
        )
        # Checked again, with full key names and alongside every other error, by _rule_issues when a file loads.
        raise PydanticCustomError("config_rules", "{summary}", {"summary": summary})


# --- value types ---------------------------------------------------------------------------------------------


def _known_currencies(values: list[str]) -> list[str]:
    # A currency the news calendar cannot name would match no release: the symbol would trade through its news.
    unknown = [v for v in values if v not in CURRENCIES]
    if unknown:
        raise PydanticCustomError("unknown_currency", "{unknown} is not a currency news can be matched to; known: {known}",
                                  {"unknown": ", ".join(map(repr, unknown)), "known": ", ".join(CURRENCY_CODES)})
    return values


def _distinct(values: list[Any]) -> list[Any]:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{', '.join(map(repr, repeated))} listed more than once")
    return values


def _time_from_toml(value: Any) -> Any:
    # TOML has a local-time literal (friday_close_utc = 21:00:00); take it as well as the string "21:00".
    if isinstance(value, _dt.time) and value.second == 0 and value.microsecond == 0 and value.tzinfo is None:
        return f"{value.hour:02d}:{value.minute:02d}"
    return value


def _hhmm(value: str) -> str:
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise ValueError("not a time of day HH:MM")
    return value


def _symbol_name(value: str) -> str:
    if not re.fullmatch(r"[^\s/\"]{1,32}", value):
        raise ValueError("not a symbol name")
    return value


def _symbol_pair(value: str) -> str:
    parts = value.split("/")
    if len(parts) != 2 or not all(re.fullmatch(r"[^\s/\"]{1,32}", p) for p in parts) or parts[0] == parts[1]:
        raise ValueError("not a pair of two different symbols")
    return value


TimeOfDay = Annotated[str, BeforeValidator(_time_from_toml), AfterValidator(_hhmm)]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
SymbolName = Annotated[str, AfterValidator(_symbol_name)]
SymbolPair = Annotated[str, AfterValidator(_symbol_pair)]
CorrelationValue = Annotated[float, Field(ge=-1.0, le=1.0)]
TIME_OF_DAY = {"allowed": 'a time of day "HH:MM" (24-hour)', "time_of_day": True}


# --- models --------------------------------------------------------------------------------------------------


class Section(BaseModel):
    """A table of the configuration file."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self, info: ValidationInfo) -> Section:
        if not _skipping_rules(info):
            _raise_violations([v for rule in self.rules if (v := rule.check(self)) is not None])
        return self


def _one_step_has_no_verification(account: AccountSettings) -> Optional[Violation]:
    if account.product == "1-step" and account.phase == "verification":
        return Violation(("phase",), account.phase, "the 1-Step product has no verification phase")
    return None


class AccountSettings(Section):
    """The FTMO product and phase this account is in. They choose the limits the engine guards and which
    objectives a report checks."""

    product: Product = Field("2-step", description="FTMO product: the 2-Step challenge or the 1-Step challenge.")
    phase: Phase = Field(
        "challenge",
        description="Phase of the account: `challenge` (phase 1), `verification` (phase 2, 2-Step only) or "
        "`funded`.",
    )
    initial_balance: float = Field(
        0.0, ge=0.0, le=100_000_000.0,
        description="Initial balance in the account currency, the base of every FTMO percentage. "
        "0 = take it from the EA's HELLO, or the first balance seen.",
    )
    currency: CurrencyCode = Field(
        "USD", json_schema_extra={"allowed": 'a three-letter currency code such as "USD"'},
        description="Account currency; money in reports and logs is in this currency.",
    )

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule("the 1-Step product has no `verification` phase", ("product", "phase"), _one_step_has_no_verification),
    )


class GapAllowance(Section):
    """The gap assumed at the market's reopening after the weekend, against every position held over the close,
    % of price, per asset class. A stop cannot fill inside a gap: it fills at the reopening price."""

    fx: float = Field(2.0, ge=0.0, le=50.0, description="Currency pairs.")
    metals: float = Field(3.0, ge=0.0, le=50.0, description="Gold, silver and other metals.")
    indices: float = Field(4.0, ge=0.0, le=50.0, description="Stock index CFDs.")
    energies: float = Field(6.0, ge=0.0, le=50.0, description="Oil and gas CFDs.")
    crypto: float = Field(
        0.0, ge=0.0, le=50.0,
        description="Crypto currency CFDs; 0 because they trade through the weekend, so stops keep working.",
    )


class FtmoLimits(Section):
    """FTMO's rules as numbers, and how far from them the engine stays. Both loss limits are equity floors:
    floating P/L, swaps and commissions count. The engine never sends a command whose worst case (every open
    position and order in flight stopped out, plus the slippage allowance, and over the weekend close the gap
    allowance) comes closer to a limit than the safety buffer."""

    daily_loss_pct: float = Field(
        5.0, gt=0.0, le=20.0,
        description="Max daily loss, % of the initial balance: equity must stay above the balance at "
        "midnight Prague minus this (2-Step 5, 1-Step 3).",
    )
    max_loss_pct: float = Field(
        10.0, gt=0.0, le=50.0,
        description="Max loss, % of the initial balance: equity must stay above the floor this sets "
        "(see `max_loss_mode`).",
    )
    max_loss_mode: MaxLossMode = Field(
        "static",
        description="`static`: the floor is initial balance − max loss (2-Step). `eod_trailing`: the floor is "
        "the highest end-of-day balance (never below the initial) − max loss, and only rises (1-Step).",
    )
    profit_target_pct: float = Field(
        10.0, ge=0.0, le=100.0,
        description="Profit target on closed balance, % of the initial balance (challenge 10, verification 5). "
        "0 = no target (funded).",
    )
    min_trading_days: int = Field(
        4, ge=0, le=60,
        description="Trading days needed to pass: Prague days on which a position was opened. Reported.",
    )
    best_day_max_share: float = Field(
        0.5, gt=0.0, le=1.0,
        description="1-Step Best Day Rule: the best day's profit as a share of the total profit may not exceed "
        "this for the challenge to pass. Breaking it fails nothing, but on the 1-Step the profit target counts "
        "as reached only once it holds (so `stop_at_target` keeps trading until it does). Ignored on the 2-Step.",
    )
    stop_at_target: bool = Field(
        True,
        description="Once every objective of the phase is met (the profit target on closed balance, the minimum "
        "trading days and, on the 1-Step, the Best Day Rule), open nothing more and manage the open positions "
        "to their exits: there is nothing left to win in the phase, only the account to lose.",
    )
    safety_buffer_pct: float = Field(
        0.5, ge=0.0, le=5.0,
        description="% of the initial balance kept between the worst case and each limit.",
    )
    slippage_allowance_pct: float = Field(
        10.0, ge=0.0, le=200.0,
        description="% of each stop distance added to that position's loss in the worst case, for slippage "
        "through the stop while the market is open.",
    )
    gap_allowance_pct: GapAllowance = Field(
        default_factory=GapAllowance,
        description="Gap assumed over the weekend close, % of price, per asset class: a position held into the "
        "close counts as losing the larger of its stop distance (with slippage) and this gap. Not used when "
        "`funded.flat_before_weekend` closes everything before the close.",
    )
    gap_horizon_hours: float = Field(
        24.0, ge=0.0, le=72.0,
        description="From this many hours before Friday's close (`funded.friday_close_utc`) until the market "
        "reopens on Sunday, every position and order in flight carries the gap allowance, new ones are sized "
        "with it, and the floor is the one the reopening day will have (the balance then, less the daily "
        "limit). 24 = the time exit: a position opened later may well be held over the close.",
    )
    reduce_at_share: float = Field(
        0.70, gt=0.0, lt=1.0,
        description="Share of a limit used (by the worst case) at which trading turns REDUCING: no new "
        "positions or adds, exits only.",
    )
    halt_at_share: float = Field(
        0.90, gt=0.0, le=1.0,
        description="Share of a limit used at which trading is HALTED: everything is flattened and nothing "
        "opens until the limit resets.",
    )
    unprotected_stop_atr: float = Field(
        3.0, gt=0.0, le=50.0,
        description="A position without a stop loss is counted as stopped this many ATR(14) of M15 away "
        "when the worst case is worked out.",
    )

    rules: ClassVar[tuple[Rule, ...]] = (
        at_most("daily_loss_pct", "max_loss_pct"),
        below("safety_buffer_pct", "daily_loss_pct"),
        below("reduce_at_share", "halt_at_share"),
    )


class GuardSettings(Section):
    """The desk's own limits, tighter than FTMO's, and the size cuts after losses. They act before an FTMO
    limit comes near."""

    internal_daily_dd_pct: float = Field(
        3.0, gt=0.0, le=20.0,
        description="Own daily loss limit, % of the day-start balance: reached, no new positions until the "
        "Prague day ends.",
    )
    internal_weekly_dd_pct: float = Field(
        10.0, gt=0.0, le=50.0,
        description="Own weekly loss limit, % of the week-start balance: reached, no new positions until "
        "Monday.",
    )
    losing_streak: int = Field(
        3, ge=1, le=100,
        description="Consecutive losing trades after which position size is cut by `losing_streak_factor`; "
        "one winner ends the streak.",
    )
    losing_streak_factor: float = Field(
        0.5, gt=0.0, le=1.0, description="Size multiplier during a losing streak; 1 turns the cut off."
    )
    recovery_dd_pct: float = Field(
        2.0, gt=0.0, le=50.0,
        description="Drawdown from the equity peak, % of the initial balance, beyond which size is cut by "
        "`recovery_factor` until equity is back above it.",
    )
    recovery_factor: float = Field(
        0.5, gt=0.0, le=1.0, description="Size multiplier while in recovery; 1 turns the cut off."
    )
    circuit_breaker_pct: float = Field(
        5.0, gt=0.0, le=50.0,
        description="Fall of equity from the highest equity of the Prague day (the peak since midnight Prague, "
        "or since the breaker last tripped), % of that peak, that trips the circuit breaker. Measured from the "
        "peak, not from the day-start balance.",
    )
    circuit_breaker_action: BreakerAction = Field(
        "flatten",
        description="What the tripped breaker does: `flatten` closes every position on the account (CLOSE_ALL, "
        "repeated until the book is flat) and then opens nothing for `circuit_breaker_hours`; `stop_entries` "
        "only opens nothing for `circuit_breaker_hours`, managing open positions to their exits.",
    )
    circuit_breaker_hours: float = Field(
        4.0, ge=0.0, le=168.0,
        description="How long no new position or add opens after the breaker trips, in hours; 0 = no pause "
        "(with `flatten`: flatten once, then trade on).",
    )

    rules: ClassVar[tuple[Rule, ...]] = (at_most("internal_daily_dd_pct", "internal_weekly_dd_pct"),)


class EntrySettings(Section):
    """When a new position may open. Every test must pass; a refusal names the one that failed."""

    min_score: float = Field(55.0, ge=0.0, le=100.0, description="Lowest market score (0–100) to open on.")
    min_confidence: float = Field(
        0.60, ge=0.0, le=1.0, description="Lowest direction confidence (0–1) to open on."
    )
    min_confidence_high_vol: float = Field(
        0.80, ge=0.0, le=1.0,
        description="Lowest direction confidence when volatility is high (see `high_vol_atr_ratio`).",
    )
    allowed_consensus: Annotated[list[Consensus], AfterValidator(_distinct)] = Field(
        default_factory=lambda: ["UNANIMOUS", "STRONG"], min_length=1,
        description="Agreement of the four sub-models an entry accepts: UNANIMOUS (all four agree), STRONG "
        "(three, none against), WEAK (more for than against), SPLIT (no majority).",
    )
    max_spread_points: float = Field(
        30.0, gt=0.0, le=100_000.0,
        description="Widest spread, in points, to open at; a symbol may set its own (`[symbols.NAME]`).",
    )
    max_spread_typical_ratio: float = Field(
        2.5, ge=1.0, le=100.0,
        description="Widest spread as a multiple of the symbol's typical spread (its recent median).",
    )
    max_atr_pct: float = Field(
        5.0, gt=0.0, le=100.0,
        description="Highest M15 ATR(14) as % of price to open at: above it the market is too wild.",
    )
    high_vol_atr_ratio: float = Field(
        1.5, ge=1.0, le=10.0,
        description="M15 ATR(14) / ATR(50) above this is high volatility: stricter confidence, smaller size.",
    )
    require_h1_ema200_alignment: bool = Field(
        True, description="Buy only above the H1 EMA(200), sell only below it."
    )
    sessions: Annotated[list[Session], AfterValidator(_distinct)] = Field(
        default_factory=lambda: ["london", "newyork"],
        description="Sessions in which positions may open (asia 00:00–09:00 UTC, london and newyork "
        "08:00–17:00 local time); empty = any time.",
    )
    cooldown_minutes: int = Field(
        15, ge=0, le=1440, description="Minutes after a position on a symbol closes before it may open again."
    )
    require_warm: bool = Field(
        True, description="Open nothing until every indicator has the history it needs (no half-warm features)."
    )

    rules: ClassVar[tuple[Rule, ...]] = (at_most("min_confidence", "min_confidence_high_vol"),)


class ClassMaxLots(Section):
    """Largest volume of one position, in lots, per asset class: a ceiling over whatever the risk maths says."""

    fx: float = Field(10.0, gt=0.0, le=1000.0, description="Currency pairs.")
    metals: float = Field(5.0, gt=0.0, le=1000.0, description="Gold, silver and other metals.")
    indices: float = Field(10.0, gt=0.0, le=1000.0, description="Stock index CFDs.")
    energies: float = Field(10.0, gt=0.0, le=1000.0, description="Oil and gas CFDs.")
    crypto: float = Field(1.0, gt=0.0, le=1000.0, description="Crypto currency CFDs.")


class ClassMaxNotional(Section):
    """Largest notional of one position, % of equity, per asset class."""

    fx: float = Field(500.0, gt=0.0, le=10_000.0, description="Currency pairs.")
    metals: float = Field(200.0, gt=0.0, le=10_000.0, description="Gold, silver and other metals.")
    indices: float = Field(200.0, gt=0.0, le=10_000.0, description="Stock index CFDs.")
    energies: float = Field(200.0, gt=0.0, le=10_000.0, description="Oil and gas CFDs.")
    crypto: float = Field(100.0, gt=0.0, le=10_000.0, description="Crypto currency CFDs.")


# Long-run correlations of daily returns, rounded: a starting point, not a measurement of your market.
DEFAULT_CORRELATION: dict[str, float] = {
    "EURUSD/GBPUSD": 0.8,
    "EURUSD/USDCHF": -0.9,
    "EURUSD/USDJPY": -0.3,
    "GBPUSD/USDJPY": -0.2,
    "AUDUSD/NZDUSD": 0.9,
    "EURUSD/XAUUSD": 0.4,
    "XAUUSD/XAGUSD": 0.8,
    "XAUUSD/USDJPY": -0.4,
}


def _pair_key(pair: str) -> frozenset[str]:
    return frozenset(pair.split("/"))


def _no_pair_twice(sizing: SizingSettings) -> Optional[Violation]:
    seen: dict[frozenset[str], str] = {}
    for pair, value in sizing.correlation.items():
        first = seen.setdefault(_pair_key(pair), pair)
        if first != pair:
            return Violation(("correlation", pair), value, "repeats {0}", (("correlation", first),))
    return None


class SizingSettings(Section):
    """How big a position is. In `full` mode the risk per trade starts between `base_risk_pct_min` and
    `base_risk_pct_max` by signal quality, is multiplied by the volatility, performance and regime factors and
    the diversification factor, then cut to the day's risk budget, the exposure and concentration limits, the
    CVaR of the symbol and the per-class ceilings. `plain` risks `base_risk_pct_min` on every trade, under the
    same ceilings."""

    mode: SizingMode = Field("full", description="`full`: every factor below applies. `plain`: fixed risk.")
    base_risk_pct_min: float = Field(
        0.25, gt=0.0, le=5.0, description="Risk per trade for the weakest acceptable signal, % of equity."
    )
    base_risk_pct_max: float = Field(
        0.5, gt=0.0, le=5.0, description="Risk per trade for the strongest signal, % of equity."
    )
    quality_min: float = Field(
        0.6, gt=0.0, le=2.0, description="Size multiplier at the lowest signal quality that still trades."
    )
    quality_max: float = Field(1.0, gt=0.0, le=2.0, description="Size multiplier at the highest signal quality.")
    high_vol_factor: float = Field(
        0.7, gt=0.0, le=1.0, description="Size multiplier when volatility is high (see `entry.high_vol_atr_ratio`)."
    )
    perf_window: int = Field(20, ge=1, le=1000, description="Closed trades the performance factor looks back on.")
    perf_min: float = Field(
        0.7, gt=0.0, le=3.0, description="Performance factor after the worst run of `perf_window` trades."
    )
    perf_max: float = Field(
        1.3, gt=0.0, le=3.0, description="Performance factor after the best run of `perf_window` trades."
    )
    trend_regime_factor: float = Field(
        1.0, gt=0.0, le=2.0, description="Size multiplier when the market is trending."
    )
    range_regime_factor: float = Field(
        0.8, gt=0.0, le=2.0, description="Size multiplier when the market is ranging."
    )
    cvar_level: float = Field(
        0.95, ge=0.5, lt=1.0,
        description="Confidence level of the CVaR (expected shortfall) of a position over `holding_bars`.",
    )
    cvar_window_bars: int = Field(
        500, ge=50, le=100_000, description="M15 bars of history the CVaR is measured on."
    )
    holding_bars: int = Field(
        16, ge=1, le=10_000, description="Expected holding time in M15 bars, the horizon of the CVaR."
    )
    max_positions: int = Field(
        4, ge=1, le=100,
        description="Open positions at most, all symbols together, orders in flight included; each add (DCA or "
        "scale-in) is a position of its own on a hedging account and counts.",
    )
    max_adds_per_position: int = Field(
        2, ge=0, le=20,
        description="Adds one position may take in all, DCA and scale-in together (each also within its own "
        "`max_adds`). An add is never added to.",
    )
    max_exposure_pct: float = Field(
        80.0, gt=0.0, le=1000.0,
        description="Ceiling on the margin-weighted notional of all positions and orders in flight, % of equity.",
    )
    concentration_share: float = Field(
        0.5, gt=0.0, le=1.0,
        description="Largest share of the day's risk budget one symbol may take, with its correlated positions.",
    )
    daily_risk_budget_pct: float = Field(
        2.0, gt=0.0, le=20.0,
        description="Risk that may be opened in one Prague day, % of equity: the sum of the stop-loss risk "
        "of every position opened or added that day.",
    )
    class_max_lots: ClassMaxLots = Field(
        default_factory=ClassMaxLots, description="Largest volume of one position in lots, per asset class."
    )
    class_max_notional_pct: ClassMaxNotional = Field(
        default_factory=ClassMaxNotional, description="Largest notional of one position, % of equity, per class."
    )
    correlation: dict[SymbolPair, CorrelationValue] = Field(
        default_factory=lambda: dict(DEFAULT_CORRELATION),
        description='Correlation of two symbols\' returns, keys "A/B" in either order, values −1..1. What a '
        "file gives is added to the shipped pairs; a pair not listed counts as 0.",
    )
    diversification_floor: float = Field(
        0.5, gt=0.0, le=1.0,
        description="Smallest diversification factor: correlated positions shrink a new one down to this "
        "share of its size, never further.",
    )

    rules: ClassVar[tuple[Rule, ...]] = (
        at_most("base_risk_pct_min", "base_risk_pct_max"),
        at_most("base_risk_pct_max", "daily_risk_budget_pct"),
        at_most("quality_min", "quality_max"),
        at_most("perf_min", "perf_max"),
        below("holding_bars", "cvar_window_bars"),
        Rule("a pair appears once, in one order", ("correlation",), _no_pair_twice),
    )

    @model_validator(mode="before")
    @classmethod
    def _add_shipped_pairs(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("correlation"), dict):
            given = data["correlation"]
            named = {_pair_key(k) for k in given if isinstance(k, str)}
            shipped = {k: v for k, v in DEFAULT_CORRELATION.items() if _pair_key(k) not in named}
            data = {**data, "correlation": {**shipped, **given}}
        return data


class ExitSettings(Section):
    """How a position is protected and closed: stop loss and take profit in ATR, breakeven, partial close,
    trailing stop, time exit, and the exit score, a weighted sum of warning signals compared with a threshold
    that depends on whether the position is in profit, flat or at a loss."""

    sl_atr: float = Field(1.5, gt=0.0, le=50.0, description="Stop-loss distance in M15 ATR(14).")
    tp_atr: float = Field(3.75, gt=0.0, le=100.0, description="Take-profit distance in M15 ATR(14).")
    breakeven_r: float = Field(
        1.0, gt=0.0, le=20.0, description="Profit, in R (multiples of the initial risk), at which the stop "
        "moves to breakeven."
    )
    breakeven_offset_points: float = Field(
        2.0, ge=0.0, le=100_000.0,
        description="Points beyond the entry price the breakeven stop is set, to cover costs.",
    )
    partial_r: float = Field(2.0, gt=0.0, le=50.0, description="Profit, in R, at which part of the position closes.")
    partial_fraction: float = Field(
        0.5, ge=0.0, lt=1.0, description="Share of the volume closed at `partial_r`; 0 = no partial close."
    )
    trail_atr: float = Field(
        1.0, ge=0.0, le=50.0,
        description="Trailing-stop distance in M15 ATR(14) once the partial close is done; 0 = no trailing.",
    )
    time_exit_hours: float = Field(
        24.0, ge=0.0, le=720.0,
        description="A position open this long without progress closes; 0 = no time exit.",
    )
    time_exit_min_r: float = Field(
        0.5, ge=-10.0, le=10.0, description='"Without progress" for the time exit: profit below this many R.'
    )
    exit_threshold_profit: float = Field(
        65.0, ge=0.0, le=100.0, description="Exit score that closes a position in profit."
    )
    exit_threshold_flat: float = Field(
        80.0, ge=0.0, le=100.0, description="Exit score that closes a position that is about flat."
    )
    exit_threshold_loss: float = Field(
        70.0, ge=0.0, le=100.0, description="Exit score that closes a position at a loss."
    )
    exit_band_pct: float = Field(
        0.5, ge=0.0, le=20.0,
        description="A position whose price has moved less than this % from its entry counts as flat.",
    )
    weight_quality_drop: float = Field(
        30.0, ge=0.0, le=100.0, description="Exit-score weight: the market score fell well below the entry's."
    )
    weight_direction_reversal: float = Field(
        25.0, ge=0.0, le=100.0, description="Exit-score weight: the direction model now points the other way."
    )
    weight_trend_reversal: float = Field(
        20.0, ge=0.0, le=100.0, description="Exit-score weight: the trend turned against the position."
    )
    weight_volume_divergence: float = Field(
        15.0, ge=0.0, le=100.0, description="Exit-score weight: price and volume diverge."
    )
    weight_key_level: float = Field(
        10.0, ge=0.0, le=100.0, description="Exit-score weight: price reached a key level in the way."
    )
    stop_buffer_points: float = Field(
        5.0, ge=0.0, le=100_000.0,
        description="Points kept beyond the broker's minimum stop distance and freeze level when a stop or "
        "target is placed or moved.",
    )


class DcaSettings(Section):
    """Adding to a losing position, only when the model expects it to recover. Each add carries its own
    stop inside the position's original risk, and counts against every limit."""

    enabled: bool = Field(True, description="Allow adds to losing positions.")
    loss_pct: float = Field(
        0.5, gt=0.0, le=20.0, description="Adverse move from the entry price, in %, before an add is considered."
    )
    recovery_probability: float = Field(
        0.75, ge=0.0, le=1.0, description="Lowest probability of recovery the model must give for an add."
    )
    add_min: float = Field(
        0.25, gt=0.0, le=2.0, description="Smallest add, as a share of the position's initial volume."
    )
    add_max: float = Field(0.5, gt=0.0, le=2.0, description="Largest add, as a share of the initial volume.")
    max_adds: int = Field(
        2, ge=0, le=10, description="DCA adds one position may take; 0 = none. Counted per position with its "
        "adds, within `sizing.max_adds_per_position`.",
    )

    rules: ClassVar[tuple[Rule, ...]] = (at_most("add_min", "add_max"),)


class ScaleInSettings(Section):
    """Adding to a winning position while the signal stays strong."""

    enabled: bool = Field(True, description="Allow adds to winning positions.")
    profit_pct: float = Field(
        0.3, gt=0.0, le=20.0, description="Favourable move from the entry price, in %, before an add is considered."
    )
    min_score: float = Field(
        75.0, ge=0.0, le=100.0, description="Lowest market score for an add; not below `entry.min_score`."
    )
    add_min: float = Field(
        0.25, gt=0.0, le=2.0, description="Smallest add, as a share of the position's initial volume."
    )
    add_max: float = Field(0.5, gt=0.0, le=2.0, description="Largest add, as a share of the initial volume.")
    max_adds: int = Field(
        2, ge=0, le=10, description="Scale-in adds one position may take; 0 = none. Counted per position with "
        "its adds, within `sizing.max_adds_per_position`.",
    )

    rules: ClassVar[tuple[Rule, ...]] = (at_most("add_min", "add_max"),)


def _blackout_needs_calendar(funded: FundedSettings) -> Optional[Violation]:
    if funded.news_blackout and not funded.news_file:
        return Violation(
            ("news_file",), funded.news_file, "must name a news calendar: {0} is on", (("news_blackout",),)
        )
    return None


class FundedSettings(Section):
    """Rules of the funded Standard account: no trade around restricted news on the instruments it moves,
    and flat before the weekend. The funded Swing account is exempt from both."""

    news_blackout: bool = Field(
        False,
        description="Open and close nothing (stops and targets included: they are moved out of reach) from "
        "`news_minutes_before` to `news_minutes_after` a listed release on a symbol of its currency.",
    )
    news_file: str = Field(
        "",
        json_schema_extra={"allowed": "a file path; relative to the configuration file"},
        description="News calendar, a CSV with columns time (UTC), currency, title; a relative path is "
        "relative to the configuration file. Needed when `news_blackout` is on.",
    )
    news_minutes_before: int = Field(2, ge=0, le=120, description="Minutes before a release the blackout starts.")
    news_minutes_after: int = Field(2, ge=0, le=120, description="Minutes after a release the blackout ends.")
    flat_before_weekend: bool = Field(
        False, description="Close every position and open nothing from `weekend_flat_minutes` before Friday's close."
    )
    weekend_flat_minutes: int = Field(
        30, ge=0, le=1440, description="Minutes before Friday's close the weekend flattening starts."
    )
    friday_close_utc: TimeOfDay = Field(
        "21:00", json_schema_extra=TIME_OF_DAY,
        description="Friday's close in UTC. FX closes at 17:00 New York time: 21:00 UTC in US summer time, "
        "22:00 in winter, so 21:00 is early enough all year.",
    )

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule("`news_blackout = true` needs a `news_file`", ("news_blackout", "news_file"), _blackout_needs_calendar),
    )


class SymbolSettings(Section):
    """One symbol as the EA names it. `class` and `currencies` left out are worked out from the name."""

    asset_class: Optional[AssetClass] = Field(
        None, alias="class", json_schema_extra={"when_unset": "guessed from the name"},
        description="Asset class: fx, metals, indices, energies or crypto; sets the class ceilings. "
        "Left out: guessed from the name (XAU/XAG… metals, two currency codes fx, BTC/ETH… crypto, oil and gas "
        "names energies, anything else indices).",
    )
    currencies: Optional[Annotated[list[CurrencyCode], AfterValidator(_distinct), AfterValidator(_known_currencies)]] = Field(
        None,
        json_schema_extra={
            "allowed": 'a list of three-letter currency codes such as ["EUR", "USD"]',
            "when_unset": "from the name",
        },
        description="Currencies whose restricted news blacks this symbol out. Left out: both currencies of a "
        "pair, the quote currency of a metal or crypto, USD for energies, the market's currency for a known "
        "index name; [] = none.",
    )
    max_spread_points: Optional[Annotated[float, Field(gt=0.0, le=100_000.0)]] = Field(
        None, json_schema_extra={"when_unset": "entry.max_spread_points applies"},
        description="Widest spread to open at, in this symbol's points. Left out: `entry.max_spread_points`.",
    )
    enabled: bool = Field(True, description="false = never open a position on this symbol (exits still run).")


class SymbolGuess(NamedTuple):
    asset_class: str
    currencies: list[str]
    reason: str


def guess_symbol(name: str) -> SymbolGuess:
    """Class and news currencies of a symbol from its name alone, and why."""
    match = re.match(r"[A-Za-z0-9]+", name)
    base = (match.group(0) if match else name).upper()
    if base.startswith(_METAL_CODES):
        quote = [base[3:6]] if base[3:6] in CURRENCIES else []
        return SymbolGuess("metals", quote, f"{base[:3]} is a metal")
    for code in _CRYPTO_CODES:
        if base.startswith(code):
            rest = base[len(code):len(code) + 3]
            return SymbolGuess("crypto", [rest] if rest in CURRENCIES else [], f"{code} is a crypto currency")
    if base.startswith(_ENERGY_PREFIXES):
        return SymbolGuess("energies", ["USD"], "an oil or gas name")
    if len(base) <= 8 and base[:3] in CURRENCIES and base[3:6] in CURRENCIES:
        return SymbolGuess("fx", [base[:3], base[3:6]], f"{base[:3]} and {base[3:6]} are currencies")
    for prefix, currency in _INDEX_CURRENCIES:
        if base.startswith(prefix):
            return SymbolGuess("indices", [currency], f"not a pair, metal, energy or crypto: an index of {currency}")
    return SymbolGuess("indices", [], "not a pair, metal, energy or crypto: taken for an index")


def _fill_from_name(name: Any, entry: Any) -> Any:
    if not isinstance(name, str):
        return entry
    guess = guess_symbol(name)
    if isinstance(entry, dict):
        filled = dict(entry)
        filled.setdefault("class", guess.asset_class)
        filled.setdefault("currencies", guess.currencies)
        return filled
    if isinstance(entry, SymbolSettings):
        update = {}
        if entry.asset_class is None:
            update["asset_class"] = guess.asset_class
        if entry.currencies is None:
            update["currencies"] = guess.currencies
        return entry.model_copy(update=update) if update else entry
    return entry


def default_symbols() -> dict[str, SymbolSettings]:
    def symbol(asset_class: str, currencies: list[str], **more: Any) -> SymbolSettings:
        return SymbolSettings.model_validate({"class": asset_class, "currencies": currencies, **more})

    return {
        "EURUSD": symbol("fx", ["EUR", "USD"]),
        "GBPUSD": symbol("fx", ["GBP", "USD"]),
        "USDJPY": symbol("fx", ["USD", "JPY"]),
        # Gold and index CFDs quote in cents: their spreads in points run to tens and hundreds.
        "XAUUSD": symbol("metals", ["USD"], max_spread_points=50.0),
        "US30": symbol("indices", ["USD"], max_spread_points=300.0),
    }


def _phase_and_target(cfg: Config) -> Optional[Violation]:
    if cfg.account.phase == "funded" and cfg.ftmo.profit_target_pct != 0:
        return Violation(
            ("ftmo", "profit_target_pct"), cfg.ftmo.profit_target_pct,
            "must be 0: a funded account has no profit target ({0} is \"funded\")", (("account", "phase"),),
        )
    return None


def _one_step_trails(cfg: Config) -> Optional[Violation]:
    if cfg.account.product == "1-step" and cfg.ftmo.max_loss_mode != "eod_trailing":
        return Violation(
            ("ftmo", "max_loss_mode"), cfg.ftmo.max_loss_mode,
            'must be "eod_trailing": the 1-Step max loss trails the end-of-day balance ({0} is "1-step")',
            (("account", "product"),),
        )
    return None


CROSS_RULES: tuple[Rule, ...] = (
    below("guards.internal_daily_dd_pct", "ftmo.daily_loss_pct"),
    at_least("scale_in.min_score", "entry.min_score"),
    Rule(
        "a `funded` account has `profit_target_pct = 0`",
        ("account.phase", "ftmo.profit_target_pct"), _phase_and_target,
    ),
    Rule(
        'the `1-step` product uses `max_loss_mode = "eod_trailing"`',
        ("account.product", "ftmo.max_loss_mode"), _one_step_trails,
    ),
)


class BridgeSettings(Section):
    """How the bridge serves the terminals: its sockets, the lock-step timings it hands every EA in WELCOME,
    and where the journal lives."""

    endpoint: str = Field(
        "tcp://127.0.0.1:5555",
        description="ZeroMQ endpoint the bridge binds its ROUTER to; the EAs connect here. Loopback by default: "
        "any other address needs CURVE keys (or `allow_insecure_remote`).",
    )
    control_endpoint: str = Field(
        "tcp://127.0.0.1:5556",
        description="Endpoint of the operator's control socket (`mt5bridge status`, `halt`, `resume`); loopback only.",
    )
    journal: str = Field(
        "data/journal.sqlite",
        description="The journal's SQLite file; a relative path is taken from the config file's folder.",
    )
    magic: int = Field(
        20261121, ge=1, le=2_147_483_647,
        description="Magic number of the engine's orders; the EAs must use the same. Positions with another "
        "magic are someone else's: counted in every limit, never managed.",
    )
    deadline_ms: int = Field(
        250, ge=10, le=10_000, description="How long an EA waits for the reply to a TICK before it holds."
    )
    heartbeat_ms: int = Field(1000, ge=100, le=60_000, description="How often an idle EA says it is alive.")
    stale_after_ms: int = Field(
        5000, ge=200, le=600_000, description="A chart silent this long is marked stale in status and logs."
    )
    command_timeout_ms: int = Field(
        10_000, ge=100, le=600_000,
        description="A command with no RESULT after this long is reconciled against the next TICK's positions "
        "(never re-sent).",
    )
    max_frame_bytes: int = Field(
        1_048_576, ge=4096, le=67_108_864, description="Frames larger than this are refused unread."
    )
    failsafe_silence_ms: int = Field(
        30_000, ge=1000, le=3_600_000,
        description="An EA that hears nothing from the bridge this long opens nothing new on its own.",
    )
    max_requests_per_minute: int = Field(
        30, ge=1, le=600, description="The EA's own cap on trade requests per symbol and minute."
    )
    ea_equity_guard: bool = Field(
        True,
        description="Hand the EA the daily equity floor so it can close its positions by itself if the bridge "
        "is gone and equity falls to it.",
    )
    curve_secret_key_file: str = Field(
        "", description="The bridge's CURVE secret key (from `mt5bridge keygen`) for a non-loopback endpoint."
    )
    allow_insecure_remote: bool = Field(
        False,
        description="Bind a non-loopback endpoint without CURVE encryption. Logged loudly at every start.",
    )
    accounts: list[int] = Field(
        default_factory=list,
        description="Logins the bridge serves; a HELLO for any other is refused (FORBIDDEN). Empty = any login.",
    )
    max_charts: int = Field(
        64, ge=1, le=10_000,
        description="Charts served at once; a HELLO beyond it is refused (CAPACITY) until one leaves or goes stale.",
    )
    max_accounts: int = Field(
        8, ge=1, le=1_000,
        description="Accounts served at once; a HELLO for one more is refused (CAPACITY).",
    )
    forget_after_ms: int = Field(
        600_000, ge=1000, le=86_400_000,
        description="A chart silent this long (or gone with BYE) is forgotten, and an account with no chart left; "
        "their state stays in the journal and comes back with the next HELLO.",
    )
    max_time_ahead_ms: int = Field(
        300_000, ge=1000, le=86_400_000,
        description="A TICK dated more than this ahead of both the chart's previous tick and the bridge's own "
        "clock is refused (TIME_AHEAD) and moves no clock.",
    )
    log_refusals_every_s: float = Field(
        10.0, ge=0.1, le=3600.0,
        description="Refused frames are logged at most once per chart and reason in this many seconds, with "
        "how many were refused since; every one is counted.",
    )
    control_token_file: str = Field(
        "",
        description="The operator's control token: made owner-only at the bridge's first start, read by "
        "`mt5bridge status`, `halt` and `resume`, which send it with every request. Empty = `control.token` "
        "in the journal's folder; a relative path is taken from the config file's folder.",
    )
    curve_clients_folder: str = Field(
        "",
        description="Folder of the client public keys (`.key` files, from `mt5bridge keygen --client NAME`) "
        "allowed to connect when CURVE is on; a key's `logins` line limits the accounts it may speak for. "
        "Empty = the folder `clients` beside `curve_secret_key_file`.",
    )

    rules: ClassVar[tuple[Rule, ...]] = (below("heartbeat_ms", "stale_after_ms"),
                                         below("stale_after_ms", "forget_after_ms"))


class Config(BaseModel):
    """Everything the trader sets. ``Config()`` is the FTMO 2-Step challenge."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    account: AccountSettings = Field(default_factory=AccountSettings, description="Product, phase and balance.")
    ftmo: FtmoLimits = Field(default_factory=FtmoLimits, description="FTMO's limits and the margin kept from them.")
    guards: GuardSettings = Field(default_factory=GuardSettings, description="The desk's own, tighter limits.")
    entry: EntrySettings = Field(default_factory=EntrySettings, description="When a position may open.")
    sizing: SizingSettings = Field(default_factory=SizingSettings, description="How big a position is.")
    exits: ExitSettings = Field(default_factory=ExitSettings, description="How a position is protected and closed.")
    dca: DcaSettings = Field(default_factory=DcaSettings, description="Adding to a losing position.")
    scale_in: ScaleInSettings = Field(default_factory=ScaleInSettings, description="Adding to a winning position.")
    funded: FundedSettings = Field(default_factory=FundedSettings, description="Funded-account rules.")
    bridge: BridgeSettings = Field(default_factory=BridgeSettings, description="Sockets, timings, journal.")
    symbols: dict[SymbolName, SymbolSettings] = Field(
        default_factory=default_symbols,
        description="Per-symbol settings, keyed by the symbol's name in MT5. What a file gives is added to the "
        "shipped entries; a symbol not listed is traded with a class guessed from its name.",
    )

    @model_validator(mode="before")
    @classmethod
    def _add_shipped_symbols(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("symbols"), dict):
            given = {name: _fill_from_name(name, entry) for name, entry in data["symbols"].items()}
            data = {**data, "symbols": {**default_symbols(), **given}}
        return data

    @model_validator(mode="after")
    def _check_cross_rules(self, info: ValidationInfo) -> Config:
        if not _skipping_rules(info):
            _raise_violations([v for rule in CROSS_RULES if (v := rule.check(self)) is not None])
        return self


# --- loading -------------------------------------------------------------------------------------------------


def load_config(path: str | Path | None = None) -> Config:
    """The configuration in the TOML file at ``path``; ``None`` gives the defaults (``Config()``).

    A relative ``funded.news_file`` is made absolute against the file's folder. Raises ``ConfigError`` with
    every problem found when the file cannot be read, is not TOML, or holds anything invalid.
    """
    if path is None:
        return Config()
    source = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")  # Notepad may save with a byte-order mark
    except OSError as exc:
        problem = f"cannot read the file: {exc.strerror or exc}"
        raise ConfigError(source, [ConfigIssue(source, "", "", problem)]) from None
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        raise ConfigError(source, [ConfigIssue(source, "", "", problem)]) from None
    cfg = parse_config(text, source)
    news_file = cfg.funded.news_file
    if news_file and not Path(news_file).is_absolute():
        resolved = str(Path(path).resolve().parent / news_file)
        cfg = cfg.model_copy(update={"funded": cfg.funded.model_copy(update={"news_file": resolved})})
    return cfg


def journal_path(cfg: Config, config_path: str | Path | None) -> Path:
    """The journal's file: ``bridge.journal``, a relative path taken from the config file's folder (from the
    working folder when the embedded defaults are used)."""
    path = Path(cfg.bridge.journal)
    if path.is_absolute() or config_path is None:
        return path
    return Path(config_path).resolve().parent / path


def parse_config(text: str, source: str = "<string>") -> Config:
    """The configuration in TOML ``text``; ``source`` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [ConfigIssue(source, "", "", _toml_syntax_problem(exc))]) from None
    return config_from_dict(data, source)


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> Config:
    """The configuration in parsed TOML ``data``."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        errors = [e for e in exc.errors() if e["type"] != "config_rules"]
        issues = [_issue(source, data, error) for error in errors]
        issues += _rule_issues(source, data, {_str_loc(e["loc"]) for e in errors})
        raise ConfigError(source, list(dict.fromkeys(issues))) from None


def _toml_syntax_problem(exc: Exception) -> str:
    message = str(exc)
    where = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", message)
    if where:
        return f"line {where.group(1)}, column {where.group(2)}: invalid TOML: {message[: where.start()]}"
    end = re.search(r"\s*\(at end of document\)\s*$", message)
    if end:
        return f"at the end of the file: invalid TOML: {message[: end.start()]}"
    return f"invalid TOML: {message}"


def _rule_issues(source: str, data: dict[str, Any], bad: set[tuple[str, ...]]) -> list[ConfigIssue]:
    """Every rule between settings that are valid on their own, so a file shows all its problems at once.

    ``bad`` holds the locations of the other errors; a rule reading a setting at, inside or above one of them
    is left for the next run.
    """

    def is_bad(path: tuple[str, ...]) -> bool:
        return any(b[: len(path)] == path or path[: len(b)] == b for b in bad)

    sections: dict[str, Section] = {}
    for name, field in Config.model_fields.items():
        model, raw = field.annotation, data.get(name, {})
        if not (isinstance(model, type) and issubclass(model, Section)) or not isinstance(raw, dict):
            continue
        valid = {k: v for k, v in raw.items() if not is_bad((name, str(k)))}
        try:
            sections[name] = model.model_validate(valid, context=SKIP_RULES)
        except ValidationError:
            continue
    issues = []
    checks = [((name,), rule, section) for name, section in sections.items() for rule in section.rules]
    checks += [((), rule, types.SimpleNamespace(**sections)) for rule in CROSS_RULES]
    for prefix, rule, target in checks:
        paths = [(*prefix, *_path(key)) for key in rule.keys]
        if any(is_bad(p) or p[0] not in sections for p in paths):
            continue
        violation = rule.check(target)
        if violation is not None:
            issues.append(_violation_issue(source, data, prefix, violation))
    return issues


# --- error messages ------------------------------------------------------------------------------------------

_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _issue(source: str, data: dict[str, Any], error: Mapping[str, Any]) -> ConfigIssue:
    """The problem one pydantic error stands for, as the trader reads it."""
    loc = tuple(error["loc"])
    kind = error["type"]
    if loc and loc[-1] == "[key]":
        parent, key = _str_loc(loc[:-2]), str(loc[-2])
        value = _lookup(data, loc[:-1], missing=error.get("input"))
        return ConfigIssue(source, _dotted((*parent, key)), _toml_value(value), _key_problem(parent))
    field_loc, field = _field_at(loc)
    value = _toml_value(_lookup(data, field_loc, missing=error.get("input")))
    key = _dotted(_str_loc(field_loc))
    if kind == "extra_forbidden":
        return ConfigIssue(source, key, value, _unknown_key_problem(_str_loc(field_loc)))
    if field is None:
        return ConfigIssue(source, key, value, str(error.get("msg", "invalid")))
    annotation, metadata, extra = field
    typed = kind not in _RANGE_ERRORS
    problem = "must be " + _allowed(annotation, metadata, extra, typed)
    if kind == "unknown_currency":
        problem += f": {error.get('msg', '')}"   # which code, and the ones news can be matched to
    return ConfigIssue(source, key, value, problem)


def _violation_issue(source: str, data: dict[str, Any], prefix: tuple[str, ...], v: Violation) -> ConfigIssue:
    others = [_dotted((*prefix, *o)) for o in v.others]
    path = (*prefix, *v.key)
    value = _lookup(data, path, missing=v.value)  # as the file wrote it: 40, not 40.0
    return ConfigIssue(source, _dotted(path), _toml_value(value), v.problem.format(*others))


def _str_loc(loc: Iterable[Any]) -> tuple[str, ...]:
    return tuple(str(part) for part in loc)


def _lookup(data: Any, loc: Iterable[Any], missing: Any = None) -> Any:
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return missing
    return data


def _key_problem(parent: tuple[str, ...]) -> str:
    if parent[-1:] == ("correlation",):
        return 'a correlation key names two different symbols as "A/B", such as "EURUSD/GBPUSD"'
    if parent == ("symbols",):
        return "a symbol name has 1 to 32 characters, no spaces, slashes or quotes"
    return "invalid key"


def _unknown_key_problem(loc: tuple[str, ...]) -> str:
    owner = _model_at(loc[:-1])
    if owner is None:
        return "unknown key"
    known = [f.alias or name for name, f in owner.model_fields.items()]
    close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
    if not loc[:-1]:
        hint = f"did you mean [{close[0]}]?" if close else f"the sections are {', '.join(known)}"
        return f"unknown section; {hint}"
    if close:
        return f"unknown key; did you mean {_dotted((*loc[:-1], close[0]))}?"
    return f"unknown key; [{_dotted(loc[:-1])}] has {', '.join(known)}"


def _model_at(loc: tuple[str, ...]) -> Optional[type[BaseModel]]:
    model: Any = Config
    for part in loc:
        if _is_model(model):
            field = _fields_by_key(model).get(part)
            if field is None:
                return None
            model = field.annotation
        elif get_origin(model) is dict:
            model = get_args(model)[1]
        else:
            return None
        model = _unwrap(model)[0]
    return model if _is_model(model) else None


def _field_at(loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], Optional[tuple[Any, list[Any], dict[str, Any]]]]:
    """The part of ``loc`` that names a setting, and that setting's type, constraints and extra schema."""
    model: Any = Config
    leaf: Optional[tuple[Any, list[Any], dict[str, Any]]] = None
    for i, part in enumerate(loc):
        if _is_model(model):
            field = _fields_by_key(model).get(str(part))
            if field is None:
                return loc[: i + 1], None
            annotation, metadata = _unwrap(field.annotation, list(field.metadata))
            leaf = (annotation, metadata, dict(field.json_schema_extra or {}))  # type: ignore[arg-type]
            model = annotation
        elif get_origin(model) is dict and isinstance(part, str):
            annotation, metadata = _unwrap(get_args(model)[1])
            leaf = (annotation, metadata, {})
            model = annotation
        else:
            # a list element, or deeper than any setting: the whole setting is what is wrong
            return loc[:i], leaf
    return loc, leaf


def _fields_by_key(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {(f.alias or name): f for name, f in model.model_fields.items()}


def _unwrap(annotation: Any, metadata: Optional[list[Any]] = None) -> tuple[Any, list[Any]]:
    """Strip Optional and Annotated, collecting constraints on the way."""
    metadata = list(metadata or [])
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation, *extra = get_args(annotation)
            for item in extra:
                metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
        elif origin in (Union, types.UnionType) and type(None) in get_args(annotation):
            rest = [a for a in get_args(annotation) if a is not type(None)]
            annotation = rest[0] if len(rest) == 1 else Union[tuple(rest)]
        else:
            return annotation, metadata


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _choices(annotation: Any) -> Optional[tuple[Any, ...]]:
    return get_args(annotation) if get_origin(annotation) is Literal else None


def _allowed(annotation: Any, metadata: list[Any], extra: dict[str, Any], typed: bool = True) -> str:
    """What a setting accepts, in words: "between 0 and 1", or with ``typed`` "a number between 0 and 1"."""
    if "allowed" in extra:
        return str(extra["allowed"])
    if annotation is bool:
        return "true or false"
    if annotation in (int, float):
        span = _span(metadata)
        noun = "a whole number" if annotation is int else "a number"
        if not typed:
            return span
        return f"{noun} {span}".strip() if span else noun
    choices = _choices(annotation)
    if choices:
        return "one of " + ", ".join(_toml_value(c) for c in choices)
    if get_origin(annotation) is list:
        item, _ = _unwrap(get_args(annotation)[0])
        item_choices = _choices(item)
        what = ", ".join(_toml_value(c) for c in item_choices) if item_choices else "strings"
        least = next((m.min_length for m in metadata if isinstance(m, at.MinLen)), 0)
        return f"{'a non-empty' if least else 'a'} list of distinct values from {what}"
    if _is_model(annotation) or get_origin(annotation) is dict:
        return "a table"
    if annotation is str:
        return "a string"
    return "valid"


def _span(metadata: list[Any]) -> str:
    bounds = {}
    for m in metadata:
        for name in ("ge", "gt", "le", "lt"):
            if isinstance(m, getattr(at, name.capitalize())):
                bounds[name] = getattr(m, name)
    low = ("ge", bounds["ge"]) if "ge" in bounds else ("gt", bounds["gt"]) if "gt" in bounds else None
    high = ("le", bounds["le"]) if "le" in bounds else ("lt", bounds["lt"]) if "lt" in bounds else None
    if low and high:
        if low[0] == "ge" and high[0] == "le":
            return f"between {_num(low[1])} and {_num(high[1])}"
        first = f"at least {_num(low[1])}" if low[0] == "ge" else f"above {_num(low[1])}"
        second = f"at most {_num(high[1])}" if high[0] == "le" else f"below {_num(high[1])}"
        return f"{first} and {second}"
    if low:
        return f"at least {_num(low[1])}" if low[0] == "ge" else f"above {_num(low[1])}"
    if high:
        return f"at most {_num(high[1])}" if high[0] == "le" else f"below {_num(high[1])}"
    return ""


def _num(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


# --- TOML writing --------------------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(part: str) -> str:
    return part if _BARE_KEY.fullmatch(part) else _toml_string(part)


def _dotted(parts: Iterable[str]) -> str:
    return ".".join(_key(str(p)) for p in parts)


def _toml_string(text: str) -> str:
    out = []
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\b\t\n\f\r":
            out.append({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    """``value`` as TOML; also how values are quoted in error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, BaseModel):
        return _toml_value(value.model_dump(by_alias=True))
    return _toml_string(str(value))


def _is_table(value: Any) -> bool:
    return isinstance(value, (BaseModel, dict))


def _table_items(obj: BaseModel | dict[str, Any]) -> Iterator[tuple[str, Any, Optional[FieldInfo]]]:
    if isinstance(obj, BaseModel):
        for name, field in type(obj).model_fields.items():
            yield field.alias or name, getattr(obj, name), field
    else:
        for key, value in obj.items():
            yield str(key), value, None


def _write_table(lines: list[str], path: tuple[str, ...], obj: BaseModel | dict[str, Any]) -> None:
    items = list(_table_items(obj))
    scalars = [(k, v, f) for k, v, f in items if not _is_table(v)]
    tables = [(k, v) for k, v, _ in items if _is_table(v)]
    if path and (scalars or not tables):
        if lines:
            lines.append("")
        lines.append(f"[{_dotted(path)}]")
    for key, value, field in scalars:
        if value is None:
            note = (field.json_schema_extra or {}).get("when_unset", "") if field else ""  # type: ignore[union-attr]
            lines.append(f"# {_key(key)} not set" + (f": {note}" if note else ""))
        else:
            lines.append(f"{_key(key)} = {_toml_value(value)}")
    for key, value in tables:
        _write_table(lines, (*path, key), value)


def effective_toml(cfg: Config) -> str:
    """Every setting of ``cfg`` as TOML, defaults included; ``parse_config`` of it gives ``cfg`` back."""
    lines: list[str] = []
    _write_table(lines, (), cfg)
    return "# mt5bridge: the effective configuration, every key with its value\n\n" + "\n".join(lines) + "\n"


# --- numbers for the compiled engine -------------------------------------------------------------------------

ENGINE_SECTIONS = ("account", "ftmo", "guards", "entry", "sizing", "exits", "dca", "scale_in", "funded")
"""The sections whose numbers ``engine_params`` hands to the compiled engine."""

_TO_MS = {"minutes": 60_000, "hours": 3_600_000}


def _engine_key(name: str) -> tuple[str, int]:
    """``cooldown_minutes`` -> (``cooldown_ms``, 60000); other names unchanged with factor 0."""
    words = name.split("_")
    for unit, factor in _TO_MS.items():
        if unit in words:
            return "_".join(w for w in words if w != unit) + "_ms", factor
    return name, 0


def _engine_values(prefix: str, section: BaseModel) -> Iterator[tuple[str, float | int]]:
    for name, field in type(section).model_fields.items():
        value = getattr(section, name)
        annotation, _ = _unwrap(field.annotation, list(field.metadata))
        key = f"{prefix}.{field.alias or name}"
        extra = dict(field.json_schema_extra or {})  # type: ignore[arg-type]
        if isinstance(value, BaseModel):
            yield from _engine_values(key, value)
        elif isinstance(value, bool):
            yield key, int(value)
        elif isinstance(value, (int, float)):
            renamed, factor = _engine_key(field.alias or name)
            if factor:
                yield f"{prefix}.{renamed}", int(round(value * factor))
            else:
                yield key, value
        elif _choices(annotation):
            yield key, _choices(annotation).index(value)
        elif get_origin(annotation) is list and _choices(_unwrap(get_args(annotation)[0])[0]):
            choices = _choices(_unwrap(get_args(annotation)[0])[0])
            yield f"{key}_mask", sum(1 << choices.index(v) for v in value)
        elif extra.get("time_of_day"):
            hours, minutes = map(int, value.split(":"))
            base = re.sub(r"_utc$", "", field.alias or name)
            yield f"{prefix}.{base}_ms", (hours * 60 + minutes) * 60_000
        # strings (paths, currency) and keyed tables are not engine numbers


def engine_params(cfg: Config) -> dict[str, float | int]:
    """Every number the compiled engine reads, flat, keyed ``"section.key"`` (``"section.table.key"`` for a
    sub-table), for copying into a C struct (the C field is the key with dots as underscores).

    - true/false become 1/0.
    - A choice becomes its index among the choices: ``account.product`` 0 = 2-step, 1 = 1-step;
      ``account.phase`` 0 = challenge, 1 = verification, 2 = funded; ``ftmo.max_loss_mode`` 0 = static,
      1 = eod_trailing; ``sizing.mode`` 0 = full, 1 = plain.
    - A list of choices becomes a bit mask ``*_mask``, bit i set when choice i is listed:
      ``entry.allowed_consensus_mask`` bits UNANIMOUS 1, STRONG 2, WEAK 4, SPLIT 8 (bit i = the engine's
      consensus code i); ``entry.sessions_mask`` bits asia 1, london 2, newyork 4.
    - Minutes and hours become integer milliseconds and lose the unit from the name: ``entry.cooldown_ms``,
      ``guards.circuit_breaker_ms``, ``exits.time_exit_ms``, ``funded.news_before_ms``,
      ``funded.news_after_ms``, ``funded.weekend_flat_ms``.
    - ``funded.friday_close_utc`` becomes ``funded.friday_close_ms``, milliseconds after midnight UTC.
    - Left out: ``account.currency``, ``funded.news_file``, ``[sizing.correlation]`` (see ``correlation``)
      and ``[symbols]`` (see ``symbol_params``).
    """
    params: dict[str, float | int] = {}
    for name in ENGINE_SECTIONS:
        params.update(_engine_values(name, getattr(cfg, name)))
    return params


# --- symbols -------------------------------------------------------------------------------------------------

_warned_guesses: set[str] = set()


def symbol_settings(cfg: Config, name: str) -> SymbolSettings:
    """The settings of the symbol the EA calls ``name``: its own entry, else the entry of its name without a
    broker suffix (``US30.cash`` -> ``US30``), else guessed from the name, with a warning once per name."""
    if name in cfg.symbols:
        return cfg.symbols[name]
    base = name.split(".", 1)[0]
    if base in cfg.symbols:
        return cfg.symbols[base]
    guess = guess_symbol(name)
    if name not in _warned_guesses:
        _warned_guesses.add(name)
        log.warning(
            "%s is not in [symbols]: traded as %s (%s), news currencies %s; add [symbols.%s] to say otherwise",
            name, guess.asset_class, guess.reason, guess.currencies or "none", _key(name),
        )
    return SymbolSettings.model_validate({"class": guess.asset_class, "currencies": guess.currencies})


def symbol_class(cfg: Config, name: str) -> str:
    """Asset class of ``name`` (fx, metals, indices, energies or crypto); see ``symbol_settings``."""
    return symbol_settings(cfg, name).asset_class  # type: ignore[return-value]


def symbol_params(cfg: Config, name: str) -> dict[str, float | int]:
    """The per-symbol numbers the engine reads: ``asset_class`` (index in fx, metals, indices, energies,
    crypto), ``enabled`` (1/0), ``max_spread_points`` (the symbol's own or ``entry.max_spread_points``),
    ``max_lots`` and ``max_notional_pct`` (the class ceilings)."""
    symbol = symbol_settings(cfg, name)
    asset_class = symbol.asset_class or "indices"
    return {
        "asset_class": ASSET_CLASSES.index(asset_class),
        "enabled": int(symbol.enabled),
        "max_spread_points": symbol.max_spread_points or cfg.entry.max_spread_points,
        "max_lots": getattr(cfg.sizing.class_max_lots, asset_class),
        "max_notional_pct": getattr(cfg.sizing.class_max_notional_pct, asset_class),
    }


def correlation(cfg: Config, a: str, b: str) -> float:
    """Correlation of symbols ``a`` and ``b`` from ``[sizing.correlation]``: 1 for the same symbol, 0 for a pair
    not listed. Broker suffixes are ignored (``EURUSD.r`` is ``EURUSD``)."""
    a, b = a.split(".", 1)[0], b.split(".", 1)[0]
    if a == b:
        return 1.0
    wanted = frozenset((a, b))
    for pair, value in cfg.sizing.correlation.items():
        if _pair_key(pair) == wanted:
            return value
    return 0.0


# --- warnings ------------------------------------------------------------------------------------------------

PUBLISHED_DAILY_LOSS_PCT = {"2-step": 5.0, "1-step": 3.0}
PUBLISHED_MAX_LOSS_PCT = 10.0


def config_warnings(cfg: Config) -> list[str]:
    """Settings that are valid but looser than FTMO's published rules: ``check-config`` prints them, ``serve``
    and ``replay`` say them at start."""
    found = []
    published = PUBLISHED_DAILY_LOSS_PCT[cfg.account.product]
    if cfg.ftmo.daily_loss_pct > published:
        found.append(
            f"ftmo.daily_loss_pct = {_toml_value(cfg.ftmo.daily_loss_pct)} is above FTMO's {_num(published)}% "
            f"for the {cfg.account.product} product: the engine would let the account breach"
        )
    if cfg.ftmo.max_loss_pct > PUBLISHED_MAX_LOSS_PCT:
        found.append(
            f"ftmo.max_loss_pct = {_toml_value(cfg.ftmo.max_loss_pct)} is above FTMO's "
            f"{_num(PUBLISHED_MAX_LOSS_PCT)}%: the engine would let the account breach"
        )
    return found


# --- docs/config.md ------------------------------------------------------------------------------------------


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default_text(field: FieldInfo) -> str:
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if value is None:
        return f"left out: {(field.json_schema_extra or {}).get('when_unset', 'not set')}"  # type: ignore[union-attr]
    return f"`{_toml_value(value)}`"


def _field_rows(model: type[BaseModel]) -> list[str]:
    rows = ["| key | default | allowed | meaning |", "| --- | --- | --- | --- |"]
    for name, field in model.model_fields.items():
        annotation, metadata = _unwrap(field.annotation, list(field.metadata))
        if _is_model(annotation) or get_origin(annotation) is dict:
            continue
        allowed = _allowed(annotation, metadata, dict(field.json_schema_extra or {}))  # type: ignore[arg-type]
        if field.default is None and field.default_factory is None:
            allowed += ", or left out"
        meaning = _md(field.description or "")
        rows.append(f"| `{field.alias or name}` | {_default_text(field)} | {_md(allowed)} | {meaning} |")
    return rows


def _doc_model(out: list[str], title: str, model: type[BaseModel], description: str) -> None:
    out += ["", f"## {title}", "", _md(" ".join((model.__doc__ or description).split())), ""]
    out += _field_rows(model)
    rules = [r.text for r in getattr(model, "rules", ())]
    if rules:
        out += ["", "Rules: " + "; ".join(rules) + "."]
    for name, field in model.model_fields.items():
        annotation, _ = _unwrap(field.annotation)
        key = field.alias or name
        if _is_model(annotation):
            _doc_model(out, f"[{title.strip('[]')}.{key}]", annotation, field.description or "")
        elif get_origin(annotation) is dict and not _is_model(_unwrap(get_args(annotation)[1])[0]):
            out += ["", f"## [{title.strip('[]')}.{key}]", "", _md(field.description or "")]
            out += ["", "Shipped:", "", "```toml"]
            lines: list[str] = []
            _write_table(lines, (title.strip("[]"), key), field.default_factory())  # type: ignore[misc,call-arg]
            out += lines + ["```"]


def _flat_settings(obj: BaseModel | dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value, _ in _table_items(obj):
        if _is_table(value):
            flat.update(_flat_settings(value, (*prefix, key)))
        else:
            flat[_dotted((*prefix, key))] = value
    return flat


def _preset_rows(preset_dir: Path) -> list[str]:
    """What each shipped preset changes, read as written (a relative path stays relative)."""
    presets = {}
    for name in PRESETS[1:]:
        path = preset_dir / f"{name}.toml"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the preset is missing; docs/config.md lists every preset")
        presets[name] = _flat_settings(parse_config(path.read_text(encoding="utf-8"), str(path)))
    defaults = _flat_settings(Config())
    changed = [k for k in defaults if any(p.get(k) != defaults[k] for p in presets.values())]
    rows = [
        "| setting | default | " + " | ".join(f"`{n}.toml`" for n in presets) + " |",
        "| --- | --- | " + " | ".join("---" for _ in presets) + " |",
    ]
    for key in changed:
        cells = [f"`{_toml_value(p[key])}`" if p.get(key) != defaults[key] else "" for p in presets.values()]
        rows.append(f"| `{key}` | `{_toml_value(defaults[key])}` | " + " | ".join(cells) + " |")
    return rows


def _engine_rows() -> list[str]:
    doc = (engine_params.__doc__ or "").replace("``", "`")
    intro, _, bullets = doc.partition("\n\n")
    out = [" ".join(intro.split()), ""]
    for line in bullets.strip().splitlines():
        line = line.strip()
        out.append(line if line.startswith("- ") else f"  {line}")
    out += ["", "| key | C type | default |", "| --- | --- | --- |"]
    for key, value in engine_params(Config()).items():
        out.append(f"| `{key}` | {'int64_t' if isinstance(value, int) else 'double'} | {_num(value)} |")
    return out


def render_docs(preset_dir: Path = PRESET_DIR) -> str:
    """docs/config.md; ``preset_dir`` is the checkout's config/ folder (the presets are not installed)."""
    out = [
        "# Configuration",
        "",
        f"<!-- Generated by `{DOCS_COMMAND}` from `mt5bridge/config.py`: change the models, not this page. -->",
        "",
        "Every threshold of the decision engine is set in one TOML file. An empty file is the FTMO 2-Step "
        "challenge; `config/default.toml` lists every key with its default. Check a file before trading it:",
        "",
        "```bash",
        "mt5bridge check-config config/funded_standard.toml",
        "```",
        "",
        "It prints every effective value (defaults filled in) and `OK: <file>`, or every problem at once, one "
        "line each, naming the file, the key, the value and what is allowed, and exits with status 2:",
        "",
        "```text",
        "config/my.toml: entry.min_confidence = 1.4: must be between 0 and 1",
        "config/my.toml: entry.min_confidance = 0.6: unknown key; did you mean entry.min_confidence?",
        "config/my.toml: sizing.base_risk_pct_min = 0.8: must not be above sizing.base_risk_pct_max (0.5)",
        "```",
        "",
        "Unknown keys, wrong types (a number in quotes, `1` for `true`), `nan` and `inf` are refused. Integer "
        "settings take whole numbers only; number settings take `5` as well as `5.0`. `[symbols.NAME]` and "
        "`[sizing.correlation]` add to what ships (an entry of the same name, or the same pair in either order, "
        "replaces the shipped one); every other table has exactly the keys below.",
        "",
        "## Presets",
        "",
        "In `config/`: `default.toml` (2-Step challenge), `verification.toml`, `funded_standard.toml`, "
        "`funded_swing.toml`, `one_step.toml`. A preset sets only what differs from the defaults:",
        "",
        *_preset_rows(preset_dir),
        "",
        "Rules between sections: " + "; ".join(rule.text for rule in CROSS_RULES) + ".",
    ]
    for name, field in Config.model_fields.items():
        annotation, _ = _unwrap(field.annotation)
        if _is_model(annotation):
            _doc_model(out, f"[{name}]", annotation, field.description or "")
        elif get_origin(annotation) is dict:
            entry = _unwrap(get_args(annotation)[1])[0]
            _doc_model(out, f"[{name}.NAME]", entry, field.description or "")
            out += ["", _md(field.description or ""), "", "Shipped:", "", "```toml"]
            lines: list[str] = []
            _write_table(lines, (name,), field.default_factory())  # type: ignore[misc,call-arg]
            out += lines + ["```"]
    out += ["", "## Engine parameters", "", *_engine_rows()]
    return "\n".join(out) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mt5bridge.config", description="Write or check docs/config.md.")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write-docs", action="store_true", help=f"regenerate {DOCS_PATH.relative_to(ROOT)}")
    mode.add_argument("--check-docs", action="store_true", help="exit 1 when the page is stale")
    args = parser.parse_args(argv)
    text = render_docs()
    if args.check_docs:
        current = DOCS_PATH.read_text(encoding="utf-8") if DOCS_PATH.exists() else ""
        if current != text:
            print(f"stale: {DOCS_PATH.relative_to(ROOT)} (run {DOCS_COMMAND})")
            return 1
        return 0
    DOCS_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOCS_PATH.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {DOCS_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
