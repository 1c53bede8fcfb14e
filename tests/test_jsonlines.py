"""The one JSON Lines reader: split on \\n only, file line numbers, BOM, strict JSON (no NaN, no duplicate keys)."""
from __future__ import annotations

import json

import pytest

from engine import jsonlines
from engine.errors import UserError
from engine.datasets import load_file

SEPARATORS = ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]


def test_split_lines_keeps_unicode_separators_inside_records():
    records = [{"id": f"c{i}", "input": f"before{sep}after"} for i, sep in enumerate(SEPARATORS)]
    text = "\ufeff" + "\r\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n"
    parsed = [(n, jsonlines.loads_strict(line)) for n, line in jsonlines.split_lines(text) if line.strip()]
    assert [n for n, _ in parsed] == list(range(1, len(SEPARATORS) + 1))
    assert [r for _, r in parsed] == records


@pytest.mark.parametrize("text, reason", [
    ('{"a": NaN}', "NaN is not a JSON value"),
    ('{"a": Infinity}', "Infinity is not a JSON value"),
    ('{"a": -Infinity}', "-Infinity is not a JSON value"),
    ('{"a": 1,}', "invalid JSON"),
    ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    ('{"o": {"k": 1, "k": 1}}', "duplicate key 'k'"),
])
def test_loads_strict_refuses_what_rfc_8259_does_not_allow(text, reason):
    with pytest.raises(jsonlines.StrictJSONError) as e:
        jsonlines.loads_strict(text)
    assert reason in e.value.reason


@pytest.mark.parametrize("text", ['{"a": "x \\ud800 y"}', '["\\uDC00"]', '{"\\udfff": 1}', '{"o": [{"p": "\\ude00\\ud83d"}]}'])
def test_a_lone_surrogate_escape_is_refused(text):
    """Lone, in a key, nested, or a pair in the wrong order: no Unicode character, never a crash later."""
    for form in (text, text.encode("utf-8")):
        with pytest.raises(jsonlines.StrictJSONError) as e:
            jsonlines.loads_strict(form)
        assert e.value.reason == jsonlines.LONE_SURROGATE


def test_a_surrogate_pair_and_an_escaped_backslash_are_kept():
    assert jsonlines.loads_strict('{"a": "\\ud83d\\ude00"}') == {"a": "\U0001F600"}
    assert jsonlines.loads_strict('{"a": "\\\\ud800"}') == {"a": "\\ud800"}  # text, not an escape


def test_a_golden_case_with_a_lone_surrogate_is_refused_with_its_line(tmp_path):
    path = tmp_path / "golden.jsonl"
    path.write_text('{"id": "a", "input": "ok"}\n{"id": "b", "input": "bad \\ud800"}\n', encoding="utf-8")
    with pytest.raises(UserError) as e:
        load_file("g", path, "golden.jsonl")
    assert f"golden.jsonl:2: {jsonlines.LONE_SURROGATE}" in str(e.value)


def test_golden_file_with_separators_and_bom_loads_with_file_line_numbers(tmp_path):
    path = tmp_path / "golden.jsonl"
    lines = [json.dumps({"id": "a", "input": "x\u2028y", "expected": "y\u0085z"}, ensure_ascii=False),
             json.dumps({"id": "b", "input": "q\x1cr", "expected": "r"}, ensure_ascii=False),
             '{"id": "c", "input": "q", "expected": NaN}']
    path.write_bytes(("\ufeff" + "\n".join(lines) + "\n").encode("utf-8"))
    with pytest.raises(UserError) as e:
        load_file("g", path, "golden.jsonl")
    assert "golden.jsonl:3: invalid JSON: NaN is not a JSON value" in str(e.value)
    path.write_bytes(("\ufeff" + "\n".join(lines[:2]) + "\n").encode("utf-8"))
    version = load_file("g", path, "golden.jsonl")
    assert [(c.case_id, c.input, c.position) for c in version.cases] == [("a", "x\u2028y", 1), ("b", "q\x1cr", 2)]


def test_invalid_utf8_is_refused_not_replaced(tmp_path):
    path = tmp_path / "golden.jsonl"
    path.write_bytes(b'{"id": "a", "input": "caf\xe9"}\n')
    with pytest.raises(UserError) as e:
        load_file("g", path, "golden.jsonl")
    assert "not UTF-8" in str(e.value)
