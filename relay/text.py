"""Text from peers, made safe to show on a terminal: control characters written as escapes.

A publisher's app name, a platform's status message or error text can carry ESC
sequences (colours, cursor moves, a terminal title, OSC 52 clipboard writes), carriage
returns that overwrite a line, or Unicode direction overrides that reorder it. Wherever
such text reaches a person's terminal (`relay status`, console-format logs) it goes
through `printable()`: every C0 and C1 control character, DEL and the bidirectional
controls become visible escapes (\\x1b, \\u202e); other text is unchanged. JSON output
needs none of this: json.dumps escapes control characters itself.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every terminal control character written as an escape."""
    return _UNSAFE.sub(_escape, text)
