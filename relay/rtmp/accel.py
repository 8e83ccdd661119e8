"""Which implementation of the core's per-tag loops runs: the compiled twins or the pure-Python reference.

chunkreader.py's ChunkReader and encoded.py's queue_encoded are the reference, readable
and always there. _speedups.pyx implements the same class and function, compiled by
Cython when the package is installed with a C compiler at hand (setup.py); the
differential tests (tests/unit/rtmp/test_differential.py) feed both the same bytes and
demand the same messages and output bytes. This module picks one, once, at import:
the compiled twin when it was built, unless RELAY_PURE_PYTHON is set (to anything but
"" or "0"). It never logs (the core does not); `relay run` logs the choice, `relay
--version` prints it.
"""

from __future__ import annotations

import os

from relay.rtmp import chunkreader, encoded

PURE_ENV = "RELAY_PURE_PYTHON"


def pure_forced() -> bool:
    """Whether the environment asks for the pure-Python path."""
    return os.environ.get(PURE_ENV, "") not in ("", "0")


ChunkReader: type[chunkreader.ChunkReader] = chunkreader.ChunkReader
queue_encoded = encoded.queue_encoded
COMPILED = False
WHY_PURE: str | None = f"{PURE_ENV} is set"  # None when the compiled twins run

if not pure_forced():
    try:
        from relay.rtmp import _speedups
    except ImportError as exc:  # not built (no compiler at install time), or built for another Python
        WHY_PURE = f"the compiled twins are not built ({exc})"
    else:
        ChunkReader = _speedups.ChunkReader
        queue_encoded = _speedups.queue_encoded
        COMPILED = True
        WHY_PURE = None
