"""PyYAML's syntax errors -> one plain sentence, placed where the person should look.

PyYAML speaks its parser's language ("expected <block end>, but found '<block
mapping start>'") and points where the parser gave up, which is often a line
after the mistake. The common mistakes in a hand-edited config are few: a line
indented too far or to no level above it, a tab, a missing ": " after a name, a
value holding ": ", an unclosed quote or bracket, a list item where keys are
expected. Each is recognised here from PyYAML's problem and context words plus
the indentation of the lines around it, and said the way a person would say it,
at the line that needs the fix.

Nothing here quotes the file: a value may be a stream key. A line's name (what
stands before its ":") is shown only when it is one of the schema's field names,
since a pasted key could stand where a name should; the characters named are
YAML's own punctuation, never the user's text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

import yaml

from relay.config.yamllines import Lines

__all__ = ["Explained", "explain"]


@dataclass(frozen=True, slots=True)
class Explained:
    """Where to look (1-based line and column) and what is wrong, in words."""

    line: int
    column: int
    message: str


# PyYAML's token names, and the punctuation it quotes, in words.
_TOKENS = {
    "<block end>": "the end of the indented block", "<block mapping start>": "a nested `name: value` line",
    "<block sequence start>": "a list item", "<scalar>": "a value", "<stream end>": "the end of the file",
    "<document start>": "a `---` line", "<document end>": "a `...` line", "?": "a `name: value` line",
    "-": "a list item (`- `)", ",": "`,`", ":": "`:`", "[": "`[`", "]": "`]`", "{": "`{`", "}": "`}`",
    "<flow mapping start>": "`{`", "<flow sequence start>": "`[`", "<flow mapping end>": "`}`",
    "<flow sequence end>": "`]`",
}
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")
# PyYAML's contexts, for the errors no rule above explains.
_PHRASES = {
    "while parsing a block mapping": "in the block of `name: value` lines that starts",
    "while parsing a block collection": "in the list that starts",
    "while parsing a block node": "in the value that starts",
    "while parsing a flow mapping": "in the `{...}` that starts",
    "while parsing a flow sequence": "in the `[...]` that starts",
    "while parsing a flow node": "in the `[...]` or `{...}` that starts",
    "while parsing a node": "in the value that starts",
    "while scanning a simple key": "in the name that starts",
    "while scanning a plain scalar": "in the value that starts",
    "while scanning a quoted scalar": "in the quoted value that starts",
    "while scanning a double-quoted scalar": "in the quoted value that starts",
    "while scanning a block scalar": "in the `|` or `>` text that starts",
    "the node content": "a value",
}


def _mark(mark: Any) -> tuple[int, int]:
    """A PyYAML mark (pure or C) as 0-based (row, column)."""
    return (mark.line, mark.column) if mark is not None else (0, 0)


def _at(row: int, column: int, message: str) -> Explained:
    return Explained(row + 1, column + 1, message)


def _spaces(count: int) -> str:
    return f"{count} space{'s' * (count != 1)}"


def _or(levels: list[int]) -> str:
    words = [str(level) for level in levels]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _no_colon(text: Lines, row: int) -> Explained:
    return _at(row, text.indent(text.line(row)), "this line has no `: ` after its name: write `name: value` "
               "(a colon, then a space), or `- value` for a list item")


def _ran_on(text: Lines, row: int) -> Explained | None:
    """The line above ``row`` lacks its ": ", so YAML read it as one value running on into ``row``.

    A list item of one word (`- value`) is whole: then ``row`` is the line out of place."""
    above = text.previous(row)
    if above is None:
        return None
    line = text.line(above)
    if re.search(r":(?:\s|$)", line) or re.fullmatch(r"\s*-\s+\S*\s*", line):
        return None
    return _no_colon(text, above)


def _indentation(text: Lines, row: int) -> Explained | None:
    """A line indented further than the line above allows, or to a level no line above has."""
    line = text.line(row)
    indent = text.indent(line)
    above = text.previous(row)
    if above is None:
        return None
    deepest = max(text.levels_of(text.line(above)))
    if indent > deepest:
        if text.has_value(above):
            owner = text.name(above)
            what = f"`{owner}:` on line {above + 1}" if owner else f"line {above + 1}"
            return _at(row, indent, f"this line is indented more than the line above allows: {what} already "
                                    f"has a value, so nothing can be nested under it ({text.spot(row)})")
        return _at(row, indent, f"this line is indented more than the lines above it expect ({text.spot(row)})")
    levels = text.open_levels(row)
    if indent not in levels:
        return _at(row, indent, f"this line is indented by {_spaces(indent)}, which matches none of the lines "
                                f"above it (they use {_or(levels)}): line it up with the names it belongs "
                                f"with ({text.spot(row)})")
    return None


def _block_end(err: yaml.MarkedYAMLError, text: Lines) -> Explained | None:
    """"expected <block end>, but found X": something where the indented block should have ended."""
    row, column = _mark(err.problem_mark)
    quoted = _QUOTED.search(err.problem or "")
    found = quoted.group(1) if quoted else None
    line = text.line(row)
    if line[text.indent(line):column].strip(" -"):  # a value came first on this same line
        return _at(row, column, "something follows a complete value on this line: after a quoted value "
                                "only a comment (`# ...`) may follow; put the whole value inside the quotes")
    if found == ":":
        return _at(row, column, "a `:` with no name before it: write `name: value`")
    placed = _ran_on(text, row) if found == "<block mapping start>" else None
    placed = placed or _indentation(text, row)
    if placed is not None:
        return placed
    indent = text.indent(line)
    if found in ("-", "<block sequence start>"):
        return _at(row, indent, "a list item (`- `) where the lines above expect `name: value`: a list belongs "
                                "under a name that ends with `:`, indented more than that name")
    context_row, context_column = _mark(err.context_mark)
    if found in ("?", "<block mapping start>") and "collection" in (err.context or "") and indent == context_column:
        item = max(text.levels_of(text.line(context_row)))
        return _at(row, indent, "this line lines up with the `- ` of the list items above, so it is neither a "
                                f"new item nor part of one: indent it by {_spaces(item)} to continue the item "
                                "above, or start a new item with `- `")
    return None


def _mapping_value(err: yaml.MarkedYAMLError, text: Lines) -> Explained | None:
    """"mapping values are not allowed here": a `: ` YAML cannot take as the start of a value."""
    row, column = _mark(err.problem_mark)
    line = text.line(row)
    start = re.match(r"\s*(?:-\s+)*", line)
    head = line[start.end() if start else 0:column]
    if re.search(r":(?:\s|$)", head):  # the line's own name came before: this ": " is inside the value
        owner = text.name(row)
        value = f"the value of `{owner}:`" if owner else "the value"
        return _at(row, column, f"{value} holds a colon followed by a space (`: `), which YAML reads as "
                                "another name: put the value in quotes")
    ran_on = _ran_on(text, row)
    if ran_on is not None:
        return ran_on
    return _indentation(text, row) or _at(row, column, "a `: ` where YAML does not expect a name: check the "
                                                       "indentation of this line, or put its value in quotes")


def _tab(err: yaml.MarkedYAMLError, text: Lines) -> Explained:
    row, column = _mark(err.problem_mark)
    return _at(row, column, "a tab character: YAML indents with spaces only, and needs a space after `:`; "
                            "replace the tab with spaces")


def _cannot_start(err: yaml.MarkedYAMLError, text: Lines) -> Explained:
    row, column = _mark(err.problem_mark)
    if text.line(row)[column:column + 1] in ("@", "`"):
        return _at(row, column, "a value cannot start with `@` or a backquote, which YAML reserves: put the "
                                "value in quotes")
    return _at(row, column, "a value cannot start with this character: put the value in quotes")


def _unclosed_quote(err: yaml.MarkedYAMLError, text: Lines) -> Explained:
    row, column = _mark(err.context_mark)
    quote = {'"': "double quote (`\"`)", "'": "single quote (`'`)"}.get(text.line(row)[column:column + 1], "quote")
    return _at(row, column, f"this {quote} is never closed: end the value with the same quote, on the same line")


def _unclosed_bracket(err: yaml.MarkedYAMLError, text: Lines) -> Explained | None:
    lost_row, lost_column = _mark(err.problem_mark)
    if "flow node" in (err.context or ""):  # PyYAML names where it gave up, not the bracket
        found = text.open_bracket(lost_row, lost_column)
        if found is None:
            return None
        row, column, opener = found
    else:
        row, column = _mark(err.context_mark)
        opener = "[" if "sequence" in (err.context or "") else "{"
    close = "]" if opener == "[" else "}"
    return _at(row, column, f"this `{opener}` is not closed where expected (YAML was lost at line "
                            f"{lost_row + 1}, column {lost_column + 1}): close it with `{close}`, and put a "
                            "comma between its items")


def _simple_key(err: yaml.MarkedYAMLError, text: Lines) -> Explained:
    return _no_colon(text, _mark(err.context_mark)[0])


def _escape(err: yaml.MarkedYAMLError, text: Lines) -> Explained:
    row, column = _mark(err.problem_mark)
    if text.line(row)[column - 1:column] == "\\":
        column -= 1  # PyYAML points after the backslash
    return _at(row, column, "a backslash inside double quotes starts an escape (`\\n`, `\\t`, `\\\\`...), and "
                            "this one is not one: use single quotes for text with backslashes, or write each "
                            "backslash as `\\\\`")


def _entry_here(err: yaml.MarkedYAMLError, text: Lines) -> Explained:
    row, column = _mark(err.problem_mark)
    if re.search(r":\s", text.line(row)[:column]):
        return _at(row, column, "a list item (`- `) cannot start on the same line as its name: put it on the "
                                "next line, indented under the name")
    return _indentation(text, row) or _at(row, column, "a list item (`- `) is not allowed here: check the "
                                                       "indentation of this line")


def _another_document(err: yaml.MarkedYAMLError, text: Lines) -> Explained:
    row, column = _mark(err.problem_mark)
    return _at(row, column, "a second YAML document starts here (a `---` line): the config is one document; "
                            "remove the line, and merge what follows into the rest")


def _document_start(err: yaml.MarkedYAMLError, text: Lines) -> Explained | None:
    """The file's first content was read as a whole document (a value, a directive), so nothing may follow."""
    first = next((row for row in range(len(text.lines)) if text.is_content(row)), None)
    if first is None:
        return None
    column = text.indent(text.line(first))
    if text.line(first).lstrip().startswith("%"):
        return _at(first, column, "a line starting with `%` is a YAML directive, which needs a `---` line "
                                  "after it: if it is a comment, start it with `#`")
    return _at(first, column, "the config starts here, and this line is not `name: value`, so YAML reads it as "
                              "the whole file's value and nothing may follow it: make it a comment (`#`) or "
                              "`name: value`")


def _after_value(err: yaml.MarkedYAMLError, text: Lines) -> Explained:
    row, column = _mark(err.problem_mark)
    return _at(row, column, "only a comment (`# ...`) may follow here on this line")


_Rule = Callable[[yaml.MarkedYAMLError, Lines], Explained | None]
# (words PyYAML's problem starts with, words its context holds, rule); the first match that answers wins.
_RULES: tuple[tuple[str, str, _Rule], ...] = (
    ("found character '\\t'", "", _tab),
    ("found a tab character", "", _tab),
    ("found character", "", _cannot_start),
    ("found unexpected end of stream", "quoted scalar", _unclosed_quote),
    ("found unexpected document separator", "quoted scalar", _unclosed_quote),
    ("expected ',' or", "flow", _unclosed_bracket),
    ("expected the node content", "flow node", _unclosed_bracket),
    ("invalid indentation or unclosed", "", _unclosed_bracket),
    ("could not find expected ':'", "simple key", _simple_key),
    ("mapping values are not allowed here", "", _mapping_value),
    ("expected <block end>", "", _block_end),
    ("sequence entries are not allowed here", "", _entry_here),
    ("found unknown escape character", "", _escape),
    ("expected escape sequence", "", _escape),
    ("but found another document", "", _another_document),
    ("expected a comment or a line break", "", _after_value),
    ("expected '<document start>'", "", _document_start),
)


def _words(text: str) -> str:
    """PyYAML's own words with its token names said plainly and any quoted text of the file left out."""
    def token(match: re.Match[str]) -> str:
        return _TOKENS.get(match.group(1), "a character")

    text = _QUOTED.sub(token, text)
    for name, said in _TOKENS.items():
        if name.startswith("<"):
            text = text.replace(name, said)
    for phrase, said in _PHRASES.items():
        text = text.replace(phrase, said)
    return re.sub(r"while (?:parsing|scanning|composing|constructing) an? ", "in the ", text)


def explain(err: yaml.MarkedYAMLError, text: str, names: Container[str] = ()) -> Explained:
    """What is wrong with ``text``, where, in words; ``names`` are the names that may be shown."""
    problem = err.problem or ""
    lines = Lines(text, names)
    for starts, holds, rule in _RULES:
        if problem.startswith(starts) and holds in (err.context or ""):
            found = rule(err, lines)
            if found is not None:
                return found
    row, column = _mark(err.problem_mark)
    said = _words(problem)
    if err.context and err.context_mark is not None:
        context_row, context_column = _mark(err.context_mark)
        said += f" ({_words(err.context)} at line {context_row + 1}, column {context_column + 1})"
    elif err.context:
        said += f" ({_words(err.context)})"
    return _at(row, column, said)
