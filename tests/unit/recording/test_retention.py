"""Retention: which finished recordings go; a recording in progress never does."""

from __future__ import annotations

from relay.recording import names
from relay.recording.retention import FileInfo, RetentionPolicy, expired

DAY = 86400.0
NOW = 1_800_000_000.0


def rec(days_ago: float, ext: str = ".flv", size: int = 100, part: bool = False, n: int = 0) -> FileInfo:
    started = NOW - days_ago * DAY
    stem = names.stem_for(started) + (f"-{n}" if n else "")
    return FileInfo(stem + ext + (".part" if part else ""), size, started + 3600)


def test_no_rule_deletes_nothing() -> None:
    files = [rec(d) for d in (1, 2, 3)]
    assert expired(files, RetentionPolicy(), NOW) == []
    assert not RetentionPolicy().active and RetentionPolicy(keep_last=1).active


def test_keep_last_deletes_the_oldest() -> None:
    files = [rec(d) for d in (3, 1, 5, 2)]
    assert expired(files, RetentionPolicy(keep_last=2), NOW) == [rec(5).name, rec(3).name]


def test_max_age_deletes_what_was_last_written_too_long_ago() -> None:
    files = [rec(d) for d in (1, 2, 3, 10)]
    assert expired(files, RetentionPolicy(max_age=2.5 * DAY), NOW) == [rec(10).name, rec(3).name]


def test_max_total_size_deletes_the_oldest_until_the_rest_fits() -> None:
    files = [rec(4, size=400), rec(3, size=300), rec(2, size=200), rec(1, size=100)]
    assert expired(files, RetentionPolicy(max_total_size=350), NOW) == [rec(4).name, rec(3).name]
    assert expired(files, RetentionPolicy(max_total_size=1000), NOW) == []


def test_max_total_size_never_deletes_the_newest_recording() -> None:
    files = [rec(2, size=50), rec(1, size=5000)]
    assert expired(files, RetentionPolicy(max_total_size=1000), NOW) == [rec(2).name]


def test_a_recording_in_progress_is_never_deleted_and_does_not_count() -> None:
    active = rec(30, part=True, size=10**9)  # oldest and biggest: the first to go, were it finished
    files = [active, rec(3), rec(2), rec(1)]
    for policy in (RetentionPolicy(keep_last=1), RetentionPolicy(max_age=DAY / 2),
                   RetentionPolicy(max_total_size=150)):
        assert active.name not in expired(files, policy, NOW), policy
    assert expired(files, RetentionPolicy(keep_last=2), NOW) == [rec(3).name]


def test_an_flv_being_remuxed_is_in_progress_with_its_mp4_part() -> None:
    flv, marker = rec(9), rec(9, ext=".mp4", part=True)
    assert expired([flv, marker, rec(1)], RetentionPolicy(keep_last=1), NOW) == []


def test_the_flv_and_mp4_of_one_session_are_one_recording() -> None:
    files = [rec(3, ".flv"), rec(3, ".mp4"), rec(2, ".mp4"), rec(1, ".mp4")]
    assert expired(files, RetentionPolicy(keep_last=2), NOW) == [rec(3, ".flv").name, rec(3, ".mp4").name]


def test_other_files_in_the_folder_are_never_touched() -> None:
    files = [FileInfo("notes.txt", 10, 0.0), FileInfo("20200101T000000Z.flv.bak", 10, 0.0),
             FileInfo("show.flv", 10, 0.0), rec(2), rec(1)]
    assert expired(files, RetentionPolicy(keep_last=1, max_total_size=1), NOW) == [rec(2).name]


def test_sessions_of_the_same_second_keep_their_order() -> None:
    files = [rec(1, n=10), rec(1, n=2), rec(1), rec(1, n=1)]
    assert expired(files, RetentionPolicy(keep_last=1), NOW) == [rec(1).name, rec(1, n=1).name,
                                                               rec(1, n=2).name]
