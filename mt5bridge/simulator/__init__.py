"""A simulated MetaTrader 5 terminal: the EA's side of the wire protocol, over a simulated hedging account.

Used by the integration tests against a real ``mt5bridge serve`` process and by ``mt5bridge demo``, so the
bridge can be exercised end to end on a machine without MetaTrader. What is simulated and what is not:
``docs/simulator.md``.

Three pieces, one module and one idea each (broker, chart, terminal):

- :class:`SimulatedBroker` is the trade server of one account: quotes, positions, fills, stops and targets,
  balance, equity and margin, and the deals all of it produces. It knows nothing about sockets.
- :class:`SimulatedChart` is one chart's EA: its own DEALER socket and ``seq`` counter, the HELLO/WELCOME
  handshake, WARMUP chunks, TICKs in lock-step with a deadline, RESULT, DEAL, HEARTBEAT and BYE.
- :class:`SimulatedTerminal` runs the charts of one account over a market (synthetic or from a file), one
  tick at a time in time order across symbols, and counts what happened in a :class:`SimulationReport`.

Every message is built through the models of :mod:`mt5bridge.bridge.protocol`, so a frame the simulator sends is
one the protocol accepts.

A bridge that goes away and comes back (a restart, a crash) is met as the EA meets it: a chart told
NOT_INTRODUCED, or that has heard nothing for WELCOME's ``failsafe_silence_ms``, drops its socket and introduces
itself again on a new one (the ZeroMQ guide's "Lazy Pirate"), with a back-off between attempts, then sends its
warm-up bars again up to the present; sends only reach a live connection (ZMQ_IMMEDIATE, as the EA sets it), and
RESULTs and DEALs that could not be sent wait for the next WELCOME. The EA's FAILSAFE messages about the silence
are not simulated.
"""


from mt5bridge.simulator.broker import (  # noqa: F401  (the simulator's public names)
    COMMENT_PREFIX,
    DEFAULT_LOGIN,
    DEFAULT_MAGIC,
    DEFAULT_START,
    MS_PER_DAY,
    MS_PER_MINUTE,
    RETCODE_CONNECTION,
    RETCODE_DONE,
    RETCODE_DONE_PARTIAL,
    RETCODE_FROZEN,
    RETCODE_INVALID,
    RETCODE_INVALID_STOPS,
    RETCODE_INVALID_VOLUME,
    RETCODE_MARKET_CLOSED,
    RETCODE_NAMES,
    RETCODE_NO_CHANGES,
    RETCODE_NO_MONEY,
    RETCODE_PLACED,
    RETCODE_POSITION_CLOSED,
    RETCODE_REJECT,
    RETCODE_TIMEOUT,
    RETCODE_TOO_MANY_REQUESTS,
    TIMEFRAMES_S,
    DealRecord,
    Execution,
    OpenPosition,
    Side,
    SimulatedBroker,
    SimulatorError,
    SymbolSpec,
    price_digits,
    result_outcome,
    symbol_spec,
    synthetic_spec,
)
from mt5bridge.simulator.chart import (  # noqa: F401
    BridgeRefused,
    BridgeUnreachable,
    ChartStats,
    SimulatedChart,
    WarmupBars,
    build_warmup_bars,
)
from mt5bridge.simulator.terminal import (  # noqa: F401
    SimulatedTerminal,
    SimulationReport,
    TickOutcome,
    synthetic_seed,
)
