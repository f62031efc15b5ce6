"""The configuration's schema: every section and setting with its default, range and meaning, the rules
between settings, and how a symbol's settings are found or guessed.
"""

from __future__ import annotations

import datetime as _dt
import logging
import operator
import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, Optional, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

from mt5bridge.common.currencies import CURRENCIES, CURRENCY_CODES
from mt5bridge.config.wording import _dotted, _key, _toml_value

log = logging.getLogger(__name__)

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


class RecordingSettings(Section):
    """What the bridge keeps of every account's session so `mt5bridge replay --recorded DAY` can run it again
    through the engine and compare it, decision by decision, with what was sent live: every frame the EAs sent
    (HELLO, WARMUP, TICK, RESULT, DEAL, ...), compressed, one file per account and UTC day."""

    enabled: bool = Field(True, description="Record every account's frames for `replay --recorded`.")
    folder: str = Field(
        "",
        description="Where the recordings go (a folder per account, a file per UTC day). Empty = `recordings` "
        "in the journal's folder; a relative path is taken from the config file's folder.",
    )
    max_mb: int = Field(
        2048, ge=1, le=10_000_000,
        description="Most disk the recordings may take, MB; the oldest days are deleted first to stay under it.",
    )
    flush_every_s: float = Field(
        2.0, ge=0.1, le=60.0,
        description="How often what was recorded is compressed and written (and at BYE and shutdown); a "
        "killed bridge loses at most this much of its recording.",
    )


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
    recording: RecordingSettings = Field(default_factory=RecordingSettings,
                                         description="The sessions kept for `replay --recorded`.")
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


