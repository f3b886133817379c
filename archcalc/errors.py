"""The one exception users see, and how it is printed.

Rules raise a short `RuleError`; the stage that knows the layer turns it into a located
`SpecError` (``file:line:col``, the source line with a caret, the layer, the arithmetic).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """Where a piece of a spec stands: 1-based line and column, the end on the same line."""
    file: str
    line: int
    column: int
    end_column: int
    text: str  # the whole source line, for the caret display

    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class RuleError(Exception):
    """A layer rule failed: a short message plus the arithmetic that shows why."""

    def __init__(self, message: str, *details: str, argument: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = tuple(details)
        self.argument = argument  # the hyperparameter at fault, to point the caret at it


class SpecError(Exception):
    """A located error in a spec or in how it is used; `str()` is the full user message."""

    def __init__(self, message: str, span: Span | None = None, details: tuple[str, ...] = ()):
        self.message = message
        self.span = span
        self.details = tuple(details)
        super().__init__(self.render())

    def render(self) -> str:
        head = f"error: {self.message}"
        lines = [f"{self.span.where()}: {head}" if self.span else head]
        if self.span:
            lines += caret_lines(self.span)
        lines += [f"  = {d}" for d in self.details]
        return "\n".join(lines)


def caret_lines(span: Span) -> list[str]:
    number = str(span.line)
    pad = " " * len(number)
    text = span.text.rstrip("\r\n")
    if len(text) > 200:  # a huge line is shown around the column, not whole
        start = max(0, span.column - 60)
        head, tail = ("..." if start else ""), ("..." if start + 120 < len(text) else "")
        text = head + text[start:start + 120] + tail
        column = span.column - start + len(head)
        end = min(span.end_column - start, 121) + len(head)
    else:
        column, end = span.column, span.end_column
    text = printable(text)
    width = max(1, end - column)
    indent = "".join("\t" if c == "\t" else " " for c in text[:column - 1])  # tabs stay aligned
    return [f"{pad} |", f"{number} | {text}", f"{pad} | {indent}{'^' * width}"]


def printable(text: str) -> str:
    """The source line as shown: control characters (a comment may hold terminal escapes)
    become '?', one for one, so the caret stays under the right column."""
    return "".join("?" if (ord(c) < 32 and c != "\t") or 127 <= ord(c) < 160 else c for c in text)


def did_you_mean(word: str, choices) -> str:
    """A hint naming the closest known word, or '' when nothing is close."""
    if len(word) > 100:  # no one misspells a hundred letters; difflib would only take time
        return ""
    choices = sorted(choices)
    same_letters = [c for c in choices if c.lower() == word.lower()]
    close = same_letters or difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""
