"""Coverage-guided fuzzing of the RTMP core (atheris, i.e. libFuzzer for Python).

    python fuzz/fuzz_server.py [libFuzzer options] CORPUS_DIR...

(fuzz/run.py builds the seed corpus from the real sessions and runs this with a time limit.)

Each input is two set-up bytes, then bytes from a peer:
- byte 0 picks the role and what comes before the input: 0 = a server after a plain
  handshake; 1 = a server fed the input raw (the handshake is fuzzed too); 2 = a client
  (our side of a target) after the server's S0 S1 S2; 3 = a server whose peer has already
  connected and is publishing (chunk size 4096), so media, data and aggregates are reached;
- byte 1 picks the read size (modulo 8): 1, 2, 3, 7, 100, 4096 bytes, or (6, 7) the whole
  input at once; an odd byte 0 above 3 also plays a peer that never reads our output.

What is checked, on every input: nothing but the core's ProtocolError escapes; after every
read the connection consumed, the output queued stays under max_output_bytes and, until
the peer publishes, the memory held under max_unauthenticated_memory. Any other exception
or a broken bound is a crash, and libFuzzer keeps the input that caused it.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import atheris  # noqa: E402

with atheris.instrument_imports(include=["relay", "fuzz"]):
    from fuzz.target import test_one_input  # noqa: E402


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
