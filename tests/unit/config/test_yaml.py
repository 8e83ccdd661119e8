"""The YAML layer: nothing expands (anchors, aliases, merge keys), sizes and depths are capped."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from relay.config import ConfigError, load_config, parse_config
from relay.config.yamlsource import MAX_CONFIG_BYTES, MAX_DEPTH, read_yaml
from tests.unit.config.support import INGEST_A, SOURCE, YT, problems_text

GOOD = f"""\
server:
  listen: "0.0.0.0:1935"
live_streams:
  - name: studio-a
    stream_key: "{INGEST_A}"
    simulcast_targets:
      - url: "rtmp://a.rtmp.youtube.com/live2"
        stream_key: "{YT}"
"""


def billion_laughs(levels: int = 9) -> str:
    """The classic alias bomb: 9 levels of 9 references, 9**9 strings once expanded."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_the_bomb_is_a_real_one() -> None:
    # What safe_load would hand to validation: 9**10 leaves behind a 1 KB file. Only the shape is
    # checked (10 references deep), never walked: walking it is what takes seconds.
    data = yaml.safe_load(billion_laughs())
    node = data["a9"]
    for _ in range(10):
        assert len(node) == 9
        node = node[0]
    assert node == "lol"
    assert len(billion_laughs()) < 1024


def test_an_alias_bomb_is_refused_at_its_first_anchor() -> None:
    # The loader stops at the first anchor, before composing anything that refers to it, so the
    # bomb costs what its first line costs.
    assert problems_text(billion_laughs()) == (
        f"{SOURCE}:1:5: invalid config: YAML anchors (&name) are not allowed; write the value out "
        "where it is used",)


def test_a_bomb_as_a_list_of_targets_is_refused(tmp_path: Path) -> None:
    # The N**2 targets: one anchored target, lists of aliases to it.
    text = GOOD + "    extra: &t {url: 'rtmp://h/app', stream_key: x}\n    more: [*t, *t, *t, *t]\n"
    (tmp_path / "bomb.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "bomb.yaml", environ={})
    assert info.value.problems == (
        f"{tmp_path / 'bomb.yaml'}:9:12: invalid config: YAML anchors (&name) are not allowed; write the "
        "value out where it is used",)


@pytest.mark.parametrize(("text", "where", "what"), [
    ("a: *nowhere\n", "1:4", "YAML aliases (*name) are not allowed"),
    ("server: &s {app: live}\n", "1:9", "YAML anchors (&name) are not allowed"),
    ("server:\n  <<: {app: live}\n", "2:3", "YAML merge keys (<<) are not allowed"),
    ("live_streams: [!!python/object:os.system {}]\n", "1:16", "YAML tags (!name) are not allowed here"),
    ("server: !custom {app: live}\n", "1:9", "YAML tags (!name) are not allowed here"),
    ("server: !!set {app}\n", "1:9", "YAML tags (!name) are not allowed here"),
    ("server: {app: !x live}\n", "1:15", "YAML tags (!name) are not allowed here"),
    (f"live_streams: [{{stream_key: !!int {INGEST_A}}}]\n", "1:29", "a value cannot be read as its tagged type"),
    ("server: {? [a, b] : c}\n", "1:12", "a key must be a plain name, not a list or mapping"),
])
def test_what_yaml_could_expand_or_construct_is_refused_where_it_is(text: str, where: str, what: str) -> None:
    (problem,) = problems_text(text)
    assert problem.startswith(f"{SOURCE}:{where}: invalid config: {what}"), problem


def test_nesting_is_capped_without_recursion_errors() -> None:
    (problem,) = problems_text("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert problem == f"{SOURCE}:1:{MAX_DEPTH + 1}: invalid config: nested more than {MAX_DEPTH} levels deep"
    # Far deeper than Python's recursion limit: refused at the cap, not by a RecursionError.
    (problem,) = problems_text("{a: " * 50_000)
    assert f"nested more than {MAX_DEPTH} levels deep" in problem
    (problem,) = problems_text("[" * 100_000)
    assert "nested more than" in problem


def test_nesting_up_to_the_cap_is_read() -> None:
    text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    data = read_yaml(text, SOURCE).data
    for _ in range(MAX_DEPTH - 1):
        assert isinstance(data, list)
        data = data[0]
    assert data == []


def test_the_file_size_is_capped(tmp_path: Path) -> None:
    big = GOOD + "#" * MAX_CONFIG_BYTES + "\n"
    assert problems_text(big) == (f"{SOURCE}: the config file is over 1 MiB; a config is a few kilobytes",)
    path = tmp_path / "big.yaml"
    path.write_text(big)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert info.value.problems == (f"{path}: the config file is over 1 MiB; a config is a few kilobytes",)
    # Just under the cap is read (and here, all comments, empty).
    path.write_text("#" * (MAX_CONFIG_BYTES - 1) + "\n")
    with pytest.raises(ConfigError, match="the config file is empty"):
        load_config(path, environ={})


def test_a_fifo_as_the_config_file_does_not_block(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "relay.yaml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError) as info:
        load_config(fifo, environ={})
    assert info.value.problems == (f"{fifo}: cannot read the config file: not a regular file",)


def test_control_characters_are_reported_without_quoting() -> None:
    (problem,) = problems_text(f"server: {{app: live}}\nkey: {INGEST_A}\x07\n")
    assert problem == (f"{SOURCE}: invalid YAML: the file holds a character YAML does not allow "
                       "(a control character?)")


def test_yaml_12_exponents_are_numbers_so_the_range_check_answers() -> None:
    for written in ("1e306", "1.0e+306", "1E306"):
        data = read_yaml(f"x: {written}\n", SOURCE).data
        assert data == {"x": 1e306}
    assert read_yaml("x: 1e999\n", SOURCE).data == {"x": float("inf")}
    # Strings that merely look alike stay strings.
    assert read_yaml("x: 1e\ny: e5\nz: live_1e3\n", SOURCE).data == {"x": "1e", "y": "e5", "z": "live_1e3"}


def test_keys_are_names_as_written() -> None:
    doc = read_yaml("1935: a\nyes: b\n~: c\n'quoted': d\n", SOURCE)
    assert doc.data == {"1935": "a", "yes": "b", "~": "c", "quoted": "d"}
    assert problems_text("server: {1935: x}\n" + GOOD.split("\n", 2)[2])[0].endswith(
        "server.1935: unknown field")


def test_positions_of_values_and_keys() -> None:
    doc = read_yaml(GOOD, SOURCE)
    assert doc.position(()) == (1, 1)
    assert doc.position(("server", "listen")) == (2, 11)
    assert doc.position(("server", "listen"), at_key=True) == (2, 3)
    assert doc.position(("live_streams", 0)) == (4, 5)
    assert doc.position(("live_streams", 0, "simulcast_targets", 0, "url")) == (7, 14)
    # Not written: the nearest written parent.
    assert doc.position(("live_streams", 0, "simulcast_targets", 0, "passthrough")) == (7, 9)
    assert doc.position(("nowhere", "at", "all")) == (1, 1)


def test_duplicates_anywhere_are_each_reported_with_their_path() -> None:
    text = GOOD.replace('  listen: "0.0.0.0:1935"\n', '  listen: "0.0.0.0:1935"\n  listen: "[::]:1935"\n')
    text = text.replace("      - url:", "      - passthrough: a\n        passthrough: b\n        url:")
    assert problems_text(text) == (
        f"{SOURCE}:3:3: server.listen: duplicate key; the later one would silently win",
        (f"{SOURCE}:9:9: live_streams[0].simulcast_targets[0].passthrough: duplicate key; the later one "
         "would silently win"),
    )


def test_duplicates_are_reported_with_the_schema_problems() -> None:
    text = GOOD.replace('  listen: "0.0.0.0:1935"\n', '  listen: "0.0.0.0:1935"\n  listen: nowhere\n')
    found = problems_text(text)
    assert found == (
        f"{SOURCE}:3:3: server.listen: duplicate key; the later one would silently win",
        f"{SOURCE}:3:11: server.listen: must be HOST:PORT, e.g. 0.0.0.0:1935 ([::]:1935 for IPv6)",
    )


def test_parse_config_reads_a_good_text() -> None:
    config = parse_config(GOOD, SOURCE, environ={})
    assert config.live_streams[0].simulcast_targets[0].stream_key.reveal() == YT
