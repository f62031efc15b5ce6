"""A symbol's history taken from the terminal and written for the workbench: the plain CSV the market-data
readers read, the typical spread to replay it with, the Prague day and the US clock changes a server's offset
follows."""

from __future__ import annotations

import numpy as np

from mt5bridge.common.atomicfile import replaced_when_complete
from mt5bridge.market.readers import Bars, Ticks


def prague_midnight_utc_ms(utc_ms: int) -> int:
    """The UTC time of the midnight that started the Prague day ``utc_ms`` falls in: the FTMO day, by the
    engine's own EU summer-time rule (no tz database needed, which Windows lacks). Midnight never falls in a
    change, so the offset an hour before the local midnight is that midnight's."""
    from mt5bridge.core._engine import prague_offset_minutes

    local = utc_ms + prague_offset_minutes(utc_ms) * 60_000
    midnight_local = local - local % 86_400_000
    return midnight_local - prague_offset_minutes(midnight_local - 3_600_000) * 60_000



def crosses_us_clock_change(start_ms: int, end_ms: int) -> bool:
    from mt5bridge.core._engine import new_york_offset_minutes

    # New York's offset looked at once a day and at the end: the changes are months apart, so none is missed.
    first = new_york_offset_minutes(start_ms)
    return any(new_york_offset_minutes(t) != first for t in (*range(start_ms, end_ms, 86_400_000), end_ms))


def typical_spread(data: Ticks | Bars, spec: dict) -> float:
    """The median spread of the exported data in points (to 0.1), else the terminal's current one."""
    if isinstance(data, Ticks):
        spreads = (data.ask - data.bid) / spec["point"]
    else:
        spreads = np.asarray(data.spread_points, dtype=float)
    spreads = spreads[np.isfinite(spreads) & (spreads >= 0)]
    if spreads.size == 0 or (isinstance(data, Bars) and not spreads.any()):
        return float(spec["spread"])
    return round(float(np.median(spreads)), 1)


def write_csv(path: str, data: Ticks | Bars, digits: int) -> None:
    """The plain CSV ``read_market_file`` reads, times in UTC, prices with the symbol's digits; written beside
    the target and renamed, so a half-written file never stands under its name."""
    with replaced_when_complete(path) as fh:
        if isinstance(data, Ticks):
            fh.write("time,bid,ask,volume\n")
            stamps = np.datetime_as_string(data.times_ms.astype("datetime64[ms]"), unit="ms")
            row = f"%s,%.{digits}f,%.{digits}f,%.10g\n"
            columns = (data.bid.tolist(), data.ask.tolist(), data.volume.tolist())
        else:
            fh.write("time,open,high,low,close,volume,spread\n")
            stamps = np.datetime_as_string(data.times_ms.astype("datetime64[ms]"), unit="m")
            row = f"%s,%.{digits}f,%.{digits}f,%.{digits}f,%.{digits}f,%.10g,%.10g\n"
            columns = (data.open.tolist(), data.high.tolist(), data.low.tolist(), data.close.tolist(),
                       data.volume.tolist(), np.asarray(data.spread_points, dtype=float).tolist())
        chunk = 200_000
        for start in range(0, len(stamps), chunk):
            stop = start + chunk
            cols = [c[start:stop] for c in columns]
            fh.write("".join(row % (s.replace("T", " "), *vals)
                             for s, *vals in zip(stamps[start:stop].tolist(), *cols)))
