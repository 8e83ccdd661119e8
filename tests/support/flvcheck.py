"""Did the media arrive byte for byte? Compare a received FLV with the FLV that was published."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from relay.flv import AUDIO, SCRIPT, VIDEO, Tag, read_tags

_KIND = {AUDIO: "audio", VIDEO: "video", SCRIPT: "script"}
_WRAP = 1 << 32  # RTMP timestamps are compared modulo 2^32


@dataclass(frozen=True)
class MediaMatch:
    """How the received stream lines up with the source; `start` indexes the source's media tags."""

    media_tags: int  # audio/video frames received (sequence headers not counted)
    source_media_tags: int
    start: int  # the received media equal source media[start:]
    headers: int  # sequence headers received (repeats included)
    script_tags: int  # onMetaData and friends, which are not compared
    timestamp_offset: int | None  # received - source (mod 2^32) when timestamps were checked


def _tags(flv: Path | bytes) -> list[Tag]:
    return read_tags(flv.read_bytes() if isinstance(flv, Path) else flv)


def _media(tags: list[Tag]) -> list[Tag]:
    return [t for t in tags if t.kind in (AUDIO, VIDEO) and not t.is_header]


def _starts_gop(tag: Tag) -> bool:
    """A video keyframe with a picture in it: relay.flv also calls an end-of-sequence marker a keyframe."""
    if tag.kind != VIDEO or not tag.is_keyframe or len(tag.payload) < 2:
        return False
    first = tag.payload[0]
    packet_type = first & 0x0F if first & 0x80 else tag.payload[1]  # Enhanced RTMP VideoPacketType, or AVCPacketType
    return packet_type != 2  # 2 = end of sequence in both dialects


def _ends_sequence(tag: Tag) -> bool:
    """An H.264 end-of-sequence marker (AVCPacketType 2): what ffmpeg sends last when it stops."""
    return tag.kind == VIDEO and len(tag.payload) > 1 and not tag.payload[0] & 0x80 and tag.payload[1] == 2


def describe(tag: Tag) -> str:
    """One tag in a line: kind, timestamp, flags, size (never the payload)."""
    flags = " key" if tag.is_keyframe else (" header" if tag.is_header else "")
    return f"{_KIND.get(tag.kind, tag.kind)} ts={tag.timestamp}{flags} {len(tag.payload)} B"


def _check_headers(received: list[Tag], source: list[Tag]) -> list[str]:
    problems = []
    for kind in (AUDIO, VIDEO):
        wanted = {t.payload for t in source if t.kind == kind and t.is_header}
        got = [(i, t) for i, t in enumerate(received) if t.kind == kind and t.is_header]
        first_frame = next((i for i, t in enumerate(received) if t.kind == kind and not t.is_header), None)
        name = _KIND[kind]
        if not wanted:
            if got:
                problems.append(f"{len(got)} {name} sequence header(s) received, source has none")
            continue
        if not got:
            problems.append(f"no {name} sequence header received")
            continue
        for i, t in got:
            if t.payload not in wanted:
                problems.append(f"received tag {i} ({describe(t)}) is a {name} sequence header not in the source")
        if first_frame is not None and got[0][0] > first_frame:
            problems.append(f"first {name} frame (tag {first_frame}) arrives before any {name} sequence header")
    return problems


def assert_starts_decodable(tags: list[Tag], what: str) -> None:
    """Sequence headers of both tracks come first (a recorder may repeat one), then a video keyframe."""
    media = [t for t in tags if t.kind != SCRIPT]
    first = next((i for i, t in enumerate(media) if not t.is_header), None)
    assert first is not None, f"{what}: no frames"
    head = media[: first + 1]
    assert {t.kind for t in head[:first]} == {AUDIO, VIDEO}, (
        f"{what} does not start with both sequence headers: {[describe(t) for t in head]}")
    assert head[first].kind == VIDEO and head[first].is_keyframe, (
        f"{what}: first frame after the headers is {describe(head[first])}, not a video keyframe")


def _byte_diff(got: bytes, want: bytes) -> str:
    """Where two payloads first differ, by offset and size only."""
    first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    return f"payloads first differ at byte {first} (sizes {len(got)} received, {len(want)} expected)"


def _locate_divergence(got: list[Tag], src: list[Tag]) -> str:
    """Explain where `got` stops being a contiguous tail of `src`: drops, foreign tags, altered bytes."""
    where: dict[bytes, int] = {}
    for j, t in enumerate(src):
        where.setdefault(t.payload, j)
    lines = []
    first = where.get(got[0].payload)
    if first is None:
        lines.append(f"received media[0] ({describe(got[0])}) matches no source tag")
        first = len(src) - len(got)
    for k, tag in enumerate(got):
        j = first + k
        if j < len(src) and src[j].payload == tag.payload:
            continue
        lines.append(f"received media[{k}] = {describe(tag)}")
        lines.append(f"expected source media[{j}] = {describe(src[j]) if j < len(src) else 'nothing (source ended)'}")
        if (found := where.get(tag.payload)) is None:
            lines.append("received tag matches no source tag (altered bytes or foreign data)")
            if j < len(src):
                lines.append(_byte_diff(tag.payload, src[j].payload))
        elif found > j:
            lost = src[j:found]
            kinds = ", ".join(f"{sum(t.kind == kind for t in lost)} {_KIND[kind]}" for kind in (VIDEO, AUDIO))
            lines.append(f"source media[{j}:{found}] missing ({len(lost)} tags: {kinds})")
        else:
            lines.append(f"received tag repeats source media[{found}] (duplicate or reordered)")
        for m in range(max(0, k - 2), k):
            lines.append(f"  context: received media[{m}] = source media[{first + m}] = {describe(got[m])}")
        break
    else:
        if first + len(got) < len(src):
            lines.append(
                f"received stops after source media[{first + len(got) - 1}]; "
                f"source media[{first + len(got)}:] never arrived ({len(src) - first - len(got)} tags), "
                f"last source tag: {describe(src[-1])}"
            )
    return "\n".join(lines)


def assert_same_media(
    received: Path | bytes,
    source: Path | bytes,
    *,
    allow_late_start: bool = True,
    check_timestamps: bool = True,
    to_end: bool = True,
) -> MediaMatch:
    """Assert `received` carries the source's audio/video byte for byte; return how they line up.

    - every received sequence header equals one of the source's, and each kind's first
      header comes before that kind's first frame;
    - the received audio/video frames equal, payload for payload and in order, the
      source's frames from some start to the source's last tag; the start is the very
      first frame, or (with `allow_late_start`) any video keyframe (not an end-of-sequence marker);
      without `to_end`, up to any source tag (a publisher stopped before its input's end),
      plus the end-of-sequence marker such a publisher sends last;
    - with `check_timestamps`, every frame's timestamp is the source's plus one constant
      (modulo 2^32);
    - script tags (onMetaData written by a recorder) are ignored.
    """
    rec_tags, src_tags = _tags(received), _tags(source)
    got, src = _media(rec_tags), _media(src_tags)
    summary = (
        f"received {len(got)} media tags, source {len(src)}; received headers {sum(t.is_header for t in rec_tags)}"
    )
    problems = _check_headers(rec_tags, src_tags)
    if not got:
        raise AssertionError("\n".join([f"no audio/video frames received ({summary})", *problems]))
    if to_end:
        start = len(src) - len(got)
    else:
        if len(got) > 1 and _ends_sequence(got[-1]) and any(t.payload == got[-1].payload for t in src):
            got = got[:-1]  # the publisher's last word, not a frame of the source's
        # The first source tag with the first received payload (the clip's payloads are all distinct).
        start = next((j for j, s in enumerate(src) if s.payload == got[0].payload), -1)
    if start < 0 or len(got) > len(src) - start or any(g.payload != s.payload for g, s in zip(got, src[start:])):
        problems.append(_locate_divergence(got, src))
    elif start > 0 and not (allow_late_start and _starts_gop(src[start])):
        late = "a late start must be at a video keyframe" if allow_late_start else "a late start is not allowed"
        problems.append(f"received starts at source media[{start}] ({describe(src[start])}): {late}")
    offset = None
    if check_timestamps and not problems:
        offset = (got[0].timestamp - src[start].timestamp) % _WRAP
        for k, (g, s) in enumerate(zip(got, src[start:])):
            if (g.timestamp - s.timestamp) % _WRAP != offset:
                problems.append(
                    f"timestamp of received media[{k}] ({describe(g)}) is not source media[{start + k}] "
                    f"({describe(s)}) + {offset} ms like media[0]"
                )
                break
    if problems:
        raise AssertionError("\n".join([f"received media differs from source ({summary}):", *problems]))
    return MediaMatch(
        media_tags=len(got),
        source_media_tags=len(src),
        start=start,
        headers=sum(t.is_header for t in rec_tags),
        script_tags=sum(t.kind == SCRIPT for t in rec_tags),
        timestamp_offset=offset,
    )
