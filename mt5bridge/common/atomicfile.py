"""Files that appear whole or not at all.

Reports, exports, model and spec files are read by other programs (a bridge starting, a spreadsheet, the
next replay) while they are written. Each is written beside its target as ``NAME.part`` and renamed over the
target only when complete; if writing fails, the part file is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import IO


@contextlib.contextmanager
def replaced_when_complete(path: str | os.PathLike[str], *, newline: str = "\n") -> Iterator[IO[str]]:
    """A text file (UTF-8) to write; it replaces ``path`` when the ``with`` block ends without an error."""
    part = f"{os.fspath(path)}.part"
    try:
        with open(part, "w", encoding="utf-8", newline=newline) as fh:
            yield fh
        os.replace(part, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(part)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all."""
    with replaced_when_complete(path) as fh:
        fh.write(text)
