"""Every problem names its file, line:column and path, as people edit this file by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.config import ConfigError, load_config
from tests.unit.config.support import FB, INGEST_A, SOURCE, TW, YT, assert_no_keys, problems_text

# Line numbers on the left are the file's; the test edits lines of this text.
LINES = [
    "server:",                                                # 1
    "  listen: 0.0.0.0:1935",                                 # 2
    "  app: live",                                            # 3
    "live_streams:",                                          # 4
    "  - name: studio-a",                                     # 5
    f"    stream_key: {INGEST_A}",                            # 6
    "    simulcast_targets:",                                 # 7
    "      - url: rtmp://a.rtmp.youtube.com/live2",           # 8
    f"        stream_key: {YT}",                              # 9
    "      - url: rtmp://live.twitch.tv/app",                 # 10
    f"        stream_key: {TW}",                              # 11
    "        passthrough: Twitch",                            # 12
    "      - passthrough: Facebook",                          # 13
    "        url: rtmps://live-api-s.facebook.com:443/rtmp/",  # 14
    f"        stream_key: {FB}",                              # 15
]


def text(**changes: str) -> str:
    """The file with line N replaced by changes["lN"] (an empty string deletes the line)."""
    lines = list(LINES)
    for name, line in changes.items():
        lines[int(name[1:]) - 1] = line
    return "\n".join(line for line in lines if line != "") + "\n"


@pytest.mark.parametrize(("changes", "problem"), [
    ({"l14": "        url: ftp://live-api-s.facebook.com/rtmp/"},
     "14:14: live_streams[0].simulcast_targets[2].url: must start with rtmp:// or rtmps://"),
    # A value's problem points at the value...
    ({"l2": "  listen: 1935"}, "2:11: server.listen: must be a string, not a number (put it in quotes)"),
    ({"l6": "    stream_key: 12345678901234567890"},
     "6:17: live_streams[0].stream_key: must be a string, not a number (put it in quotes)"),
    # ...an unknown field at its key...
    ({"l3": "  ap: live"}, "3:3: server.ap: unknown field (did you mean app?)"),
    # ...a missing one at the mapping that lacks it...
    ({"l14": ""}, "13:9: live_streams[0].simulcast_targets[2].url: required field missing"),
    ({"l5": "  - reconnect_window: 5"}, "5:5: live_streams[0].name: required field missing"),
    # ...and a problem with a whole item at the item.
    ({"l15": ""}, ("13:9: live_streams[0].simulcast_targets[2]: needs exactly one of stream_key, "
                   "stream_key_file, stream_key_env")),
    ({"l12": "        passthrough: Facebook"},
     ("13:22: live_streams[0].simulcast_targets[2].passthrough: duplicate passthrough label (also "
      "simulcast_targets[1]); give each target its own")),
    ({"l3": "  app: live\n  limits: []"}, "4:11: server.limits: must be a mapping, not a list"),
    ({"l3": "  app: live\n  limits: {max_connections: 1e306}"},
     "4:29: server.limits.max_connections: must be a whole number from 1 to 100000"),
])
def test_each_problem_is_placed(changes: dict[str, str], problem: str) -> None:
    assert problems_text(text(**changes)) == (f"{SOURCE}:{problem}",)


def test_a_seventh_target_is_reported_where_it_starts() -> None:
    extra = [f"      - url: rtmp://ingest{i}.example.com/live\n        stream_key: k{i}-0123456789abcdef"
             for i in range(4)]
    (problem,) = problems_text(text() + "\n".join(extra) + "\n")
    assert problem == (f"{SOURCE}:22:9: live_streams[0].simulcast_targets[6]: at most 6 simulcast targets "
                       "per live stream (the limit Mux's Simulcast API sets); this live stream has 7")


def test_a_check_across_fields_blames_the_field_it_names(tmp_path: Path) -> None:
    found = problems_text(text(l3="  app: live\n  tls_listen: 0.0.0.0:1936\n  tls_key_file: key.pem"))
    # tls_cert_file is missing: placed at the server mapping; the key file at its value.
    assert found[0] == f"{SOURCE}:2:3: server.tls_cert_file: required field missing (tls_listen needs it)"
    assert found[1].startswith(f"{SOURCE}:5:17: server.tls_key_file: cannot read the key file")


def test_problems_come_in_file_order_with_the_file_as_given(tmp_path: Path) -> None:
    path = tmp_path / "relay.yaml"
    path.write_text(text(l14="        url: ftp://x/y", l2="  listen: nowhere", l9="        stream_key: ''"))
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.problems == (
        f"{path}:2:11: server.listen: must be HOST:PORT, e.g. 0.0.0.0:1935 ([::]:1935 for IPv6)",
        f"{path}:9:21: live_streams[0].simulcast_targets[0].stream_key: gives an empty key",
        f"{path}:14:14: live_streams[0].simulcast_targets[2].url: must start with rtmp:// or rtmps://",
    )
    assert_no_keys(str(info.value))


def test_a_good_file_has_no_problems() -> None:
    from relay.config import parse_config

    config = parse_config(text(), SOURCE, environ={})
    assert [t.passthrough for t in config.live_streams[0].simulcast_targets] == [
        "a.rtmp.youtube.com", "Twitch", "Facebook"]
