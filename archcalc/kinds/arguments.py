"""Building an op from a statement's arguments, with the checks and usage messages."""
from __future__ import annotations

from dataclasses import fields
from fractions import Fraction


from ..errors import RuleError
from ..sizes import (decimal, is_int, is_integer, is_nonnegative, is_positive, show)
from .base import Op, Shape
from .registry import KINDS


def hyperparameters(cls: type[Op]) -> list:
    return [f for f in fields(cls)]


def make(kind: str, positional: list, keywords: dict) -> Op:
    """Build the op for `kind` from evaluated arguments; RuleError names what is wrong."""
    cls = KINDS[kind]
    params = hyperparameters(cls)
    slots = sorted((f for f in params if f.metadata["pos"] is not None), key=lambda f: f.metadata["pos"])
    if len(positional) > len(slots):
        allowed = ", ".join(f.name for f in slots) or "none"
        raise RuleError(f"takes {len(slots)} positional argument(s), got {len(positional)}",
                        f"positional arguments of {kind}: {allowed}")
    values = dict(zip((f.name for f in slots), positional))
    for key, value in keywords.items():
        if key in values:
            raise RuleError(f"argument '{key}' given twice", "once by position, once by name",
                            argument=key)
        values[key] = value
    for f in params:
        if f.name in values:
            try:
                values[f.name] = check_value(kind, f.name, f.metadata["kind"], values[f.name])
            except RuleError as e:
                e.argument = f.name
                raise
        elif f.metadata["required"]:
            raise RuleError(f"needs argument '{f.name}'", usage(cls))
    return cls(**values)


def usage(cls: type[Op]) -> str:
    parts = []
    for f in hyperparameters(cls):
        parts.append(f.name if f.metadata["required"] else f"{f.name}={default_text(f.default)}")
    return f"usage: {cls.kind} NAME : {' '.join(parts)}" if parts else f"usage: {cls.kind} NAME"


def default_text(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "none"
    return show(value) if not isinstance(value, Fraction) else decimal(value)


WORDS = {"flag": {"on": True, "off": False}, "round": {"floor": "floor", "ceil": "ceil"},
         "interpolation": {"nearest": "nearest", "bilinear": "bilinear"},
         "gelu_form": {"none": "none", "tanh": "tanh"}}


def check_value(kind, name, value_kind, value):
    where = f"argument '{name}'"
    if value_kind in WORDS:
        words = WORDS[value_kind]
        if not isinstance(value, str) or value not in words:  # a list is no word (nor hashable)
            raise RuleError(f"{where} must be one of {', '.join(words)}, got {show_any(value)}")
        return words[value]
    if value_kind == "pad" and value == "same":
        return value
    if value_kind in ("size", "count", "pad"):
        return check_size(where, value, allow_zero=value_kind != "size")
    if value_kind == "real":
        if isinstance(value, (int, Fraction)) and not isinstance(value, bool) and value >= 0:
            return value
        raise RuleError(f"{where} must be a non-negative number, got {show_any(value)}")
    if value_kind == "shape":
        if not isinstance(value, tuple) or len(value) != 3:
            raise RuleError(f"{where} must be a shape (n_H, n_W, n_C), got {show_any(value)}")
        return tuple(check_size(f"{letter} in {where}", v) for letter, v in zip(Shape._fields, value))
    if value_kind == "hw":
        if not isinstance(value, tuple) or len(value) != 2:
            raise RuleError(f"{where} must be a size (n_H, n_W), got {show_any(value)}")
        return tuple(check_size(f"{letter} in {where}", v) for letter, v in zip(("n_H", "n_W"), value))
    if value_kind == "table":
        if not isinstance(value, list) or not all(isinstance(r, list) and r for r in value):
            raise RuleError(f"{where} must be a list of non-empty lists of input maps")
        rows = tuple(tuple(check_size(where, i, allow_zero=True) for i in row) for row in value)
        if not all(is_int(i) for row in rows for i in row):
            raise RuleError(f"{where} must list input maps by number, got {show_any(value)}")
        return rows
    raise AssertionError(value_kind)


def check_size(where, value, allow_zero=False):
    if isinstance(value, (str, tuple, list)) or isinstance(value, Fraction) and value.denominator != 1:
        raise RuleError(f"{where} must be a whole number, got {show_any(value)}")
    if isinstance(value, Fraction):
        value = int(value)
    if is_integer(value) is False:
        raise RuleError(f"{where} must be a whole number, got {show(value)}")
    good = is_nonnegative(value) if allow_zero else is_positive(value)
    if good is False:
        need = "non-negative" if allow_zero else "positive"
        raise RuleError(f"{where} must be {need}, got {show(value)}")
    return value


def show_any(value) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, tuple):
        return "(" + ", ".join(show_any(v) for v in value) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(show_any(v) for v in value) + "]"
    if isinstance(value, Fraction):
        return decimal(value)
    return show(value)


def make_checked(op: Op) -> Op:
    """Re-check an op's sizes after its symbols were bound (a width b - 16 may turn negative)."""
    for f in fields(op):
        value, value_kind = getattr(op, f.name), f.metadata["kind"]
        if value is not None and (value_kind in ("size", "count", "shape", "hw")
                                  or value_kind == "pad" and value != "same"):
            try:
                check_value(op.kind, f.name, value_kind, value)
            except RuleError as e:
                e.argument = f.name
                raise
    return op
