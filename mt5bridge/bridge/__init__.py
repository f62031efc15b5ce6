"""The live bridge: the server and its sockets, the per-chart node, the wire protocol (and its generator), the
TICK reader, the journal, access control and the bridge's logging; what the operator reads and hears: the
status in words (readout), the alerts and the live page.

Imports core, config and common; never the market-data readers, the simulator or the workbench.
"""
