"""Market data: the readers of MT5 exports and plain CSVs, symbol specifications, the news calendar and the
synthetic market.

Imports core, config and common; never the bridge.
"""
