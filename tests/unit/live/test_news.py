"""Which target status changes are news for the webhooks: the error once, giving up once, the recovery."""

from __future__ import annotations

from relay.live.news import TargetNews
from relay.targets.statustable import Transition


def moved(after: str, severity: str | None = None) -> Transition:
    return Transition("?", after, "", None, severity, None)


def test_retries_are_not_news_but_the_error_giving_up_and_recovery_are() -> None:
    news: TargetNews[str] = TargetNews()
    steps = [("starting", None), ("errored", "normal"), ("starting", None), ("errored", "normal"),
             ("errored", "fatal"), ("starting", None), ("broadcasting", None), ("idle", None)]
    heard = [news.news("yt", moved(status, severity)) for status, severity in steps]
    assert heard == [
        "video.live_stream.simulcast_target.starting", "video.live_stream.simulcast_target.errored", None, None,
        "video.live_stream.simulcast_target.errored", None, "video.live_stream.simulcast_target.broadcasting",
        "video.live_stream.simulcast_target.idle"]


def test_each_target_has_its_own_story_and_a_removed_one_is_forgotten() -> None:
    news: TargetNews[str] = TargetNews()
    assert news.news("a", moved("broadcasting")) is not None
    assert news.news("b", moved("broadcasting")) is not None
    assert news.news("a", moved("broadcasting")) is None
    news.keep_only(["b"])
    assert news.news("a", moved("broadcasting")) is not None  # a new story
