"""Which Timeline runs: the compiled twin or the pure-Python reference (as relay/rtmp/accel.py decides).

timeline.py is the reference; _speedups.pyx implements the same class, compiled by Cython
when the package is installed with a C compiler at hand (setup.py). The compiled twin runs
when it was built, unless RELAY_PURE_PYTHON is set (to anything but "" or "0").
"""

from __future__ import annotations

import os

from relay.fanout import timeline

Timeline: type[timeline.Timeline] = timeline.Timeline
COMPILED = False

if os.environ.get("RELAY_PURE_PYTHON", "") in ("", "0"):
    try:
        from relay.fanout import _speedups
    except ImportError:  # not built: relay/rtmp/accel.py's WHY_PURE says why, for both
        pass
    else:
        Timeline = _speedups.Timeline
        COMPILED = True
