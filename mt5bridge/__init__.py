"""mt5bridge: trade an FTMO MetaTrader 5 account from a compiled Python decision engine."""

__version__ = "0.1.0"
