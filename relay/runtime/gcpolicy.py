"""The cyclic garbage collector, set for a long-running relay once it has started.

Every tag makes a handful of short-lived container objects (the tag, its encoded message,
the parser's message and event), so with CPython's default threshold (a generation-0
collection every 700 allocations) the collector ran 6-8 times a second at 8 live streams
and took some 10 % of the relay's CPU (bench/RESULTS.md). What it finds there is
almost nothing: the hot path makes no reference cycles (a ProtocolError's frames are
dropped by the ingest for that reason). So, once started:

- everything made during start-up (modules, the config, the HTTP app) is frozen out of
  the collector's sight (`gc.freeze`): full collections no longer walk it;
- generation 0 is collected every GEN0_THRESHOLD allocations instead of 700: a cycle waits
  a little longer to be found (peak RSS at 32 live streams was the same, 91.4 against 91.8 MB).
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 10_000


def settle_after_start() -> None:
    """Collect what start-up left, freeze the rest, and space out collections from now on."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
