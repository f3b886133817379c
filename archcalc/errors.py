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

    def __init__(self, message: str, *details: str):
        super().__init__(message)
        self.message = message
        self.details = tuple(details)


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
    text = span.text.rstrip("\n")
    if len(text) > 200:  # a huge line is shown around the column, not whole
        start = max(0, span.column - 60)
        text = text[start:start + 120]
        column, end = span.column - start, min(span.end_column - start, 121)
    else:
        column, end = span.column, span.end_column
    width = max(1, end - column)
    return [f"{pad} |", f"{number} | {text}", f"{pad} | {' ' * (column - 1)}{'^' * width}"]


def did_you_mean(word: str, choices) -> str:
    """A hint naming the closest known word, or '' when nothing is close."""
    choices = sorted(choices)
    same_letters = [c for c in choices if c.lower() == word.lower()]
    close = same_letters or difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""
