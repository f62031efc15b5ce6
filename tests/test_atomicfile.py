"""A report, export or model file appears whole or not at all: a failure half-way leaves the old file."""

from __future__ import annotations

import pytest

from mt5bridge.common.atomicfile import replaced_when_complete, write_text


def test_a_failure_half_way_leaves_the_old_file_and_no_part_file(tmp_path):
    target = tmp_path / "report.json"
    write_text(target, "old report\n")
    with pytest.raises(RuntimeError), replaced_when_complete(target) as fh:
        fh.write("half of a new rep")
        raise RuntimeError("disk full")
    assert target.read_text() == "old report\n"
    assert list(tmp_path.iterdir()) == [target]


def test_a_complete_write_replaces_the_file(tmp_path):
    target = tmp_path / "trades.csv"
    write_text(target, "old\n")
    with replaced_when_complete(target, newline="") as fh:
        fh.write("a,b\r\n1,2\r\n")
    assert target.read_bytes() == b"a,b\r\n1,2\r\n"
    assert list(tmp_path.iterdir()) == [target]
