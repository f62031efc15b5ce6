"""The Python faces of the compiled engine (built from ext/): the feature catalog, the model file, the reason
codes, the settlement rule and the engine and decision wrappers.

Imports only config and common: no sockets, no market files, no journal.
"""
