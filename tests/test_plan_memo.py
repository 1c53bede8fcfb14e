"""Plan builders memoised on their arguments' content (engine/plan_memo.py): the same config compiles once per
process, a different one compiles again, and a caller cannot change what the next caller gets."""
from __future__ import annotations

import copy

from engine.compiler import compile_evaluate
from engine.plan_memo import by_content

METRICS = {"exact": {"kind": "exact_match", "normalizer": "lower_strip"}, "found": {"kind": "contains"}}


def test_the_same_content_compiles_once_and_other_content_again():
    first = compile_evaluate(METRICS)
    assert compile_evaluate(copy.deepcopy(METRICS)) is first  # equal content, another dict: the same plan
    edited = {"exact": METRICS["exact"]}  # one metric fewer
    other = compile_evaluate(edited)
    assert other is not first and other.to_text() != first.to_text()
    assert compile_evaluate(METRICS).to_text() == first.to_text()


def test_returned_lists_are_copies_and_unhashable_arguments_compile_afresh():
    calls = []

    @by_content
    def build(cfg, extra=None):
        calls.append(cfg)
        return [cfg["n"]]

    a = build({"n": 1})
    a.append("changed by a caller")
    assert build({"n": 1}) == [1] and len(calls) == 1
    build({"n": 1}, extra=object())  # not plain config data: no key, compiled again
    assert len(calls) == 2


def test_frozen_specs_are_keyed_by_their_type_and_fields():
    from dataclasses import dataclass

    from engine.monitor.spec import Scope

    @dataclass(frozen=True)
    class Other:
        window: str
        model: str | None
        start: str | None
        end: str | None

    calls = []

    @by_content
    def build(scope):
        calls.append(scope)
        return [scope.window]

    assert build(Scope("day", None, None, None)) == build(Scope("day", None, None, None)) == ["day"]
    assert len(calls) == 1  # equal specs: compiled once
    build(Scope("week", None, None, None))
    build(Other("day", None, None, None))  # the same fields in another spec type: not the same key
    assert len(calls) == 3
