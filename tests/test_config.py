"""The trader's configuration: presets load, defaults are the 2-Step challenge, every bad value is refused at
start with the file, the key, the value and what is allowed, and the effective values survive a round trip."""

from __future__ import annotations

import argparse
import logging
import math
import re
from typing import get_args

import pytest
from pydantic import BaseModel, ValidationError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from mt5bridge import config as c
from mt5bridge.config import docs as config_docs
from mt5bridge.config import problems, schema
from mt5bridge.cli.check_config import register, run
from mt5bridge.config import (
    Config,
    ConfigError,
    correlation,
    effective_toml,
    engine_params,
    load_config,
    parse_config,
    symbol_class,
    symbol_params,
    symbol_settings,
)

SOURCE = "config/default.toml"


def refused(text: str) -> list[str]:
    """The error lines for TOML ``text``, as if it were config/default.toml."""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, SOURCE)
    assert caught.value.lines == str(caught.value).splitlines()
    return caught.value.lines


def preset_path(repo_root, name: str):
    return repo_root / "config" / f"{name}.toml"


def flat_keys(table: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in table.items():
        if isinstance(value, dict):
            keys |= flat_keys(value, f"{prefix}{key}.")
        else:
            keys.add(f"{prefix}{key}")
    return keys


# --- presets and defaults ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", c.PRESETS)
def test_each_preset_loads_and_round_trips(repo_root, name, tmp_path):
    cfg = load_config(preset_path(repo_root, name))
    text = effective_toml(cfg)
    written = tmp_path / "effective.toml"
    written.write_text(text, encoding="utf-8")
    assert load_config(written) == cfg
    assert parse_config(text) == cfg


def test_empty_file_and_none_are_the_2_step_challenge(repo_root):
    cfg = Config()
    assert parse_config("") == cfg
    assert load_config(None) == cfg
    assert load_config(preset_path(repo_root, "default")) == cfg
    assert (cfg.account.product, cfg.account.phase) == ("2-step", "challenge")
    assert (cfg.ftmo.daily_loss_pct, cfg.ftmo.max_loss_pct, cfg.ftmo.max_loss_mode) == (5.0, 10.0, "static")
    assert (cfg.ftmo.profit_target_pct, cfg.ftmo.min_trading_days) == (10.0, 4)


def test_default_toml_lists_every_key(repo_root):
    written = tomllib.loads(preset_path(repo_root, "default").read_text(encoding="utf-8"))
    effective = tomllib.loads(effective_toml(Config()))
    assert flat_keys(written) == flat_keys(effective)


def test_presets_set_what_their_account_needs(repo_root):
    verification = load_config(preset_path(repo_root, "verification"))
    assert (verification.account.phase, verification.ftmo.profit_target_pct) == ("verification", 5.0)

    standard = load_config(preset_path(repo_root, "funded_standard"))
    assert standard.account.phase == "funded" and standard.ftmo.profit_target_pct == 0
    assert standard.funded.news_blackout and standard.funded.flat_before_weekend
    # the calendar path is relative to the preset, whatever the working directory
    assert standard.funded.news_file == str((repo_root / "config" / "news.csv").resolve())

    swing = load_config(preset_path(repo_root, "funded_swing"))
    assert swing.account.phase == "funded" and swing.ftmo.profit_target_pct == 0
    assert not swing.funded.news_blackout and not swing.funded.flat_before_weekend

    one_step = load_config(preset_path(repo_root, "one_step"))
    assert one_step.account.product == "1-step"
    assert (one_step.ftmo.daily_loss_pct, one_step.ftmo.max_loss_mode) == (3.0, "eod_trailing")
    assert (one_step.ftmo.profit_target_pct, one_step.ftmo.best_day_max_share) == (10.0, 0.5)


@pytest.mark.parametrize("name", c.PRESETS[1:])
def test_presets_say_they_set_only_what_differs(repo_root, name):
    assert "Only what differs from the defaults" in preset_path(repo_root, name).read_text(encoding="utf-8")


def _models(model: type[BaseModel], seen: set) -> list[type[BaseModel]]:
    if model in seen:
        return []
    seen.add(model)
    found = [model]
    for field in model.model_fields.values():
        annotation, _ = problems._unwrap(field.annotation)
        for candidate in (annotation, *getattr(annotation, "__args__", ())):
            candidate, _ = problems._unwrap(candidate)
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                found += _models(candidate, seen)
    return found


@pytest.mark.parametrize("model", _models(Config, set()), ids=lambda m: m.__name__)
def test_every_setting_has_a_description_and_a_default(model):
    assert model.model_config.get("extra") == "forbid"
    assert model.model_config.get("allow_inf_nan") is False
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name} has no description"
        assert not field.is_required(), f"{model.__name__}.{name} has no default"


def test_settings_cannot_change_once_loaded():
    cfg = Config()
    with pytest.raises(ValidationError):
        cfg.ftmo.daily_loss_pct = 8.0  # type: ignore[misc]


# --- rules between settings ----------------------------------------------------------------------------------

RULES = [
    ("[ftmo]\nreduce_at_share = 0.9\nhalt_at_share = 0.9",
     "ftmo.reduce_at_share = 0.9: must be below ftmo.halt_at_share (0.9)"),
    ("[ftmo]\ndaily_loss_pct = 11.0",
     "ftmo.daily_loss_pct = 11.0: must not be above ftmo.max_loss_pct (10.0)"),
    ("[ftmo]\nsafety_buffer_pct = 3\ndaily_loss_pct = 3\n[guards]\ninternal_daily_dd_pct = 2",
     "ftmo.safety_buffer_pct = 3: must be below ftmo.daily_loss_pct (3.0)"),
    ("[guards]\ninternal_weekly_dd_pct = 2.0",
     "guards.internal_daily_dd_pct = 3.0: must not be above guards.internal_weekly_dd_pct (2.0)"),
    ("[entry]\nmin_confidence = 0.9",
     "entry.min_confidence = 0.9: must not be above entry.min_confidence_high_vol (0.8)"),
    ("[sizing]\nbase_risk_pct_min = 0.6",
     "sizing.base_risk_pct_min = 0.6: must not be above sizing.base_risk_pct_max (0.5)"),
    ("[sizing]\nbase_risk_pct_max = 3.0",
     "sizing.base_risk_pct_max = 3.0: must not be above sizing.daily_risk_budget_pct (2.0)"),
    ("[sizing]\nquality_min = 1.1", "sizing.quality_min = 1.1: must not be above sizing.quality_max (1.0)"),
    ("[sizing]\nperf_min = 1.5", "sizing.perf_min = 1.5: must not be above sizing.perf_max (1.3)"),
    ("[sizing]\nholding_bars = 500", "sizing.holding_bars = 500: must be below sizing.cvar_window_bars (500)"),
    ('[sizing.correlation]\n"GBPUSD/USDJPY" = 0.1\n"USDJPY/GBPUSD" = 0.2',
     'sizing.correlation."USDJPY/GBPUSD" = 0.2: repeats sizing.correlation."GBPUSD/USDJPY"'),
    ("[dca]\nadd_min = 0.6", "dca.add_min = 0.6: must not be above dca.add_max (0.5)"),
    ("[scale_in]\nadd_min = 0.75\nadd_max = 0.5", "scale_in.add_min = 0.75: must not be above scale_in.add_max (0.5)"),
    ("[funded]\nnews_blackout = true",
     'funded.news_file = "": must name a news calendar: funded.news_blackout is on'),
    ("[account]\nproduct = \"1-step\"\nphase = \"verification\"\n[ftmo]\nmax_loss_mode = \"eod_trailing\"",
     'account.phase = "verification": the 1-Step product has no verification phase'),
    ("[guards]\ninternal_daily_dd_pct = 5.0",
     "guards.internal_daily_dd_pct = 5.0: must be below ftmo.daily_loss_pct (5.0)"),
    ("[scale_in]\nmin_score = 50", "scale_in.min_score = 50: must not be below entry.min_score (55.0)"),
    ("[account]\nphase = \"funded\"",
     'ftmo.profit_target_pct = 10.0: must be 0: a funded account has no profit target (account.phase is "funded")'),
    ("[account]\nproduct = \"1-step\"",
     'ftmo.max_loss_mode = "static": must be "eod_trailing": the 1-Step max loss trails the end-of-day balance '
     '(account.product is "1-step")'),
]


@pytest.mark.parametrize(("text", "line"), RULES, ids=[line.split(" =")[0] for _, line in RULES])
def test_a_broken_rule_names_both_settings(text, line):
    assert refused(text) == [f"{SOURCE}: {line}"]


@pytest.mark.parametrize(
    "text",
    [
        "[ftmo]\nreduce_at_share = 0.89\nhalt_at_share = 0.9",
        "[sizing]\nbase_risk_pct_min = 0.5\nbase_risk_pct_max = 0.5",
        "[sizing]\nquality_min = 1.0\nperf_min = 1.3",
        "[dca]\nadd_min = 0.5\n[scale_in]\nadd_min = 0.5\nmin_score = 55",
        "[entry]\nmin_confidence = 0.8",
        '[funded]\nnews_blackout = true\nnews_file = "calendar.csv"',
        '[account]\nproduct = "1-step"\n[ftmo]\nmax_loss_mode = "eod_trailing"\ndaily_loss_pct = 3\n'
        "[guards]\ninternal_daily_dd_pct = 2",
        '[account]\nphase = "funded"\n[ftmo]\nprofit_target_pct = 0',
        '[ftmo]\nmax_loss_mode = "eod_trailing"',  # stricter than the 2-Step's static floor: allowed
    ],
)
def test_settings_at_the_edge_of_a_rule_are_accepted(text):
    parse_config(text)


def test_rules_hold_for_models_built_in_python():
    with pytest.raises(ValidationError, match=r"base_risk_pct_min = 1\.0: must not be above base_risk_pct_max"):
        c.SizingSettings(base_risk_pct_min=1.0, base_risk_pct_max=0.5)
    with pytest.raises(ValidationError, match="a funded account has no profit target"):
        Config(account=c.AccountSettings(phase="funded"))


# --- bad values ----------------------------------------------------------------------------------------------


def test_the_message_names_file_key_value_and_range():
    assert refused("[entry]\nmin_confidence = 1.4") == [
        "config/default.toml: entry.min_confidence = 1.4: must be between 0 and 1"
    ]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[entry]\nmin_confidance = 0.6", "entry.min_confidance = 0.6: unknown key; did you mean entry.min_confidence?"),
        ("[sizing.class_max_lots]\ngold = 1.0",
         "sizing.class_max_lots.gold = 1.0: unknown key; [sizing.class_max_lots] has fx, metals, indices, energies, crypto"),
        ("[entries]\nmin_score = 60", "[entries]: unknown section; did you mean [entry]?"),
        ("[symbols.EURUSD]\nspread = 20",
         "symbols.EURUSD.spread = 20: unknown key; [symbols.EURUSD] has class, currencies, max_spread_points, enabled"),
        ('[entry]\nmin_confidence = "0.6"', 'entry.min_confidence = "0.6": must be a number between 0 and 1'),
        ("[ftmo]\nmin_trading_days = 4.5", "ftmo.min_trading_days = 4.5: must be a whole number between 0 and 60"),
        ("[ftmo]\nmin_trading_days = 4.0", "ftmo.min_trading_days = 4.0: must be a whole number between 0 and 60"),
        ("[ftmo]\nstop_at_target = 1", "ftmo.stop_at_target = 1: must be true or false"),
        ("[ftmo]\ndaily_loss_pct = 0", "ftmo.daily_loss_pct = 0: must be above 0 and at most 20"),
        ("[ftmo]\ndaily_loss_pct = nan", "ftmo.daily_loss_pct = nan: must be a number above 0 and at most 20"),
        ("[ftmo]\nmax_loss_pct = inf", "ftmo.max_loss_pct = inf: must be a number above 0 and at most 50"),
        ("[sizing]\ncvar_level = 1.0", "sizing.cvar_level = 1.0: must be at least 0.5 and below 1"),
        ('[ftmo]\nmax_loss_mode = "trailing"', 'ftmo.max_loss_mode = "trailing": must be one of "static", "eod_trailing"'),
        ('[entry]\nsessions = ["london", "tokyo"]',
         'entry.sessions = ["london", "tokyo"]: must be a list of distinct values from "asia", "london", "newyork"'),
        ('[entry]\nsessions = ["london", "london"]',
         'entry.sessions = ["london", "london"]: must be a list of distinct values from "asia", "london", "newyork"'),
        ("[entry]\nallowed_consensus = []",
         'entry.allowed_consensus = []: must be a non-empty list of distinct values from "UNANIMOUS", "STRONG", '
         '"WEAK", "SPLIT"'),
        ('[account]\ncurrency = "usd"', 'account.currency = "usd": must be a three-letter currency code such as "USD"'),
        ('[funded]\nfriday_close_utc = "21:00:00"',
         'funded.friday_close_utc = "21:00:00": must be a time of day "HH:MM" (24-hour)'),
        ('[funded]\nfriday_close_utc = "24:00"',
         'funded.friday_close_utc = "24:00": must be a time of day "HH:MM" (24-hour)'),
        ("entry = 5", "entry = 5: must be a table"),
        ('[symbols.EURUSD]\nclass = "forex"',
         'symbols.EURUSD.class = "forex": must be one of "fx", "metals", "indices", "energies", "crypto"'),
        ('[symbols.EURUSD]\ncurrencies = ["EUR", "usd"]',
         'symbols.EURUSD.currencies = ["EUR", "usd"]: must be a list of three-letter currency codes such as '
         '["EUR", "USD"]'),
        ("[symbols.XAUUSD]\nmax_spread_points = -1",
         "symbols.XAUUSD.max_spread_points = -1: must be above 0 and at most 100000"),
        ('[symbols."EUR USD"]\nclass = "fx"',
         '[symbols."EUR USD"]: a symbol name has 1 to 32 characters, no spaces, slashes or quotes'),
        ("[sizing.correlation]\nEURUSD-GBPUSD = 0.5",
         'sizing.correlation.EURUSD-GBPUSD = 0.5: a correlation key names two different symbols as "A/B", '
         'such as "EURUSD/GBPUSD"'),
        ('[sizing.correlation]\n"EURUSD/EURUSD" = 1.0',
         'sizing.correlation."EURUSD/EURUSD" = 1.0: a correlation key names two different symbols as "A/B", '
         'such as "EURUSD/GBPUSD"'),
        ('[sizing.correlation]\n"EURUSD/AUDUSD" = 1.5', 'sizing.correlation."EURUSD/AUDUSD" = 1.5: must be between -1 and 1'),
    ],
)
def test_a_bad_setting_is_refused_with_what_is_allowed(text, line):
    assert refused(text) == [f"{SOURCE}: {line}"]


def test_every_problem_is_reported_at_once():
    lines = refused(
        "journal = {path = 'x'}\n"
        "[ftmo]\ndaily_loss_pct = 12.0\nhalt_at_share = 0.6\nmin_trading_days = 4.5\n"
        "[entry]\nmin_confidence = 1.4\nmin_confidance = 0.6\nrequire_warm = 1\n"
        "[sizing]\nbase_risk_pct_min = 0.8\nmode = 'fixed'\n"
        "[scale_in]\nmin_score = 40\n"
    )
    expected = [
        "ftmo.min_trading_days = 4.5: must be a whole number between 0 and 60",
        "entry.min_confidence = 1.4: must be between 0 and 1",
        "entry.require_warm = 1: must be true or false",
        "entry.min_confidance = 0.6: unknown key; did you mean entry.min_confidence?",
        'sizing.mode = "fixed": must be one of "full", "plain"',
        "[journal]: unknown section; the sections are account, ftmo, guards, entry, sizing, exits, dca, scale_in,"
        " funded, bridge, recording, symbols",
        # rules between settings that are valid on their own are checked too, even with other errors around
        "ftmo.daily_loss_pct = 12.0: must not be above ftmo.max_loss_pct (10.0)",
        "ftmo.reduce_at_share = 0.7: must be below ftmo.halt_at_share (0.6)",
        "sizing.base_risk_pct_min = 0.8: must not be above sizing.base_risk_pct_max (0.5)",
        # checked although [entry] has errors: none of them is in entry.min_score
        "scale_in.min_score = 40: must not be below entry.min_score (55.0)",
    ]
    assert sorted(lines) == sorted(f"{SOURCE}: {line}" for line in expected)


def test_a_rule_is_not_checked_on_a_setting_that_is_itself_wrong():
    assert refused('[sizing]\nbase_risk_pct_min = "0.8"\nbase_risk_pct_max = 0.3') == [
        f'{SOURCE}: sizing.base_risk_pct_min = "0.8": must be a number above 0 and at most 5'
    ]


def test_numbers_take_integers_but_whole_numbers_refuse_decimals():
    cfg = parse_config("[entry]\nmin_score = 60\nmax_spread_points = 25\n[ftmo]\nmin_trading_days = 5")
    assert cfg.entry.min_score == 60.0 and isinstance(cfg.entry.min_score, float)
    assert cfg.ftmo.min_trading_days == 5 and isinstance(cfg.ftmo.min_trading_days, int)


def test_a_toml_time_is_taken_for_a_time_of_day():
    assert parse_config("[funded]\nfriday_close_utc = 20:30:00").funded.friday_close_utc == "20:30"


# --- files ---------------------------------------------------------------------------------------------------


def test_bad_toml_names_line_and_column(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[entry]\nmin_score = 60\nmin_confidence 0.7\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (line,) = caught.value.lines
    assert line.startswith(f"{path}: line 3, column 16: invalid TOML: ")


def test_an_unreadable_file_is_a_config_error(tmp_path):
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError, match=f"^{re.escape(str(missing))}: cannot read the file: "):
        load_config(missing)
    binary = tmp_path / "latin1.toml"
    binary.write_bytes('[account]\ncurrency = "EUR" # \xe9\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(binary)


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "notepad.toml"
    path.write_bytes("\ufeff[entry]\nmin_score = 60\n".encode("utf-8"))
    assert load_config(path).entry.min_score == 60.0


def test_the_news_file_is_relative_to_the_config_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "funded.toml"
    path.write_text('[funded]\nnews_blackout = true\nnews_file = "calendar/news.csv"\n', encoding="utf-8")
    assert load_config(path).funded.news_file == str(tmp_path.resolve() / "sub" / "calendar" / "news.csv")


# --- named tables add to what ships --------------------------------------------------------------------------


def test_symbols_given_are_added_and_completed_from_the_name():
    cfg = parse_config('[symbols.BTCUSD]\nmax_spread_points = 2000\n[symbols."GER40.cash"]\n[symbols.EURUSD]\nenabled = false')
    assert set(cfg.symbols) == {"EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "US30", "BTCUSD", "GER40.cash"}
    assert (cfg.symbols["BTCUSD"].asset_class, cfg.symbols["BTCUSD"].currencies) == ("crypto", ["USD"])
    assert (cfg.symbols["GER40.cash"].asset_class, cfg.symbols["GER40.cash"].currencies) == ("indices", ["EUR"])
    assert not cfg.symbols["EURUSD"].enabled and cfg.symbols["EURUSD"].currencies == ["EUR", "USD"]
    assert parse_config(effective_toml(cfg)) == cfg


def test_a_correlation_pair_given_replaces_the_shipped_one_in_either_order():
    cfg = parse_config('[sizing.correlation]\n"GBPUSD/EURUSD" = 0.5\n"US30/XAUUSD" = -0.1')
    assert correlation(cfg, "EURUSD", "GBPUSD") == 0.5
    assert correlation(cfg, "XAUUSD.r", "US30.cash") == -0.1
    assert correlation(cfg, "XAUUSD", "XAGUSD") == 0.8  # shipped pair kept
    assert correlation(cfg, "EURUSD", "EURUSD") == 1.0
    assert correlation(cfg, "EURUSD", "US30") == 0.0
    assert "EURUSD/GBPUSD" not in cfg.sizing.correlation


@pytest.mark.parametrize(
    ("name", "asset_class", "currencies"),
    [
        ("AUDUSD", "fx", ["AUD", "USD"]),
        ("eurchf.r", "fx", ["EUR", "CHF"]),
        ("XAGUSD", "metals", ["USD"]),
        ("ETHUSD", "crypto", ["USD"]),
        ("USOIL.cash", "energies", ["USD"]),
        ("UK100.cash", "indices", ["GBP"]),
        ("COCOA", "indices", []),
    ],
)
def test_an_unlisted_symbol_is_guessed_from_its_name_and_said_so(name, asset_class, currencies, caplog):
    schema._warned_guesses.discard(name)
    cfg = Config()
    with caplog.at_level(logging.WARNING, logger="mt5bridge.config"):
        assert symbol_class(cfg, name) == asset_class
        assert symbol_settings(cfg, name).currencies == currencies
    warnings = [r.getMessage() for r in caplog.records if name in r.getMessage()]
    assert len(warnings) == 1 and f"traded as {asset_class}" in warnings[0]


def test_a_listed_symbol_and_its_broker_suffix_use_its_entry(caplog):
    cfg = Config()
    with caplog.at_level(logging.WARNING, logger="mt5bridge.config"):
        assert symbol_class(cfg, "XAUUSD") == "metals"
        assert symbol_class(cfg, "US30.cash") == "indices"
    assert not caplog.records
    assert symbol_params(cfg, "US30.cash") == {
        "asset_class": 2, "enabled": 1, "max_spread_points": 300.0, "max_lots": 10.0, "max_notional_pct": 200.0,
    }
    assert symbol_params(cfg, "EURUSD")["max_spread_points"] == cfg.entry.max_spread_points


# --- effective values and engine numbers ---------------------------------------------------------------------


def test_effective_toml_writes_awkward_strings_and_names_back_exactly():
    cfg = parse_config(
        '[funded]\nnews_blackout = true\nnews_file = \'C:\\Users\\trader\\"FTMO" calendar\\n\u00e9ws.csv\'\n'
        '[symbols."US30.cash"]\nclass = "indices"\ncurrencies = []\n'
    )
    assert parse_config(effective_toml(cfg)) == cfg
    assert '[symbols."US30.cash"]' in effective_toml(cfg)


def test_engine_params_is_flat_and_numeric(repo_root):
    params = engine_params(Config())
    assert params and all(type(v) in (int, float) and math.isfinite(v) for v in params.values())
    assert all(k.count(".") in (1, 2) for k in params)
    assert not [k for k in params if "minutes" in k or "hours" in k or k.endswith("_utc")]
    assert params["ftmo.daily_loss_pct"] == 5.0
    assert params["guards.circuit_breaker_ms"] == 4 * 3_600_000
    assert params["entry.cooldown_ms"] == 15 * 60_000
    assert params["exits.time_exit_ms"] == 24 * 3_600_000
    assert (params["funded.news_before_ms"], params["funded.news_after_ms"]) == (120_000, 120_000)
    assert params["funded.weekend_flat_ms"] == 30 * 60_000
    assert params["funded.friday_close_ms"] == 21 * 3_600_000
    assert params["entry.allowed_consensus_mask"] == 0b0011
    assert params["entry.sessions_mask"] == 0b110
    assert params["ftmo.stop_at_target"] == 1 and type(params["ftmo.stop_at_target"]) is int
    assert params["sizing.class_max_lots.crypto"] == 1.0
    assert (params["account.product"], params["account.phase"], params["ftmo.max_loss_mode"]) == (0, 0, 0)

    one_step = engine_params(load_config(preset_path(repo_root, "one_step")))
    assert (one_step["account.product"], one_step["ftmo.max_loss_mode"]) == (1, 1)
    funded = engine_params(load_config(preset_path(repo_root, "funded_standard")))
    assert (funded["account.phase"], funded["funded.news_blackout"]) == (2, 1)
    # the same keys, with the same number types, whatever the preset: a fixed C struct
    assert {k: type(v) for k, v in one_step.items()} == {k: type(v) for k, v in params.items()}


def test_consensus_mask_bits_are_the_engines_consensus_codes():
    engine = pytest.importorskip("mt5bridge.core._engine")
    names = list(engine.CONSENSUS_NAMES)
    for i, name in enumerate(get_args(c.Consensus)):
        assert names.index(name) == i


# --- check-config --------------------------------------------------------------------------------------------


def check_config(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="mt5bridge")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["check-config", *argv])
    assert args.func is run
    return args.func(args)


def test_check_config_prints_effective_values_and_ok(repo_root, capsys):
    path = str(preset_path(repo_root, "one_step"))
    assert check_config(path) == 0
    out, err = capsys.readouterr()
    assert parse_config(out) == load_config(path)
    assert err.strip().splitlines()[-1] == f"OK: {path}"
    # Where the floors come from is said before any account is seen.
    assert "initial balance from the EA at HELLO" in err and "first deposit" in err


def test_check_config_says_a_configured_initial_balance_is_used(tmp_path, capsys):
    path = tmp_path / "funded.toml"
    path.write_text("[account]\ninitial_balance = 100000.0\n", encoding="utf-8")
    assert check_config(str(path)) == 0
    assert "initial balance 100,000.00 from this file" in capsys.readouterr().err


def test_check_config_reads_the_shipped_news_calendar(repo_root, capsys):
    path = str(preset_path(repo_root, "funded_standard"))
    assert check_config(path) == 0
    err = capsys.readouterr().err
    assert "news calendar:" in err and f"OK: {path}" in err


def test_check_config_fails_on_a_missing_news_calendar(repo_root, tmp_path, capsys):
    path = tmp_path / "funded.toml"
    path.write_text(preset_path(repo_root, "funded_standard").read_text(encoding="utf-8"), encoding="utf-8")
    assert check_config(str(path)) == 2
    err = capsys.readouterr().err
    assert "funded.news_file" in err and "cannot read the news calendar" in err


def test_check_config_lists_every_problem_and_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[entry]\nmin_confidence = 1.4\nmin_score = -1\n", encoding="utf-8")
    assert check_config(str(path)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{path}: entry.min_confidence = 1.4: must be between 0 and 1" in err
    assert f"{path}: entry.min_score = -1: must be between 0 and 100" in err
    assert "2 problems" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "cannot read the file"), ("[entry\n", "line 1, column 7: invalid TOML")],
    ids=["missing", "syntax"],
)
def test_check_config_refuses_unreadable_and_broken_files(tmp_path, capsys, content, expected):
    path = tmp_path / "config.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert check_config(str(path)) == 2
    out, err = capsys.readouterr()
    assert out == "" and expected in err and "Traceback" not in err


# --- docs/config.md ------------------------------------------------------------------------------------------


def test_docs_are_current(repo_root):
    # The checkout's file: the package under test may be installed elsewhere than the repository.
    docs = repo_root / "docs" / "config.md"
    assert docs.exists(), f"docs/config.md is missing: run {config_docs.DOCS_COMMAND}"
    rendered = config_docs.render_docs(repo_root / "config")
    assert docs.read_text(encoding="utf-8") == rendered, f"docs/config.md is stale: run {config_docs.DOCS_COMMAND}"


def test_docs_cover_every_setting(repo_root):
    text = config_docs.render_docs(repo_root / "config")
    assert "\r" not in text and text == config_docs.render_docs(repo_root / "config")
    for key in flat_keys(tomllib.loads(effective_toml(Config()))):
        section, _, name = key.rpartition(".")
        if section.startswith(("symbols.", "sizing.correlation")):
            continue
        assert f"## [{section}]" in text and f"| `{name}` |" in text, key


def test_a_currency_news_cannot_be_matched_to_is_refused_not_dropped(tmp_path):
    # Before, an unknown code became no news bit at all: the symbol traded through its news unseen.
    path = tmp_path / "inr.toml"
    path.write_text('[symbols.USDINR]\ncurrencies = ["USD", "INR"]\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "symbols.USDINR.currencies" in str(err.value) and "'INR' is not a currency news can be matched to" in str(
        err.value)
    from mt5bridge.core.decision import currency_mask

    with pytest.raises(ValueError, match="'INR' has no news bit"):
        currency_mask(["USD", "INR"])
    assert currency_mask(["USD", "EUR"]) == 0b11
