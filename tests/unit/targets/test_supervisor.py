"""The target's supervisor (relay/targets/supervisor.py) over a fake network (no sockets): the snapshot and
its per-session counters, Enhanced RTMP announced in a connect only when the stream needs it, the
platform's words redacted, and the status table's log lines."""

from __future__ import annotations

from typing import Any

from relay.fanout.hub import Hub
from relay.flv import VIDEO
from relay.rtmp.encoded import EncodedMessage
from relay.runtime.logs import PEER_TEXT_LIMIT
from relay.targets.logpolicy import TargetLogPolicy
from relay.targets.statustable import CONNECTED, FAILED, RETRY, START
from relay.targets.supervisor import Target
from tests.support.fakenetwork import KEY, FakeNetwork, target_config
from tests.support.tags import inter, keyframe
from tests.unit.targets.support import HEADERS, RECONNECT_REQUEST, Started


async def test_the_snapshot(started: Started) -> None:
    target, _hub, _transport = await started(write_interval=0.04)
    snapshot = target.snapshot()
    assert (snapshot.passthrough, snapshot.url, snapshot.status) == ("t", "rtmp://platform.example/live", "broadcasting")
    assert snapshot.error_severity is None and snapshot.last_error is None and snapshot.next_attempt_at is None
    assert snapshot.connected_since is not None and snapshot.connections == 1 and snapshot.reconnects == 0
    assert snapshot.write_interval == 0.04 and snapshot.tls_verify
    assert KEY not in repr(snapshot)


async def test_enhanced_rtmp_is_decided_at_each_connect(started: Started, network: FakeNetwork) -> None:
    # auto: an H.264 stream connects the classic way; once the stream carries HEVC (Enhanced
    # RTMP), the next connect (here the switch of a reconnect request) announces it.
    _target, hub, transport = await started(write_interval=0.05)
    assert transport.connect_properties is not None and "fourCcList" not in transport.connect_properties
    hub.publish(EncodedMessage(VIDEO, 40, b"\x90hvc1" + bytes(30)))  # IsExHeader | keyframe | SequenceStart
    transport.send_status(RECONNECT_REQUEST)
    second = await network.wait_opened(2)
    assert second.connect_properties is not None and "hvc1" in second.connect_properties["fourCcList"]


async def test_enhanced_rtmp_always_and_never(started: Started) -> None:
    _target, _hub, always = await started(write_interval=0.05, enhanced_rtmp="always")
    hub: Hub[EncodedMessage] = Hub("studio")
    hub.state.publisher_enhanced = True  # the publisher's connect declared Enhanced RTMP
    for tag in HEADERS:
        hub.publish(tag)
    _target, _hub, never = await started(hub, write_interval=0.05, enhanced_rtmp="never")
    assert always.connect_properties is not None and "fourCcList" in always.connect_properties
    assert never.connect_properties is not None and "fourCcList" not in never.connect_properties


async def test_a_new_publish_session_starts_the_counters_over(started: Started, network: FakeNetwork) -> None:
    target, hub, transport = await started(write_interval=0.05)
    hub.publish(keyframe(0, size=5000))
    await transport.wait_until(lambda: len(transport.media) >= 4)
    target.request_stop()  # the publisher's Stop
    await target.wait_stopped(5)
    first = target.snapshot()
    assert first.status == "idle" and first.bytes_sent == first.bytes_sent_total > 5000  # kept while idle

    target.start()  # the next publish session
    second_transport = await network.wait_opened(2)
    await second_transport.wait_until(lambda: target.snapshot().status == "broadcasting" and target.buffer.live)
    hub.publish(inter(33, size=700))
    await second_transport.wait_until(lambda: any(len(t.payload) == 700 for t in second_transport.media))
    second = target.snapshot()
    assert (second.connections, second.reconnects, second.attempts) == (1, 0, 0)  # not a reconnect
    assert (second.connections_total, second.reconnects_total) == (2, 0)
    # This session's: its init burst (headers and the cached GOP) and one frame; the total has both sessions.
    assert 0 < second.bytes_sent < second.bytes_sent_total == first.bytes_sent_total + second.bytes_sent
    assert second.tags_sent == 3 + 1 + 1 and second.dropped_frames == second.dropped_frames_total == 0
    assert second.last_connected_at is not None and second.last_connected_at >= (first.last_connected_at or 0)


async def test_the_platforms_words_lose_the_key_and_are_cut_before_a_log_line_or_last_error(started: Started) -> None:
    target, _hub, _transport = await started(write_interval=0.05)
    link = target.writer.link
    assert link is not None
    words = f"Publish rejected for stream {KEY}: " + "x" * 100_000  # a hostile or broken platform

    said = link.redact(words)

    assert KEY not in said and said.startswith("Publish rejected for stream <redacted")
    assert len(said) < PEER_TEXT_LIMIT + 40 and said.endswith(" characters)")  # cut, saying how long it was
    assert link.redact("Publish rejected.") == "Publish rejected."  # short words stay as they are


async def test_a_target_that_keeps_failing_warns_once_then_summarises(logs: list[dict[str, Any]]) -> None:
    target = Target("studio", target_config(), Hub("studio"))
    target.log_policy = TargetLogPolicy(summary_interval=0.0)  # a summary at every failure after the first
    target._handle(START)
    for i in range(3):
        target._handle(FAILED, f"connection refused #{i}")
        target._handle(RETRY)
    target._handle(CONNECTED)
    lines = [(e["log_level"], e["event"], e.get("to")) for e in logs]
    assert lines == [
        ("debug", "target_status", "starting"),
        ("warning", "target_status", "errored"), ("debug", "target_status", "starting"),
        ("warning", "target_still_failing", None), ("debug", "target_status", "starting"),
        ("warning", "target_still_failing", None), ("debug", "target_status", "starting"),
        ("info", "target_status", "broadcasting"),
    ]
    assert logs[-3]["attempts"] == 3 and logs[-3]["last_reason"] == "connection refused #2"
    assert logs[-1]["attempts"] == 4 and logs[-1]["failing_since"] is not None
