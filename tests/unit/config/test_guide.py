"""relay_ready's guide: the Server URL for OBS per listener, the live streams by name, the status page."""

from __future__ import annotations

from typing import Any

from relay.config import Bound, Guide, RelayConfig, publish_guide
from relay.config.guide import SOME_HOST
from tests.unit.config.support import INGEST_A, INGEST_B, assert_no_keys, base, parse

MACHINE = ("studio-box", "192.168.1.20", "fd00::5")
TOKEN = "httpTOKEN-SEKRIT-0a1b2c3d4e"


def config(**sections: Any) -> RelayConfig:
    return parse({**base(), **sections})


def check_secret_free(guide: Guide, parsed: RelayConfig) -> None:
    shown = f"{guide.fields()}\n{guide.text()}"
    assert_no_keys(shown)
    assert TOKEN not in shown
    for secret in parsed.all_secrets():  # not even a fingerprint
        assert secret.fingerprint not in shown


def test_a_loopback_listener_gives_its_own_url_and_says_only_this_machine_can_publish() -> None:
    parsed = config(server={"listen": "127.0.0.1:1935", "app": "live"})
    guide = publish_guide(parsed, [Bound("rtmp", "127.0.0.1", 1935), Bound("http", "127.0.0.1", 8935)], MACHINE)

    assert guide.obs_server == ("rtmp://127.0.0.1:1935/live",)
    assert guide.live_streams == ("studio-a",)
    assert guide.status_page == ("http://127.0.0.1:8935/",)
    assert any("this machine only" in note for note in guide.notes)
    check_secret_free(guide, parsed)


def test_every_interface_is_said_with_the_machines_name_and_ipv4_address() -> None:
    parsed = config()
    guide = publish_guide(parsed, [Bound("rtmp", "0.0.0.0", 1935), Bound("http", "127.0.0.1", 8935)], MACHINE)

    # 0.0.0.0 takes IPv4 only: no IPv6 address is offered.
    assert guide.obs_server == ("rtmp://studio-box:1935/live", "rtmp://192.168.1.20:1935/live")
    assert any("every interface" in note for note in guide.notes)
    check_secret_free(guide, parsed)


def test_ipv6_wildcard_offers_ipv6_addresses_in_brackets() -> None:
    parsed = config(server={"listen": "[::]:1936", "app": "show"})
    guide = publish_guide(parsed, [Bound("rtmp", "::", 1936)], MACHINE)

    assert guide.obs_server == ("rtmp://studio-box:1936/show", "rtmp://192.168.1.20:1936/show",
                                "rtmp://[fd00::5]:1936/show")


def test_an_unknown_machine_gets_a_placeholder_host() -> None:
    guide = publish_guide(config(), [Bound("rtmp", "0.0.0.0", 1935)], ())

    assert guide.obs_server == (f"rtmp://{SOME_HOST}:1935/live",)
    assert guide.notes == ("the relay listens on every interface: use the address of this machine that the "
                           "encoder can reach",)


def test_the_tls_listener_gets_an_rtmps_url_and_the_same_sockets_say_it_once() -> None:
    bound = [Bound("rtmp", "10.0.0.7", 1935), Bound("rtmps", "10.0.0.7", 1936), Bound("rtmps", "10.0.0.7", 1936)]
    guide = publish_guide(config(), bound, MACHINE)

    assert guide.obs_server == ("rtmp://10.0.0.7:1935/live", "rtmps://10.0.0.7:1936/live")
    assert any(note.startswith("rtmps:// is the TLS ingest") for note in guide.notes)


def test_http_off_has_no_status_page_and_says_how_to_turn_it_on() -> None:
    parsed = config(http={"listen": None})
    guide = publish_guide(parsed, [Bound("rtmp", "127.0.0.1", 1935)], MACHINE)

    assert guide.status_page == ()
    assert "Status page: off (set http.listen to turn it on)" in guide.text()


def test_a_token_guarded_page_on_every_interface_names_the_token_but_never_shows_it() -> None:
    parsed = config(http={"listen": "0.0.0.0:8935", "token": TOKEN})
    guide = publish_guide(parsed, [Bound("rtmp", "0.0.0.0", 1935), Bound("http", "0.0.0.0", 8935)], MACHINE)

    assert guide.status_page == ("http://studio-box:8935/", "http://192.168.1.20:8935/")
    assert any("http token" in note for note in guide.notes)
    check_secret_free(guide, parsed)


def test_every_live_stream_is_named_and_no_key_appears() -> None:
    data = base()
    second = {**data["live_streams"][0], "name": "studio-b", "stream_key": INGEST_B, "simulcast_targets": []}
    data["live_streams"].append(second)
    parsed = parse(data)
    guide = publish_guide(parsed, [Bound("rtmp", "127.0.0.1", 1935)], MACHINE)

    assert guide.live_streams == ("studio-a", "studio-b")
    assert guide.fields()["live_streams"] == ["studio-a", "studio-b"]
    assert "one of the live streams studio-a, studio-b" in guide.text()
    assert INGEST_A not in guide.text()
    check_secret_free(guide, parsed)


def test_the_text_reads_as_obs_asks_for_it() -> None:
    guide = publish_guide(config(), [Bound("rtmp", "127.0.0.1", 1935), Bound("http", "127.0.0.1", 8935)], MACHINE)

    lines = guide.text().splitlines()
    assert lines[0] == 'To publish from OBS: Settings > Stream > Service "Custom"'
    assert lines[1] == "  Server      rtmp://127.0.0.1:1935/live"
    assert lines[2] == "  Stream Key  the stream_key of live stream studio-a (from the config; not shown)"
    assert lines[-1] == "Status page: http://127.0.0.1:8935/"
    assert guide.fields() == {"obs_server": ["rtmp://127.0.0.1:1935/live"], "live_streams": ["studio-a"],
                              "status_page": ["http://127.0.0.1:8935/"], "notes": list(guide.notes)}
