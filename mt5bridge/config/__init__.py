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
``config_warnings``. The rooms: ``schema`` (sections and rules), ``loading``, ``problems`` (the wording of each error),
``wording`` (the error type, values quoted as TOML), ``writer`` (the effective TOML), ``params`` (the numbers the
compiled engine reads), ``docs``. ``docs/config.md`` is generated from the models: ``python -m mt5bridge.config
--write-docs`` (``--check-docs`` exits 1 when it is stale).

Adding a section: subclass ``Section`` (``extra="forbid"`` and the other checks come with it), give every
field a default and a description, add it to ``Config`` as ``name: MySection = Field(default_factory=...,
description=...)``, list its keys in ``config/default.toml``, and add its name to ``ENGINE_SECTIONS`` only
if the compiled engine reads it. Errors, the effective TOML and the docs pick it up by themselves.
"""


from mt5bridge.config.loading import (  # noqa: F401  (the public API)
    PRESET_DIR,
    PRESETS,
    config_from_dict,
    config_warnings,
    journal_path,
    load_config,
    parse_config,
)
from mt5bridge.config.params import ENGINE_SECTIONS, engine_params, symbol_params  # noqa: F401
from mt5bridge.config.schema import (  # noqa: F401
    ASSET_CLASSES,
    AccountSettings,
    BridgeSettings,
    Config,
    Consensus,
    Section,
    SizingSettings,
    SymbolSettings,
    correlation,
    guess_symbol,
    symbol_class,
    symbol_settings,
)
from mt5bridge.config.wording import ConfigError, ConfigIssue  # noqa: F401
from mt5bridge.config.writer import effective_toml  # noqa: F401
