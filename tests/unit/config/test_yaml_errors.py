"""A YAML syntax error is said as a person would say it: the line and column to fix, and what to do.

Each malformed file is a real config with one typical hand-editing mistake, next to lines that hold
keys, so that every message is also checked for never quoting the file (a value may be a key).
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.config import ConfigError, parse_config
from relay.config.yamlerrors import explain
from tests.unit.config.support import INGEST_A, SOURCE, YT, assert_no_keys, located, problems_text

# Line numbers on the left are the file's; each case edits some of them.
LINES = [
    "server:",                                       # 1
    "  listen: 0.0.0.0:1935",                        # 2
    "  app: live",                                   # 3
    "live_streams:",                                 # 4
    "  - name: studio-a",                            # 5
    f"    stream_key: {INGEST_A}",                   # 6
    "    simulcast_targets:",                        # 7
    "      - url: rtmp://a.rtmp.youtube.com/live2",  # 8
    f"        stream_key: {YT}",                     # 9
    "        passthrough: YouTube",                  # 10
]

OVER = "this line is indented more than the line above allows"


def text(**changes: str) -> str:
    """The file with line N replaced by changes["lN"]."""
    lines = list(LINES)
    for name, line in changes.items():
        lines[int(name[1:]) - 1] = line
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("changes", "where", "message"), [
    # Indented further than the line above allows (it already has a value).
    ({"l3": "    app: live"}, (3, 5),
     f"{OVER}: `listen:` on line 2 already has a value, so nothing can be nested under it "
     "(check the spaces before `app:`)"),
    ({"l10": "          passthrough: YouTube"}, (10, 11),
     f"{OVER}: `stream_key:` on line 9 already has a value, so nothing can be nested under it "
     "(check the spaces before `passthrough:`)"),
    ({"l2": "  listen: '0.0.0.0:1935'", "l3": "    app: live"}, (3, 5),
     f"{OVER}: `listen:` on line 2 already has a value, so nothing can be nested under it "
     "(check the spaces before `app:`)"),
    # Indented to no level above it.
    ({"l3": " app: live"}, (3, 2),
     "this line is indented by 1 space, which matches none of the lines above it (they use 0 or 2): "
     "line it up with the names it belongs with (check the spaces before `app:`)"),
    ({"l7": "   simulcast_targets:"}, (7, 4),
     "this line is indented by 3 spaces, which matches none of the lines above it (they use 0, 2 or 4): "
     "line it up with the names it belongs with (check the spaces before `simulcast_targets:`)"),
    # A list item at the wrong level.
    ({"l8": "   - url: rtmp://a.rtmp.youtube.com/live2"}, (8, 4),
     "this line is indented by 3 spaces, which matches none of the lines above it (they use 0, 2 or 4): "
     "line it up with the names it belongs with (check the spaces before `- url:`)"),
    ({"l3": "  - app: live"}, (3, 3),
     "a list item (`- `) where the lines above expect `name: value`: a list belongs under a name that "
     "ends with `:`, indented more than that name"),
    ({"l6": f"  stream_key: {INGEST_A}"}, (6, 3),
     "this line lines up with the `- ` of the list items above, so it is neither a new item nor part "
     "of one: indent it by 4 spaces to continue the item above, or start a new item with `- `"),
    # A tab.
    ({"l3": "\tapp: live"}, (3, 1),
     "a tab character: YAML indents with spaces only, and needs a space after `:`; replace the tab "
     "with spaces"),
    # A missing colon, or a missing space after it: said of the line that lacks it.
    ({"l2": "  listen:0.0.0.0:1935"}, (2, 3),
     "this line has no `: ` after its name: write `name: value` (a colon, then a space), or `- value` "
     "for a list item"),
    ({"l3": "  app live"}, (3, 3),
     "this line has no `: ` after its name: write `name: value` (a colon, then a space), or `- value` "
     "for a list item"),
    # An unclosed quote: said where it opens, not at the end of the file where PyYAML gives up.
    ({"l6": f'    stream_key: "{INGEST_A}'}, (6, 17),
     'this double quote (`"`) is never closed: end the value with the same quote, on the same line'),
    ({"l10": "        passthrough: 'YouTube"}, (10, 22),
     "this single quote (`'`) is never closed: end the value with the same quote, on the same line"),
    # Mapping values are not allowed here: a ": " inside a plain value.
    ({"l10": "        passthrough: YouTube: main"}, (10, 29),
     "the value of `passthrough:` holds a colon followed by a space (`: `), which YAML reads as another "
     "name: put the value in quotes"),
    # After a quoted value.
    ({"l10": "        passthrough: 'YouTube' main"}, (10, 32),
     "something follows a complete value on this line: after a quoted value only a comment (`# ...`) "
     "may follow; put the whole value inside the quotes"),
    # An unclosed bracket: said where it opens.
    ({"l7": "    simulcast_targets: ["}, (7, 24),
     "this `[` is not closed where expected (YAML was lost at line 8, column 7): close it with `]`, and "
     "put a comma between its items"),
    ({"l1": "server: {listen: '0.0.0.0:1935',", "l2": "", "l3": "  app: live"}, (1, 9),
     "this `{` is not closed where expected (YAML was lost at line 4, column 13): close it with `}`, and "
     "put a comma between its items"),
    # A backslash in double quotes (a Windows path).
    ({"l10": '        passthrough: "C:\\keys\\yt"'}, (10, 25),
     "a backslash inside double quotes starts an escape (`\\n`, `\\t`, `\\\\`...), and this one is not "
     "one: use single quotes for text with backslashes, or write each backslash as `\\\\`"),
    # A list item on its name's line.
    ({"l7": "    simulcast_targets: - url: rtmp://h/app"}, (7, 24),
     "a list item (`- `) cannot start on the same line as its name: put it on the next line, indented "
     "under the name"),
    # Reserved characters.
    ({"l3": "  app: @live"}, (3, 8),
     "a value cannot start with `@` or a backquote, which YAML reserves: put the value in quotes"),
    # Text before the first name: the file's first line is read as the whole document.
    ({"l1": "'relay config'", "l2": "server:", "l3": "  listen: 0.0.0.0:1935"}, (1, 1),
     "the config starts here, and this line is not `name: value`, so YAML reads it as the whole file's value "
     "and nothing may follow it: make it a comment (`#`) or `name: value`"),
    ({"l1": "%TAG ! tag:example.com,2000:", "l2": "server:", "l3": "  listen: 0.0.0.0:1935"}, (1, 1),
     "a line starting with `%` is a YAML directive, which needs a `---` line after it: if it is a comment, "
     "start it with `#`"),
    # A name left out: a line starting with its colon.
    ({"l3": "  : live"}, (3, 3), "a `:` with no name before it: write `name: value`"),
    # A list item's first name on the line after `- # comment`, indented one space too far.
    ({"l5": "  - # the studio", "l6": f"     stream_key: {INGEST_A}"}, (7, 5),
     "this line is indented by 4 spaces, which matches none of the lines above it (they use 0, 2 or 5): "
     "line it up with the names it belongs with (check the spaces before `simulcast_targets:`)"),
    # A missing ": " found only at the next name (the value ran on into it).
    ({"l9": "        passthrough:YouTube", "l10": f"        stream_key: {YT}"}, (9, 9),
     "this line has no `: ` after its name: write `name: value` (a colon, then a space), or `- value` "
     "for a list item"),
    ({"l2": "  listen:0.0.0.0:1935\n  # The app publishers use."}, (2, 3),
     "this line has no `: ` after its name: write `name: value` (a colon, then a space), or `- value` "
     "for a list item"),
    ({"l4": "---\nlive_streams:"}, (4, 1),
     "a second YAML document starts here (a `---` line): the config is one document; remove the line, "
     "and merge what follows into the rest"),
])
def test_a_syntax_error_is_said_in_plain_words_at_its_line(
        changes: dict[str, str], where: tuple[int, int], message: str) -> None:
    (problem,) = problems_text(text(**changes))  # also checks that no key is in it
    assert problem.startswith(f"{SOURCE}:")
    line, column, rest = located(problem)
    assert rest == f"invalid YAML: {message}"
    assert (line, column) == where


@pytest.mark.parametrize("changes", [
    {"l3": "    app: live"}, {"l3": " app: live"}, {"l2": "  listen:0.0.0.0:1935"},
    {"l10": "        passthrough: YouTube: main"}, {"l6": f"  stream_key: {INGEST_A}"},
])
def test_no_message_uses_pyyaml_token_names(changes: dict[str, str]) -> None:
    (problem,) = problems_text(text(**changes))
    for token in ("<block end>", "<block mapping start>", "<scalar>", "while parsing", "while scanning"):
        assert token not in problem


def test_a_name_that_is_not_the_schemas_is_never_shown() -> None:
    # A key pasted where a name should be, indented wrong: the message must not say it.
    pasted = f"  {INGEST_A}: x\n"
    (problem,) = problems_text("server:\n  app: live\n" + pasted.replace("  ", "    ", 1))
    assert located(problem)[:2] == (3, 5)
    assert "check the spaces at the start of the line" in problem


def test_a_name_is_shown_only_when_given_as_a_schema_name() -> None:
    body = "server:\n  app: live\n    listen: x\n"
    try:
        yaml.compose(body, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        assert "`listen:`" in explain(err, body, {"app", "listen"}).message
        assert "`" + "listen:`" not in explain(err, body, ()).message
    else:
        pytest.fail("the text should not parse")


def test_an_unrecognised_error_is_said_in_words_too() -> None:
    (problem,) = problems_text("- # an item left empty\nserver: x\n")
    line, _, rest = located(problem)
    assert line == 2
    assert rest == ("invalid YAML: expected a value, but found a `name: value` line (in the value that starts "
                    "at line 2, column 1)")


@given(st.lists(st.sampled_from([
    "server:", "  listen: 0.0.0.0:1935", "   app: live", "\tapp: live", "live_streams:", "  - name: a",
    "    stream_key: " + INGEST_A, "  stream_key: " + INGEST_A, "      - url: rtmp://h/app", "  - # item",
    f"    stream_key: '{INGEST_A}", f'    stream_key: "{INGEST_A}', f"    stream_key: [{INGEST_A}",
    f"    stream_key: {{a: {INGEST_A}", f"    stream_key: {INGEST_A}: x", f"  {INGEST_A}:", f"{INGEST_A}",
    "# comment", "", "---", ": x", "- ", "%TAG ! x", "    name:x", "  url rtmp://h:1/app",
]), min_size=1, max_size=12))
@settings(max_examples=300, deadline=None)
def test_any_malformed_file_gets_plain_words_and_never_its_text(lines: list[str]) -> None:
    try:
        parse_config("\n".join(lines) + "\n", SOURCE, environ={})
    except ConfigError as err:
        # (Schema problems name an unknown field as written unless it is a known key: not this test's.)
        for problem in (p for p in err.problems if "invalid YAML" in p):
            assert_no_keys(problem)
            for token in ("<block", "<scalar>", "<stream", "while parsing", "while scanning"):
                assert token not in problem, problem
