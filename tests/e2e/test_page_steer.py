"""Steering from the status page in headless Chromium: with a write access token, a person adds a target
to a live stream made through the API while it is live (nginx-rtmp receives it), disables it (nginx
sees it leave), enables it (back), and removes it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testbed.ffmpeg import FfmpegProcess
from testbed.nginx import NginxRtmp, RtmpApp
from testbed.ports import wait_until
from testbed.relay_proc import RelayProcess
from tests.support.browser import headless_chromium
from tests.support.muxapi import SECRETS, WRITE_ID, WRITE_SECRET, MuxApi, api_config

pytestmark = pytest.mark.e2e

TOKEN = "steer-http-TOKEN-5a0c9e1f77"
INGEST_KEY = "steer-yaml-KEY-1f0e2d3c4b"
TARGET_KEY = "steer-target-KEY-8a7b6c5d4e"

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def browser() -> Iterator[object]:
    with headless_chromium(sync_api) as chromium:
        yield chromium


@pytest.mark.long
def test_a_person_adds_disables_enables_and_removes_a_target_while_live(
        relay_daemon: Callable[..., RelayProcess], nginx_rtmp: Callable[..., NginxRtmp], browser: object,
        source_flv: Path, tmp_path: Path) -> None:
    nginx = nginx_rtmp(RtmpApp("live", record=False))
    daemon = relay_daemon([], ingest_key=INGEST_KEY, secrets=(TARGET_KEY, TOKEN, *SECRETS),
                          extra=api_config(tmp_path / "state", token=TOKEN))
    daemon.wait_for("relay_ready")
    created = MuxApi(daemon.http_port).call("POST", "/live-streams", {"passthrough": "show"}).data
    publisher = FfmpegProcess(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "warning", "-re",
                               "-stream_loop", "-1", "-i", str(source_flv), "-c", "copy", "-f", "flv",
                               f"rtmp://127.0.0.1:{daemon.port}/live/{created['stream_key']}"])
    try:
        daemon.wait_for("publish_started", timeout=20)
        context = browser.new_context()  # type: ignore[attr-defined]
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"http://127.0.0.1:{daemon.http_port}/")
        page.fill("input[name=token]", TOKEN)
        page.click("button[type=submit]")

        page.fill("#steer-sign-in input[name=id]", WRITE_ID)
        page.fill("#steer-sign-in input[name=secret]", WRITE_SECRET)
        page.click("#steer-sign-in button[type=submit]")
        sync_api.expect(page.locator("#steer-work")).to_be_visible(timeout=10_000)
        sync_api.expect(page.locator("#steer-live-stream")).to_have_value(created["id"])

        page.fill("#steer-add input[name=url]", nginx.url("live"))
        page.fill("#steer-add input[name=stream_key]", TARGET_KEY)
        page.fill("#steer-add input[name=passthrough]", "from-the-page")
        page.click("#steer-add button[type=submit]")
        nginx.wait_published(TARGET_KEY, timeout=20)
        card = page.locator(f'[data-live-stream="{created["id"]}"] [data-target="from-the-page"]')
        sync_api.expect(card).to_have_attribute("data-status", "broadcasting", timeout=20_000)

        row = page.locator("#steer-targets li[data-target=from-the-page]")
        row.locator("button[data-action=disable]").click()
        nginx.wait_unpublished(TARGET_KEY, timeout=20)
        sync_api.expect(row).to_have_attribute("data-enabled", "false")

        row.locator("button[data-action=enable]").click()
        wait_until(lambda: len(nginx.publishers(TARGET_KEY)) == 2, 20, "the target publishing again")
        sync_api.expect(card).to_have_attribute("data-status", "broadcasting", timeout=20_000)

        row.locator("button[data-action=remove]").click()
        nginx.wait_unpublished(TARGET_KEY, timeout=20)
        sync_api.expect(row).to_have_count(0)
        assert TARGET_KEY not in page.content() and WRITE_SECRET not in page.content()
        assert not errors, errors
        context.close()
    finally:
        publisher.stop()
