"""The MetaTrader5-package side: the running terminal, its history and the reconciliation of a journal with it.

Imports the bridge (the journal), the market, core, config and common.
"""
