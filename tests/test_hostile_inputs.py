"""Wrong types and out-of-range options end in one clear message, never a traceback.

Spec-side cases are enumerated from the vocabulary itself (archcalc.kinds.KINDS and each
hyperparameter's declared value kind), so a new kind or argument is covered without an edit."""
from __future__ import annotations

import pytest

import archcalc
from archcalc.kinds import KINDS, WORDS, hyperparameters

# A value each declared kind accepts, to fill the required arguments around the one under test.
GOOD = {"size": "2", "count": "1", "real": "1", "pad": "0", "shape": "(8, 8, 4)", "hw": "(4, 4)",
        "table": "[[0]]", **{kind: next(iter(words)) for kind, words in WORDS.items()}}

WORD_ARGUMENTS = [(kind, f.name, f.metadata["kind"]) for kind, cls in KINDS.items()
                  for f in hyperparameters(cls) if f.metadata["kind"] in WORDS]

# A list or tuple where a word (or on/off) is expected; the text and how the message shows it.
NOT_WORDS = {"[1]": "[1]", "[]": "[]", "(1, 2)": "(1, 2)", "[[1]]": "[[1]]", "[on]": "['on']",
             "[(1, 2)]": "[(1, 2)]", "(on, off)": "('on', 'off')"}


def spec_with(kind: str, name: str, value: str) -> str:
    cls = KINDS[kind]
    others = " ".join(f"{f.name}={GOOD[f.metadata['kind']]}" for f in hyperparameters(cls)
                      if f.metadata["required"] and f.name != name)
    sources = " <- x, x" if cls.arity[0] >= 2 else ""
    return f"network N {{\n    input x : (8, 8, 4)\n    {kind} l{sources} : {others} {name}={value}\n}}\n"


def test_the_word_arguments_are_enumerated():
    assert ("conv", "bias", "flag") in WORD_ARGUMENTS and ("upsample", "mode", "interpolation") in WORD_ARGUMENTS


@pytest.mark.parametrize("text", NOT_WORDS)
@pytest.mark.parametrize("kind, name, value_kind", WORD_ARGUMENTS,
                         ids=[f"{k}.{n}" for k, n, _ in WORD_ARGUMENTS])
def test_a_list_or_tuple_where_a_word_is_expected_is_a_located_error(kind, name, value_kind, text):
    spec = spec_with(kind, name, text)
    with pytest.raises(archcalc.SpecError) as e:
        archcalc.loads(spec, "t.arch")
    column = spec.splitlines()[2].index(f"{name}=") + 1
    assert e.value.message == (f"{kind} 'l': argument '{name}' must be one of "
                               f"{', '.join(WORDS[value_kind])}, got {NOT_WORDS[text]}")
    assert (e.value.span.line, e.value.span.column) == (3, column)
