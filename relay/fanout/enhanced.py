"""Whether a target's connect announces Enhanced RTMP (issue #12).

The announcement (fourCcList, an AMF0 strict array, and the FourCcInfoMaps) lets a server
expect HEVC, AV1 or VP9 in Enhanced RTMP's extended video header; but a server whose AMF0
parser knows only the classic types cannot decode it and never answers the connect. So a
target announces it only when the stream needs it. Its `enhanced_rtmp` setting says:

- `always` / `never`: as it says;
- `auto`: announce when the publisher's own connect declared Enhanced RTMP (OBS sends
  fourCcList only when it streams HEVC or AV1), or when the stream already carries
  Enhanced RTMP media: a cached sequence header with the extended header (a target
  connects when the publisher publishes, often before the first media tag, so the
  publisher's declaration is what usually decides).

Decided at each connect, from the publish session's state (StreamState).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.fanout.streamstate import StreamState
from relay.flv import is_enhanced

AUTO = "auto"
ALWAYS = "always"
NEVER = "never"
# What an Enhanced RTMP client puts in its connect command object (v1: fourCcList; v2: the maps).
CONNECT_FIELDS = ("fourCcList", "videoFourCcInfoMap", "audioFourCcInfoMap")


def declares_enhanced(properties: Mapping[str, object]) -> bool:
    """True if a publisher's connect command object declared Enhanced RTMP codecs."""
    return any(properties.get(name) for name in CONNECT_FIELDS)


def announce_enhanced(mode: str, state: StreamState[Any]) -> bool:
    """Whether a target's next connect announces Enhanced RTMP (mode: auto | always | never)."""
    if mode == ALWAYS:
        return True
    if mode == NEVER:
        return False
    if state.publisher_enhanced:
        return True
    return any(header is not None and is_enhanced(header.kind, header.payload)
               for header in (state.video_header, state.audio_header))
