"""Which Timeline and Hub run: the compiled twins or the pure-Python reference (as relay/rtmp/accel.py decides).

timeline.py and hub.py are the reference; _speedups.pyx implements the same classes,
compiled by Cython when the package is installed with a C compiler at hand (setup.py).
The compiled twins run when they were built, unless RELAY_PURE_PYTHON is set (to anything
but "" or "0"). Type checkers see the reference (the twins have its interface).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from relay.fanout import hub, timeline

COMPILED = False

if TYPE_CHECKING:
    from relay.fanout.hub import Hub as Hub
    from relay.fanout.timeline import Timeline as Timeline
else:
    Hub = hub.Hub
    Timeline = timeline.Timeline
    if os.environ.get("RELAY_PURE_PYTHON", "") in ("", "0"):
        try:
            from relay.fanout import _speedups
        except ImportError:  # not built: relay/rtmp/accel.py's WHY_PURE says why, for both
            pass
        else:
            Hub = _speedups.Hub
            Timeline = _speedups.Timeline
            COMPILED = True
