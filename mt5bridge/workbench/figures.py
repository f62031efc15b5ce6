"""The figures a sweep ranks and filters runs by, each read from a replay's report by name.

An objective is one figure; a constraint bounds one figure (``min_trades``, ``max_daily_loss_pct``). Both only
name figures from ``FIGURES``, so a new figure becomes an objective and a constraint by adding one entry here.
Each figure is computed in the process that ran the replay, from its report (``workbench.report.build_report``),
and stored with the run.

``p_pass``, ``p_daily_breach`` and ``p_max_breach`` are the odds of passing and of each breach, from the report's
Monte Carlo over the run's days (``workbench.odds``), drawn with ``SWEEP_ODDS_PATHS`` paths so that they cost a
sweep little beside the replay itself (their confidence interval is about ±1 percentage point at worst).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SWEEP_ODDS_PATHS = 2_000
"""Monte Carlo paths of the odds a sweep stores with each run (a replay's own report draws 10,000)."""


def _odds(report: dict, key: str) -> Any:
    odds = report.get("odds")
    return None if odds is None else odds.get(key)


@dataclass(frozen=True)
class Figure:
    name: str
    larger_is_better: bool
    meaning: str
    read: Callable[[dict], Any] | None   # report -> value (None: no value); None: not in this installation
    unavailable: str = ""


FIGURES: dict[str, Figure] = {f.name: f for f in (
    Figure("net_profit", True, "closed profit, account currency", lambda r: r["net_profit"]),
    Figure("trades", True, "closed trades", lambda r: r["trades"]),
    Figure("win_rate", True, "share of trades that made money (0-1)", lambda r: r["win_rate"]),
    Figure("profit_factor", True, "gross profit / gross loss (no value without a losing trade)",
           lambda r: r["profit_factor"]),
    Figure("avg_r", True, "average trade in R (multiples of the risk taken)", lambda r: r["avg_r"]),
    Figure("sharpe", True, "annualised Sharpe ratio of daily returns", lambda r: r["sharpe"]),
    Figure("max_drawdown_pct", False, "deepest fall of equity from its peak, % of the peak",
           lambda r: r["max_drawdown_pct"]),
    Figure("max_daily_loss_pct", False, "worst day's loss by FTMO's rule, % of the initial balance",
           lambda r: r["ftmo"]["max_daily_loss_pct"]),
    Figure("max_overall_loss_pct", False, "deepest loss below the initial balance, % of it",
           lambda r: r["ftmo"]["max_overall_loss_pct"]),
    Figure("trading_days", True, "Prague days with a position opened", lambda r: r["ftmo"]["trading_days"]),
    Figure("passed", True, "every FTMO objective met (1) or not (0)", lambda r: r["ftmo"]["passed"]),
    Figure("breaches", False, "FTMO loss-limit breaches", lambda r: len(r["ftmo"]["breaches"])),
    # The odds of passing (workbench.odds): a Monte Carlo of the run's days, drawn with SWEEP_ODDS_PATHS paths.
    Figure("p_pass", True, "odds of passing the challenge (0-1), Monte Carlo over the run's days",
           lambda r: _odds(r, "p_pass")),
    Figure("p_daily_breach", False, "odds of breaching the daily loss limit (0-1), Monte Carlo over the run's days",
           lambda r: _odds(r, "p_daily_breach")),
    Figure("p_max_breach", False, "odds of breaching the maximum loss (0-1), Monte Carlo over the run's days",
           lambda r: _odds(r, "p_max_breach")),
)}

# Columns of the results file, in order: every figure, as FIGURES lists them.
METRICS = tuple(FIGURES)
# The worst values already named as maxima: their own name is an upper bound in [constraints].
_ALREADY_MAXIMA = {"max_drawdown_pct", "max_daily_loss_pct", "max_overall_loss_pct"}


class FigureError(ValueError):
    """A figure that does not exist or is not available here."""


def figure(name: str, where: str) -> Figure:
    """The figure called ``name``, or a clear refusal naming ``where`` it was asked for."""
    found = FIGURES.get(name)
    if found is None:
        import difflib

        hint = difflib.get_close_matches(name, list(FIGURES), n=1)
        raise FigureError(f"{where}: no such figure {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                          + f"; figures: {', '.join(FIGURES)}")
    if found.read is None:
        raise FigureError(f"{where}: {name!r} is not available: {found.unavailable}")
    return found


def figures_of(report: dict) -> dict[str, Any]:
    """Every available figure of one run's report."""
    return {f.name: f.read(report) for f in FIGURES.values() if f.read is not None}


def available() -> list[str]:
    return [f.name for f in FIGURES.values() if f.read is not None]


@dataclass(frozen=True)
class Constraint:
    """A bound on one figure: ``value >= bound`` (at_least) or ``value <= bound``."""

    key: str
    figure: str
    bound: float
    at_least: bool

    def shortfall(self, value: Any) -> float:
        """How far ``value`` is on the wrong side of the bound (> 0: broken; no value counts as broken)."""
        if value is None:
            return 1.0 + abs(self.bound)
        value = float(value)
        return self.bound - value if self.at_least else value - self.bound

    def describe(self, value: Any) -> str:
        sign = ">=" if self.at_least else "<="
        shown = "no value" if value is None else f"{value:g}" if isinstance(value, (int, float)) else str(value)
        return f"{self.figure} {shown}, needs {sign} {self.bound:g}"


def constraint(key: str, bound: Any, where: str) -> Constraint:
    """``min_NAME`` / ``max_NAME`` for any figure; the figures that are already a maximum take their own name
    (``max_daily_loss_pct = 4`` caps the worst day's loss at 4 %)."""
    if isinstance(bound, bool) or not isinstance(bound, (int, float)):
        raise FigureError(f"{where}.{key} = {bound!r}: must be a number")
    if key in _ALREADY_MAXIMA:
        name, at_least = key, False
    elif key.startswith("min_"):
        name, at_least = key[4:], True
    elif key.startswith("max_"):
        name, at_least = key[4:], False
    else:
        raise FigureError(f"{where}.{key}: a constraint is min_FIGURE or max_FIGURE (min_trades, max_drawdown_pct,"
                          f" min_p_pass ...); figures: {', '.join(FIGURES)}")
    figure(name, f"{where}.{key}")
    return Constraint(key, name, float(bound), at_least)


__all__ = ["FIGURES", "METRICS", "Constraint", "Figure", "FigureError", "available", "constraint", "figure",
           "figures_of"]
