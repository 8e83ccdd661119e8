"""Webhooks against a real receiver that checks Mux-Signature: order, retries, bounds, no keys.

The dispatcher runs in process for the failure cases (a receiver that is down, then
comes back; one that answers 500; a queue that overflows), with fast retries; the whole
daemon runs for the events a real show produces.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from relay.api.webhooks import WebhookDispatcher, sign, verify
from relay.config import Secret, WebhookConfig
from relay.status import StatusChange
from testbed.ffmpeg import publish_with_ffmpeg
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.ports import free_port
from testbed.relay_proc import RelayProcess
from tests.support.webhook_receiver import WebhookReceiver, receiver_accepts
from tests.unit.test_status import ACTIVE, IDLE

SECRET = "webhook-SECRET-8f2a61c0d9"
INGEST_KEY = "wh-ingest-KEY-3e8c0f17a2"
TARGET_KEY = "wh-target-KEY-b61d9e4470"


def change(n: int, name: str = "studio-a") -> StatusChange:
    live = dataclasses.replace(ACTIVE if n % 2 else IDLE, name=name, sessions=n)
    return StatusChange(f"video.live_stream.{live.status}", live, None, 1_800_000_000.0 + n)


def hook(url: str, **fields: object) -> WebhookConfig:
    return WebhookConfig.model_validate({"url": url, "secret": SECRET, "timeout": 1, **fields})


def dispatcher(*configs: WebhookConfig) -> WebhookDispatcher:
    return WebhookDispatcher(configs, lambda: [Secret(SECRET)], retry_initial=0.05, retry_max=0.2)


def openssl_hmac_sha256(key: str, data: bytes) -> str:
    """HMAC-SHA256 of `data` in hex, computed by OpenSSL's command line: not by the relay, not by Python."""
    done = subprocess.run(["openssl", "dgst", "-sha256", "-hmac", key, "-r"], input=data, capture_output=True,
                          timeout=30, check=True)
    return done.stdout.split()[0].decode()


def test_the_signature_is_the_known_answer_computed_by_openssl() -> None:
    # Mux's scheme: v1 = hex(HMAC-SHA256(secret, "{t}.{body}")), header "t={t},v1={v1}".
    secret, timestamp = "whsec-known-answer-0123456789", 1_700_000_000
    body = b'{"type":"video.live_stream.active","object":{"type":"live_stream","id":"studio"}}'
    expected = openssl_hmac_sha256(secret, b"1700000000." + body)
    assert re.fullmatch(r"[0-9a-f]{64}", expected), expected

    assert sign(secret, body, timestamp) == f"t=1700000000,v1={expected}"
    header = f"t=1700000000,v1={expected}"
    assert receiver_accepts(secret, body, header, now=timestamp + 1)
    # The receiver's own check refuses what it must: another body, another secret, a replay.
    assert not receiver_accepts(secret, body + b" ", header, now=timestamp + 1)
    assert not receiver_accepts("whsec-other", body, header, now=timestamp + 1)
    assert not receiver_accepts(secret, body, header, now=timestamp + 3600)


def test_signatures_follow_mux() -> None:
    body = b'{"type":"video.live_stream.active"}'
    header = sign(SECRET, body, 1_700_000_000)

    assert header.startswith("t=1700000000,v1=")
    assert verify(SECRET, body, header, now=1_700_000_100)
    assert not verify(SECRET, body + b" ", header, now=1_700_000_100)
    assert not verify("other", body, header, now=1_700_000_100)
    assert not verify(SECRET, body, header, now=1_700_009_999)  # too old: a replay


async def test_events_arrive_in_order_signed_and_in_muxs_shape() -> None:
    with WebhookReceiver(SECRET) as receiver:
        hooks = dispatcher(hook(receiver.url))
        await hooks.start()
        try:
            for n in range(1, 6):
                hooks.notify(change(n))
            events = await asyncio.to_thread(receiver.wait_until, lambda e: len(e) >= 5)
        finally:
            await hooks.close(0)

    assert [e["data"]["sessions"] for e in events] == [1, 2, 3, 4, 5]
    assert [e["type"] for e in events][:2] == ["video.live_stream.active", "video.live_stream.idle"]
    first = events[0]
    assert first["object"] == {"type": "live_stream", "id": "studio-a"}
    assert first["created_at"].endswith("Z") and len(first["id"]) == 36
    assert receiver.bad_signatures == 0


async def test_a_receiver_that_is_down_gets_everything_in_order_when_it_comes_back() -> None:
    port = free_port()
    hooks = dispatcher(hook(f"http://127.0.0.1:{port}/hook"))
    await hooks.start()
    try:
        for n in range(1, 4):
            hooks.notify(change(n))
        (endpoint,) = hooks.endpoints
        async with asyncio.timeout(10):
            while endpoint.failed_attempts < 3:  # it tried, and backs off between tries
                await asyncio.sleep(0.02)
        with WebhookReceiver(SECRET, port=port, fail_first=2) as receiver:
            hooks.notify(change(4))
            events = await asyncio.to_thread(receiver.wait_until, lambda e: len(e) >= 4)
            assert receiver.refused == 2  # answered 500 twice: retried each time
            async with asyncio.timeout(10):
                while endpoint.queue:  # the last answer is on its way back to the dispatcher
                    await asyncio.sleep(0.02)
    finally:
        await hooks.close(0)

    assert [e["data"]["sessions"] for e in events] == [1, 2, 3, 4]
    assert endpoint.delivered == 4 and endpoint.dropped == 0
    assert endpoint.failed_attempts >= 5


async def test_the_queue_is_bounded_dropping_the_oldest_and_counting() -> None:
    port = free_port()
    hooks = dispatcher(hook(f"http://127.0.0.1:{port}/hook", max_queue=3))
    await hooks.start()
    try:
        # Nobody listens on the port yet: notify() queues and returns, never waiting for the receiver
        # (the loop does not run between these calls and the checks below).
        for n in range(1, 11):
            hooks.notify(change(n))
        (endpoint,) = hooks.endpoints
        assert endpoint.dropped == 7 and len(endpoint.queue) == 3
        with WebhookReceiver(SECRET, port=port) as receiver:
            events = await asyncio.to_thread(receiver.wait_until, lambda e: len(e) >= 3)
    finally:
        await hooks.close(0)

    assert [e["data"]["sessions"] for e in events] == [8, 9, 10]
    assert hooks.stats()[0].dropped == 7


async def test_bodies_never_carry_a_key() -> None:
    leaky = dataclasses.replace(ACTIVE.simulcast_targets[0], last_error=f"the platform echoed {INGEST_KEY}")
    event = StatusChange("video.live_stream.simulcast_target.errored",
                         dataclasses.replace(ACTIVE, simulcast_targets=(leaky,)), leaky, 1.0)
    with WebhookReceiver(SECRET) as receiver:
        hooks = WebhookDispatcher([hook(receiver.url)], lambda: [Secret(SECRET), Secret(INGEST_KEY)])
        await hooks.start()
        try:
            hooks.notify(event)
            events = await asyncio.to_thread(receiver.wait_until, lambda e: len(e) >= 1)
        finally:
            await hooks.close(0)

    assert INGEST_KEY.encode() not in receiver.raw_bodies[0]
    assert events[0]["object"] == {"type": "simulcast_target", "id": "studio-a/YouTube"}
    assert events[0]["data"]["live_stream_id"] == "studio-a"


@pytest.mark.e2e
def test_a_show_sends_every_status_change_in_order(
    source_flv: Path, nginx_rtmp: Callable[..., NginxRtmp], relay_daemon: Callable[..., RelayProcess],
) -> None:
    nginx = nginx_rtmp(RtmpApp("rec", record=False))
    with WebhookReceiver(SECRET) as receiver:
        daemon = relay_daemon(
            [{"url": nginx.url("rec"), "stream_key": TARGET_KEY, "passthrough": "nginx"},
             {"url": "rtmp://127.0.0.1:1/app", "stream_key": TARGET_KEY + "-2", "passthrough": "nowhere",
              "reconnect": {"initial_delay": 0.2, "max_delay": 0.5}}],
            ingest_key=INGEST_KEY, secrets=(TARGET_KEY, SECRET), reconnect_window=0,
            extra={"webhooks": [{"url": receiver.url, "secret": SECRET}]},
        )
        publish_with_ffmpeg(f"rtmp://127.0.0.1:{daemon.port}/live/{INGEST_KEY}", source_flv, realtime=True)
        events = receiver.wait_until(lambda e: "video.live_stream.idle" in [x["type"] for x in e] and sum(
            x["type"] == "video.live_stream.simulcast_target.idle" for x in e) == 2, what="the end of the show")
        assert daemon.terminate(timeout=15) == 0

    def of(target: str) -> list[str]:
        return [e["type"].rsplit(".", 1)[1] for e in events
                if e["object"]["type"] == "simulcast_target" and e["data"]["passthrough"] == target]

    types = [e["type"] for e in events]
    assert types[0] == "video.live_stream.active"
    assert of("nginx") == ["starting", "broadcasting", "idle"]
    # A target retrying every ~0.5 s is announced once as errored, not once per attempt.
    assert of("nowhere") == ["starting", "errored", "idle"]
    assert types.index("video.live_stream.idle") > types.index("video.live_stream.active")
    errored = next(e for e in events if e["type"].endswith("simulcast_target.errored"))
    assert "connection refused" in errored["data"]["last_error"]
    assert receiver.bad_signatures == 0
    everything = b"".join(receiver.raw_bodies)
    assert INGEST_KEY.encode() not in everything and TARGET_KEY.encode() not in everything
