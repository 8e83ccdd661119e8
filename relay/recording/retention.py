"""Which finished recordings of a folder to delete: keep_last, max_age, max_total_size.

The unit is a recording (one session's stem), not a file: `X.flv` and `X.mp4` of the same
session count and go together. Only names the relay writes are considered (names.py),
so an operator's own files in the folder are never deleted. A recording with any `.part`
file (being written, being remuxed, or waiting for recovery) is in progress: it is never
deleted and does not count. Otherwise:

- keep_last: all but the newest `keep_last` recordings go;
- max_age: recordings last written more than `max_age` seconds ago go;
- max_total_size: the oldest go while the rest add up to more than `max_total_size`
  bytes, but the newest recording is always kept, even alone above the limit (deleting
  the show that just ended because it was long is never what its owner wants).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from relay.recording import names


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One file of a recordings folder."""

    name: str
    size: int
    mtime: float  # Unix time of its last write


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """A live stream's retention settings; None turns a rule off."""

    keep_last: int | None = None
    max_age: float | None = None
    max_total_size: int | None = None

    @property
    def active(self) -> bool:
        """True if any rule is on."""
        return self.keep_last is not None or self.max_age is not None or self.max_total_size is not None


@dataclass(slots=True)
class _Recording:
    stem: str
    started_at: float
    files: list[FileInfo] = field(default_factory=list)
    in_progress: bool = False

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def finished_at(self) -> float:
        return max(f.mtime for f in self.files)


def expired(files: Iterable[FileInfo], policy: RetentionPolicy, now: float) -> list[str]:
    """Names of the files to delete, oldest recording first."""
    recordings: dict[str, _Recording] = {}
    for info in files:
        parsed = names.parse(info.name)
        if parsed is None:
            continue
        rec = recordings.setdefault(parsed.stem, _Recording(parsed.stem, parsed.started_at))
        rec.files.append(info)
        rec.in_progress |= parsed.part
    finished = sorted((r for r in recordings.values() if not r.in_progress),
                      key=lambda r: (r.started_at, len(r.stem), r.stem))
    doomed: set[str] = set()
    if policy.keep_last is not None:
        doomed.update(r.stem for r in finished[: max(0, len(finished) - policy.keep_last)])
    if policy.max_age is not None:
        doomed.update(r.stem for r in finished if now - r.finished_at > policy.max_age)
    if policy.max_total_size is not None:
        total = sum(r.size for r in finished if r.stem not in doomed)
        for rec in finished[:-1]:
            if total <= policy.max_total_size:
                break
            if rec.stem not in doomed:
                doomed.add(rec.stem)
                total -= rec.size
    return [f.name for rec in finished if rec.stem in doomed for f in sorted(rec.files, key=lambda f: f.name)]
