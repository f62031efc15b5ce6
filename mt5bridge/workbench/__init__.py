"""The trader's workbench: replay history through the engine, sweep thresholds, train the model, report.

Imports the simulator, the market, core, config and common; never a command.
"""
