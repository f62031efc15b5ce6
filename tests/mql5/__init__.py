"""Checks that stand in for MetaEditor: the EA's sources are parsed, compiled against stub headers and compared
with the wire protocol here, where MQL5 cannot be compiled. See tests/test_mql5.py."""
