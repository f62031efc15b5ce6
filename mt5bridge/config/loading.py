"""Reading a configuration: a TOML file (or text, or a dict) into a checked Config, every problem at once;
and the warnings for settings that are valid but looser than FTMO's published rules.
"""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

from pydantic import ValidationError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from mt5bridge.config.problems import _issue, _num, _str_loc, _violation_issue
from mt5bridge.config.schema import CROSS_RULES, SKIP_RULES, Config, Section, _path
from mt5bridge.config.wording import ConfigError, ConfigIssue, _toml_value

# The presets ship in the source tree's config/ folder (beside the package), for docs and tests.
PRESET_DIR = Path(__file__).resolve().parents[2] / "config"
PRESETS = ("default", "verification", "funded_standard", "funded_swing", "one_step")

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


