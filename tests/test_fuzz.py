"""Hostile frames against the bridge."""

from __future__ import annotations

import json
import logging

import pytest

from mt5bridge import protocol as wire
from mt5bridge.config import Config
from mt5bridge.journal import Journal
from mt5bridge.node import Node, RefusalLog


# --- the log of refusals ---------------------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def node_with_log(tmp_path, caplog):
    clock = Clock()
    journal = Journal(tmp_path / "journal.sqlite")
    cfg = Config.model_validate({"bridge": {"journal": str(tmp_path / "journal.sqlite"), "log_refusals_every_s": 10}})
    node = Node(cfg, journal, clock=clock)
    caplog.set_level(logging.WARNING, logger="mt5bridge.node")
    yield node, clock, caplog
    node.close()
    journal.close()


def _refusal_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]


def test_a_flood_of_bad_frames_is_logged_once_per_chart_and_reason_per_interval(node_with_log):
    node, clock, caplog = node_with_log
    bad_json, bad_tick = b'{"type":"TICK"', json.dumps(dict(wire.Tick.example, bid=-1.0)).encode()
    for _ in range(5000):
        for identity in (b"chart-a", b"chart-b"):
            node.handle(identity, bad_json)
            node.handle(identity, bad_tick)
        clock.now += 0.001             # 5000 rounds in 5 s: all within one interval
    lines = _refusal_lines(caplog)
    assert len(lines) == 4, lines      # each chart's first MALFORMED_JSON and first INVALID_VALUE
    assert sum(node.errors.values()) == 20_000 and node.errors["MALFORMED_JSON"] == 10_000
    clock.now += 10
    caplog.clear()
    node.handle(b"chart-a", bad_json)
    assert _refusal_lines(caplog) == [
        "refused a frame from chart-a: MALFORMED_JSON: not valid JSON: EOF while parsing an object at line 1 column 14 "
        "(4999 more refused for MALFORMED_JSON since this chart's last line)",
        "refused 14997 more frames since the last lines of their charts and reasons, or from charts past the 1024 "
        "followed one by one"]
    caplog.clear()
    node.handle(b"chart-a", bad_json)
    assert _refusal_lines(caplog) == []


def test_a_sender_changing_its_identity_with_every_frame_cannot_fill_the_log(node_with_log):
    node, clock, caplog = node_with_log
    for n in range(20_000):
        node.handle(b"x%d" % n, b"[]")
        clock.now += 0.0001            # 2 s
    lines = _refusal_lines(caplog)
    assert len(lines) == RefusalLog(10).max_pairs    # one line for each remembered pair, no more
    clock.now += 10
    caplog.clear()
    node.handle(b"late", b"[]")
    late, summary = _refusal_lines(caplog)
    assert late.startswith("refused a frame from late: NOT_AN_OBJECT")
    assert summary.startswith("refused 18976 more frames since the last lines")
    assert len(node.refusals.pairs) == 1                # the rest forgotten: memory bounded too
    assert node.errors["NOT_AN_OBJECT"] == 20_001


def test_a_refusal_line_cannot_forge_another_line_or_reach_the_terminal(node_with_log):
    node, clock, caplog = node_with_log
    forged = "\n2026-07-06 12:00:00 CRITICAL mt5bridge.node: account 1 HALTED\x1b[2J\u2028"
    node.handle(("chart" + forged).encode(), json.dumps(dict(wire.Tick.example, **{"x" + forged: 1})).encode())
    [line] = _refusal_lines(caplog)
    assert line.isprintable(), line
    assert "\\n2026-07-06" in line and "\\x1b[2J" in line
