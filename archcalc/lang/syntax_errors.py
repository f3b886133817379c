"""Syntax errors that say what was expected, in the user's terms.

LALR's own 'expected' set is taken after the reductions lark makes on the bad token, and lists
terminals that would fail a step later (after `f= c` it offered ')' and '{'). Instead the text
is parsed again up to the bad token, and the parser is asked which terminals it really
`accepts()` there; the tokens on its stack say what the user was writing: a value after 'f=',
a source after '<-', a repeat count. Unclosed brackets are named with their position."""
from __future__ import annotations

import lark

from ..errors import Span, SpecError, did_you_mean

VALUE_START = {"NAME", "NUMBER", "LPAR", "LSQB"}
OPERATOR_TERMINALS = {"PLUS", "MINUS", "STAR", "SLASH", "__ANON_1"}
OPENERS = {"LPAR": ")", "LSQB": "]", "LBRACE": "}"}
KEYWORDS = ("block", "network", "repeat")
ORDER = ("COLON", "__ANON_0", "EQUAL", "DOT", "COMMA", "RPAR", "RSQB", "LBRACE", "RBRACE",
         "BLOCK", "NETWORK", "REPEAT", "_SEP", "$END")


def _display(parser) -> dict:
    """Terminal name -> how a message names it: "'<-'", 'end of line'."""
    shown = {"NAME": "a name", "NUMBER": "a number", "_SEP": "end of line", "$END": "end of file"}
    for t in parser.terminals:
        if isinstance(t.pattern, lark.lexer.PatternStr):
            shown[t.name] = f"'{t.pattern.value}'"
    return shown


def syntax_error(parser, text, e, file, lines) -> SpecError:
    """The located SpecError for lark's exception `e` while parsing `text`."""
    stack, accepts = _state_before(parser, text, e)
    token = getattr(e, "token", None)
    kind = "$END" if isinstance(e, lark.exceptions.UnexpectedEOF) else (
        None if isinstance(e, lark.exceptions.UnexpectedCharacters) else token.type)
    if kind == "$END":
        line, column, width = _end_position(lines)
        found = "end of file"
    elif kind is None:
        line, column, width = e.line, e.column, 1
        found = f"character {text[e.pos_in_stream]!r}"
    elif kind == "_SEP":
        line, column, width = token.line, token.column, 1
        found = "';'" if str(token).lstrip(" \t").startswith(";") else "end of line"
    else:
        line, column, width = token.line, token.column, len(str(token))
        found = _quote(str(token))
    span = Span(file, line, column, column + width, lines[line - 1] if line <= len(lines) else "")
    message, details = _explain(kind, found, stack, accepts, _display(parser))
    return SpecError(f"syntax error: {message}", span, details)


def _state_before(parser, text, e):
    """The parser's stack and the terminals it accepts just before the bad token."""
    token = getattr(e, "token", None)
    if isinstance(e, lark.exceptions.UnexpectedEOF) or (token is not None and token.type == "$END"):
        stop = None
    elif token is not None:
        stop = token.start_pos
    else:
        stop = e.pos_in_stream
    cursor = parser.parse_interactive(text)
    try:
        for token in cursor.iter_parse():  # yields each token before feeding it
            if stop is not None and token.start_pos >= stop:
                break
    except lark.exceptions.UnexpectedInput:
        pass
    try:
        accepts = cursor.accepts()
    except lark.exceptions.LarkError:
        accepts = set(getattr(e, "expected", None) or getattr(e, "allowed", None) or ())
    return list(cursor.parser_state.value_stack), accepts


def _end_position(lines):
    """End of file is shown after the last line that holds anything."""
    for number in range(len(lines), 0, -1):
        text = lines[number - 1].rstrip("\r")
        if text.strip():
            return number, len(text) + 1, 1
    return 1, 1, 1


def _quote(token: str) -> str:
    return f"'{token}'" if len(token) <= 40 else f"'{token[:37]}...'"


def _tokens(stack) -> list:
    """The raw tokens of the statement being written, oldest first (parts of it that the
    parser has already reduced, such as a first source, are skipped)."""
    out = []
    for item in reversed(stack):
        if isinstance(item, lark.Token):
            if item.type in ("_SEP", "LBRACE", "RBRACE"):
                break
            out.append(item)
        elif item.data in ("layer", "repeat", "block", "network") or item.data.startswith(("__body", "__start")):
            break
    return out[::-1]


def _explain(kind, found, stack, accepts, shown):
    """(message, details) for a syntax error: what was found, and what could have come."""
    recent = _tokens(stack)
    prev = stack[-1] if stack and isinstance(stack[-1], lark.Token) else None
    prev_type = prev.type if prev is not None else None
    expected = _expected(accepts, stack, shown)
    hints = []
    if kind == "MINUS" and "NUMBER" in accepts:
        hints.append("sizes are positive: there is no unary minus")
    if kind == "STAR" and prev_type == "STAR":
        hints.append("there is no power operator: write the product out (2*2*2)")
    if prev_type == "EQUAL" and len(stack) >= 2 and isinstance(stack[-2], lark.Token):
        return f"expected a value after '{stack[-2]}=', found {found}", tuple(hints)
    if prev_type in OPERATOR_TERMINALS:
        return f"expected a value after '{prev}', found {found}", tuple(hints)
    if prev_type == "__ANON_0" or (prev_type == "COMMA" and any(t.type == "__ANON_0" for t in recent)):
        return f"expected a source layer after '{prev}', found {found}", tuple(hints)
    if prev_type == "REPEAT":
        return f"expected a repeat count after 'repeat', found {found}", tuple(hints)
    if prev_type == "COLON" and "NUMBER" in accepts:
        return f"expected arguments after ':', found {found}", tuple(hints)
    if kind == "EQUAL" and [getattr(t, "type", None) for t in stack[-3:]] == ["NAME", "EQUAL", "NAME"]:
        key, value = stack[-3], stack[-1]
        return (f"unexpected '=' after '{key}= {value}'",
                (f"'{key}= {value}' reads as {key}={value}: is the value of '{key}' missing?",))
    opener = _innermost_opener(stack)
    bracket = _innermost_opener(recent)  # an open '(' or '[' in this statement
    if opener is not None and (kind == "$END" or kind == "_SEP" and bracket is not None):
        closer = OPENERS[opener.type]
        hints.append(f"'{opener}' at line {opener.line}, column {opener.column} is not closed: "
                     f"a '{closer}' is missing")
    if kind == "NAME" and not stack:
        hint = did_you_mean(found.strip("'"), KEYWORDS)
        hints.append(hint or "a spec holds 'block NAME(...) { ... }' definitions and one "
                             "'network NAME { ... }'")
    elif kind in ("NAME", "NUMBER", "LPAR", "LSQB") and "COLON" in accepts:
        words = " ".join(str(t) for t in recent)
        hints.append(f"arguments follow a ':', as in '{words} : ...'")
    elif kind == "COMMA" and any(t.type == "COLON" for t in recent) and bracket is None:
        hints.append("several sizes in one argument are a shape, in parentheses: (n_H, n_W, n_C)")
    details = ((f"expected {_one_of(expected)}",) if expected else ()) + tuple(hints)
    return f"unexpected {found}", details


def _innermost_opener(stack):
    """The last '(', '[' or '{' still on the stack: opened and not yet closed."""
    for item in reversed(stack):
        if isinstance(item, lark.Token) and item.type in OPENERS:
            return item
    return None


def _expected(accepts, stack, shown) -> list[str]:
    accepts = set(accepts)
    words = []
    if "NUMBER" in accepts and accepts & {"NAME", "LPAR"}:
        words.append("a value")
        accepts -= VALUE_START
    if len(accepts & OPERATOR_TERMINALS) >= 2:
        words.append("an operator")
        accepts -= OPERATOR_TERMINALS
    if "NAME" in accepts:
        words.append(_name_role(accepts, stack))
        accepts.discard("NAME")
    words += [shown[t] for t in ORDER if t in accepts]
    words += sorted(shown.get(t, t) for t in accepts if t not in ORDER)
    return words


def _name_role(accepts, stack) -> str:
    """What a NAME would be at this point of a statement."""
    if "REPEAT" in accepts:
        return "a layer kind"
    prev = stack[-1] if stack and isinstance(stack[-1], lark.Token) else None
    if prev is not None and prev.type in ("BLOCK", "NETWORK"):
        return f"a name for the {prev}"
    if prev is not None and prev.type in ("__ANON_0", "COMMA", "DOT") and \
            any(t.type == "__ANON_0" for t in _tokens(stack)):
        return "a source layer"
    recent = _tokens(stack)
    if len(recent) == 1 and recent[0].type == "NAME":
        return "a layer name"
    return "a name"


def _one_of(words: list[str]) -> str:
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]
