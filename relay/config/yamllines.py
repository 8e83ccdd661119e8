"""A YAML file's lines read for their shape only: indentation, list dashes, names, open brackets.

What relay/config/yamlerrors.py needs to tell where a syntax mistake is and what it
is. Nothing of a value is ever given out (only whether a line has one), and a line's
name only when it is one of the names it was told may be shown (the schema's), since
a pasted key could stand where a name should.
"""

from __future__ import annotations

import re
from collections.abc import Container

__all__ = ["Lines"]

# A line's name: `name:` at the start, after any list dashes, followed by a space or the end.
_NAME = re.compile(r"\s*(?:-\s+)*([A-Za-z_][A-Za-z0-9_]*)\s*:(?:\s|$)")


class Lines:
    """A file's lines, read only for their indentation, their names and their punctuation."""

    def __init__(self, text: str, names: Container[str]) -> None:
        self.lines = text.splitlines()
        self.names = names

    def line(self, row: int) -> str:
        return self.lines[row] if 0 <= row < len(self.lines) else ""

    @staticmethod
    def indent(line: str) -> int:
        return len(line) - len(line.lstrip(" "))

    @staticmethod
    def levels_of(line: str) -> list[int]:
        """The indentations a line opens: its own, and its content's after its list dashes (when
        the item's content starts on this line: after `- # comment` the next line sets it)."""
        found = [Lines.indent(line)]
        dashes = re.match(r"( *)((?:- +)+)(?=[^#\s])", line)
        if dashes:
            found.append(len(dashes.group(0)))
        return found

    def is_content(self, row: int) -> bool:
        stripped = self.line(row).strip()
        return bool(stripped) and not stripped.startswith("#")

    def previous(self, row: int) -> int | None:
        """The nearest line above ``row`` with something on it (not blank, not a comment)."""
        row -= 1
        while row >= 0 and not self.is_content(row):
            row -= 1
        return row if row >= 0 else None

    def open_levels(self, row: int) -> list[int]:
        """The indentations the lines above ``row`` make valid for it: the line above's, then its parents'."""
        levels: list[int] = []
        above = self.previous(row)
        while above is not None:
            line_levels = self.levels_of(self.line(above))
            if not levels or min(line_levels) < min(levels):
                levels.extend(level for level in line_levels if level not in levels)
            if min(levels) == 0:
                break
            above = self.previous(above)
        return sorted(levels)

    def open_bracket(self, row: int, column: int) -> tuple[int, int, str] | None:
        """The innermost `[` or `{` still open at (row, column), skipping quotes and comments."""
        stack: list[tuple[int, int, str]] = []
        for at in range(min(row + 1, len(self.lines))):
            line = self.lines[at] if at < row else self.lines[at][:column]
            quote = ""
            for col, char in enumerate(line):
                if quote:
                    quote = "" if char == quote else quote
                elif char in "'\"" and (col == 0 or line[col - 1] in " [{,:"):
                    quote = char
                elif char == "#" and (col == 0 or line[col - 1] == " "):
                    break
                elif char in "[{":
                    stack.append((at, col, char))
                elif char in "]}" and stack:
                    stack.pop()
        return stack[-1] if stack else None

    def name(self, row: int) -> str | None:
        """The line's name, when it is one of the schema's (else it could be anything, a key too)."""
        match = _NAME.match(self.line(row))
        return match.group(1) if match and match.group(1) in self.names else None

    def has_value(self, row: int) -> bool:
        """True when the line's name is followed by a value on the same line (so nothing nests under it)."""
        line = self.line(row)
        match = re.match(r"\s*(?:-\s+)*[^\s#][^#]*?:(?:\s+|$)(.*)$", line)
        if match is None:
            return bool(re.match(r"\s*-\s+\S", line))  # a list item holding a value
        rest = match.group(1).strip()
        return bool(rest) and not rest.startswith("#")

    def spot(self, row: int) -> str:
        """`(check the spaces before `url:`)`, naming the line when its name is the schema's."""
        name = self.name(row)
        if name is None:
            return "check the spaces at the start of the line"
        dash = "- " if self.line(row).lstrip().startswith("-") else ""
        return f"check the spaces before `{dash}{name}:`"
