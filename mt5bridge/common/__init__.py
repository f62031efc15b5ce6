"""What every room uses and none owns: atomic file writes and the currency codes.

The bottom of the house: imports nothing from mt5bridge.
"""
