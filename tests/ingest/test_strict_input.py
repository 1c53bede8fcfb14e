"""What ingest reads: lines split on \\n only (raw U+2028 & co. inside strings, BOM), strict RFC 8259 JSON
(no NaN/Infinity/trailing commas, no duplicate keys, finite numbers) and bytes that are not UTF-8 never replaced,
on the first ingest and when the quarantine export is ingested again."""
from __future__ import annotations

import csv
import io
import json
import random
import re

import pyarrow as pa
import pytest
from ingest_helpers import flywheel, query, trace, write_jsonl

from engine.ingest import strict
from engine.jsonlines import LONE_SURROGATE
from engine.ingest.readers import CHUNK_SCHEMA

# Line separators of str.splitlines() that are not line ends in JSON Lines, written raw, never \u-escaped.
# U+2028, U+2029 and U+0085 may stand raw inside a JSON string; the C0 controls may not (RFC 8259 wants them
# escaped): a line holding one raw is a quarantined record, on its own line number, never a line break.
IN_STRINGS = ["\u2028", "\u2029", "\u0085"]
CONTROLS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]
SEPARATORS = IN_STRINGS + CONTROLS
NO_SHARE_LIMIT = "ingest.max_quarantine_share=1"


def _raw_line(record: dict) -> str:
    line = json.dumps(record, ensure_ascii=False)
    for c in SEPARATORS:  # json.dumps escapes the controls (\\u000b, \\f): put them back raw
        line = line.replace(json.dumps(c)[1:-1], c)
    return line


def test_separators_inside_strings_keep_lines_and_line_numbers(project):
    lines = [_raw_line(trace(f"t{i}", input=f"a{c}b", output=f"{c}x", attributes={"topic": f"t{c}"}))
             for i, c in enumerate(SEPARATORS)]
    data = ("\ufeff" + "\n".join(lines) + "\n").encode("utf-8")  # a BOM at the start of the file
    for c in SEPARATORS:
        assert c.encode("utf-8") in data
    (project / "u.jsonl").write_bytes(data)
    r = flywheel("ingest", "path=u.jsonl", NO_SHARE_LIMIT, "out=r.json", project=project)
    assert r.code == 0
    assert r.json["totals"]["read"] == len(SEPARATORS)  # one record per line, none split
    stored = dict(query(project, "SELECT trace_id, input FROM traces"))
    assert stored == {f"t{i}": f"a{c}b" for i, c in enumerate(IN_STRINGS)}  # t0 too: the BOM was skipped
    assert dict(query(project, "SELECT trace_id, source_line FROM traces")) == \
        {f"t{i}": i + 1 for i in range(len(IN_STRINGS))}
    quarantined = query(project, "SELECT record_key, source_line, reasons FROM quarantine ORDER BY source_line")
    assert [line for _, line, _ in quarantined] == list(range(len(IN_STRINGS) + 1, len(SEPARATORS) + 1))
    assert all(r == ["invalid JSON: invalid control character at"] for _, _, r in quarantined)


def test_separators_in_csv_cells_and_a_bom(project):
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["trace_id", "timestamp", "model", "input"])
    for i, c in enumerate(SEPARATORS):
        w.writerow([f"c{i}", "2025-03-01T10:00:00Z", "m", f"a{c}b"])
    w.writerow(["cbad", "not a time", "m", "x"])
    (project / "u.csv").write_bytes(b"\xef\xbb\xbf" + out.getvalue().encode("utf-8"))
    r = flywheel("ingest", "path=u.csv", NO_SHARE_LIMIT, "out=r.json", project=project)
    assert r.code == 0
    assert dict(query(project, "SELECT trace_id, input FROM traces")) == {f"c{i}": f"a{c}b"
                                                                          for i, c in enumerate(SEPARATORS)}
    assert query(project, "SELECT source_line, record_key FROM quarantine") == [(len(SEPARATORS) + 2, "cbad")]


def test_the_quarantine_export_keeps_separators_and_reingests_with_its_own_line_numbers(project):
    write_jsonl(project / "t.jsonl", [_raw_line(trace(f"t{i}", input=f"a{c}b", latency_ms=-1))
                                      for i, c in enumerate(SEPARATORS)])
    flywheel("ingest", "path=t.jsonl", "export_quarantine=q.jsonl", NO_SHARE_LIMIT, project=project)
    exported = (project / "q.jsonl").read_bytes()
    assert exported.count(b"\n") == len(SEPARATORS)
    for c in SEPARATORS:
        assert c.encode("utf-8") in exported
    fixed = exported.replace(b'"latency_ms": -1', b'"latency_ms": 1')
    for c in CONTROLS:  # the fix of a raw control character: escape it
        fixed = fixed.replace(c.encode(), json.dumps(c)[1:-1].encode())
    (project / "q.jsonl").write_bytes(fixed)
    r = flywheel("ingest", "path=q.jsonl", "out=r.json", project=project)
    assert r.code == 0 and r.json["totals"]["inserted"] == len(SEPARATORS)
    assert dict(query(project, "SELECT trace_id, input FROM traces")) == {f"t{i}": f"a{c}b"
                                                                          for i, c in enumerate(SEPARATORS)}
    assert sorted(line for (line,) in query(project, "SELECT source_line FROM traces")) == \
        list(range(1, len(SEPARATORS) + 1))


LENIENT = [  # (line, reason start): DuckDB's json_valid accepts every one of them
    ('{"trace_id":"n1","timestamp":"2025-03-01T10:00:00Z","model":"m","input":"q","latency_ms":NaN}',
     "invalid JSON: NaN is not a JSON value"),
    ('{"trace_id":"n2","timestamp":"2025-03-01T10:00:00Z","model":"m","input":"q","latency_ms":Infinity}',
     "invalid JSON: Infinity is not a JSON value"),
    ('{"trace_id":"n3","timestamp":"2025-03-01T10:00:00Z","model":"m","input":"q","cost":nan}', "invalid JSON"),
    ('{"trace_id":"n4","timestamp":"2025-03-01T10:00:00Z","model":"m","input":"q","cost":-inf}', "invalid JSON"),
    ('{"trace_id":"n5","timestamp":"2025-03-01T10:00:00Z","model":"m","input":"q",}', "invalid JSON"),
    ('{"trace_id":"n6","timestamp":"2025-03-01T10:00:00Z","model":"m","input":"q","attributes":{"a":[1,2,]}}',
     "invalid JSON"),
    ('{"trace_id":"n7","timestamp":"2025-03-01T10:00:00Z","model":"m","input":"q","latency_ms":1e999}',
     "invalid JSON: a number too large for a double"),
    ('{"trace_id":"d1","timestamp":"2025-03-01T10:00:00Z","model":"m","input":"q","input":"other"}',
     "ambiguous JSON: duplicate key 'input' in one object"),
    ('{"trace_id":"d2","timestamp":"2025-03-01T10:00:00Z","model":"m","input":"q","attributes":{"topic":"a",'
     '"topic":"b"}}', "ambiguous JSON: duplicate key 'topic' in one object in attributes"),
    ('{"trace_id":"d3","timestamp":"2025-03-01T10:00:00Z","model":"m","input":"q","attributes":{"x":{"y":1,'
     '"y":2}}}', "ambiguous JSON: duplicate key 'y' in one object"),
    ('{"trace_id":"d4","timestamp":"2025-03-01T10:00:00Z","model":"m","input":"q","a":"x","\\u0061":"y"}',
     "ambiguous JSON: duplicate key 'a' in one object"),
    # a repeat as the 8th key (the last the unrolled check looks at) and as the 10th (beyond it: list_distinct)
    ('{"trace_id":"d5","timestamp":"2025-03-01T10:00:00Z","model":"m","input":"q","attributes":{'
     + ",".join(f'"k{i}":{i}' for i in range(1, 8)) + ',"k3":0}}',
     "ambiguous JSON: duplicate key 'k3' in one object in attributes"),
    ('{"trace_id":"d6","timestamp":"2025-03-01T10:00:00Z","model":"m","input":"q","attributes":{'
     + ",".join(f'"k{i}":{i}' for i in range(1, 10)) + ',"k9":0}}',
     "ambiguous JSON: duplicate key 'k9' in one object in attributes"),
]


def test_only_rfc_8259_json_is_stored(project):
    fine = [trace("ok1", input="NaN, Infinity, {a:1,}", attributes={"deep": {"x": [1, {"y": None}]}}),
            trace("ok2", input="x", cost=1.5e-300, attributes={"big": 12345678901234567890}),
            trace("ok3", attributes={f"k{i}": i for i in range(1, 13)})]  # 12 keys, none repeated
    write_jsonl(project / "t.jsonl", [line for line, _ in LENIENT] + fine)
    r = flywheel("ingest", "path=t.jsonl", NO_SHARE_LIMIT, "out=r.json", project=project)
    assert r.code == 0
    reasons = {key: got for key, got in query(project, "SELECT record_key, reasons FROM quarantine")}
    assert len(reasons) == len(LENIENT)
    for line, want in LENIENT:
        key = json.loads(line.replace("NaN", "0").replace("Infinity", "0").replace("nan", "0").replace(
            "-inf", "0").replace(",}", "}").replace(",]", "]").replace("1e999", "0"))["trace_id"]
        assert len(reasons[key]) == 1 and reasons[key][0].startswith(want), (key, reasons[key])
    assert sorted(t for (t,) in query(project, "SELECT trace_id FROM traces")) == ["ok1", "ok2", "ok3"]


def test_nan_in_feedback_value_never_reaches_the_store_or_a_result(project):
    write_jsonl(project / "f.jsonl", [
        '{"feedback_id":"f1","trace_id":"t1","timestamp":"2025-03-01T10:00:00Z","kind":"evaluation",'
        '"metric":"m","value":NaN}',
        '{"feedback_id":"f2","trace_id":"t1","timestamp":"2025-03-01T10:00:00Z","kind":"evaluation",'
        '"metric":"m","value":0.5}'])
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["feedback_id", "trace_id", "timestamp", "kind", "metric", "value", "attributes"])
    w.writerow(["f3", "t1", "2025-03-01T10:00:00Z", "evaluation", "m", "nan", ""])
    w.writerow(["f4", "t1", "2025-03-01T10:00:00Z", "evaluation", "m", "0.25", '{"score": NaN}'])
    (project / "f.csv").write_text(out.getvalue(), encoding="utf-8")
    r = flywheel("ingest", "path=[f.jsonl,f.csv]", NO_SHARE_LIMIT, "out=r.json", project=project)
    assert r.code == 0
    assert query(project, "SELECT count(*) FROM feedback WHERE isnan(value) OR isinf(value)") == [(0,)]
    assert query(project, "SELECT count(*) FROM feedback WHERE CAST(attributes AS VARCHAR) ILIKE '%nan%'") == [(0,)]
    assert sorted(f for (f,) in query(project, "SELECT feedback_id FROM feedback")) == ["f2"]
    json.loads((project / "r.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in out="))


def _variants(rng: random.Random, n: int) -> list[str]:
    """Strict and lenient spellings of records, nested and flat, for the pre-filter's property test."""
    out = []
    for _ in range(n):
        record = trace(f"t{rng.randrange(99)}", attributes={"topic": "b", "n": rng.choice([1, 2.5, "x"])})
        if rng.random() < 0.3:
            record["extra"] = rng.choice([{"a": 1}, [1, {"b": 2}], [], {}, "s"])
        text = json.dumps(record, separators=rng.choice([(",", ":"), (", ", ": ")]))
        edit = rng.random()
        if edit < 0.1:
            text = text.replace("12.5", rng.choice(["NaN", "-Infinity", "nan", "inf", "1e999", "1" * 400]))
        elif edit < 0.2:
            text = text.replace("}", rng.choice([",}", ", }", "}"]), 1)
        elif edit < 0.3:
            text = text.replace('"model"', '"input"')
        elif edit < 0.4:
            text = text.replace('"topic"', '"n"')
        elif edit < 0.45:
            text = text[: rng.randrange(len(text))]
        elif edit < 0.5:
            text = text.replace('"b"', '"\\u00e9\\n\\"q\\""')
        elif edit < 0.55:  # a surrogate pair (one character), a lone surrogate (refused), an escaped backslash
            text = text.replace('"b"', rng.choice(['"\\ud83d\\ude00"', '"x\\ud800"', '"\\uDFFF"', '"\\\\ud800"']))
        out.append(text + rng.choice(["", "\n", "\r\n", " "]))
    return out


def test_the_pre_filter_never_lets_a_non_strict_record_through():
    """Every record the shape pattern recognises must be one the strict Python parse accepts (duplicate keys at
    the two levels the SQL checks aside), and check_table must flag exactly the records the strict parse refuses."""
    lines = _variants(random.Random(3), 3000)
    n = len(lines)
    table = pa.Table.from_arrays([pa.array(range(1, n + 1), pa.int64()), pa.nulls(n, pa.int32()),
                                  pa.nulls(n, pa.string()), pa.nulls(n, pa.string()),
                                  pa.array(lines, pa.large_string()), pa.nulls(n, pa.binary()),
                                  pa.nulls(n, pa.bool_())], schema=CHUNK_SCHEMA)
    checked = strict.check_table(table)
    flagged = checked.column("problem").to_pylist()
    marked = checked.column("strict").to_pylist()  # the SQL skips json_valid for these
    shape = re.compile(strict.shape_pattern(strict.object_fields()))
    for line, got, is_strict in zip(lines, flagged, marked):
        want = strict.problem(line)
        if got is None and want is not None:  # let through: only a duplicate key the SQL checks can see
            assert want.startswith("ambiguous JSON") and shape.search(line), (line, want)
        else:
            assert got == want, (line, got, want)
        assert is_strict == bool(shape.search(line))
        assert not is_strict or want is None or want.startswith("ambiguous JSON"), (line, want)
    assert sum(p is not None for p in flagged) > 300 and sum(marked) > 1000


def test_a_lone_surrogate_escape_is_quarantined_and_a_pair_is_stored(project):
    """\\ud800 alone is JSON by grammar but no Unicode character: DuckDB refuses it, Python cannot encode it.
    Its record is quarantined with the reason (the batch goes on); an escaped pair is one character, stored."""
    good = json.dumps(trace("t1", input="emoji \U0001F600"))  # json.dumps writes it as an escaped pair
    lone = json.dumps(trace("t2")).replace('"answer"', '"half \\ud800 of a pair"', 1)
    key = json.dumps(trace("t3")).replace('"attributes": {', '"attributes": {"\\udfff": 1, ', 1)
    write_jsonl(project / "t.jsonl", [good, lone, key, trace("t4")])
    r = flywheel("ingest", "path=t.jsonl", NO_SHARE_LIMIT, "out=r.json", project=project)
    assert r.code == 0, r
    assert r.json["totals"]["accepted"] == 2 and r.json["totals"]["quarantined"] == 2
    reasons = query(project, "SELECT source_line, reasons FROM quarantine ORDER BY source_line")
    assert [(line, rs[0]) for line, rs in reasons] == [(2, LONE_SURROGATE), (3, LONE_SURROGATE)]
    assert query(project, "SELECT input FROM traces WHERE trace_id = 't1'") == [("emoji \U0001F600",)]


def test_bytes_that_are_not_utf8_are_never_replaced(project):
    latin1 = b'{"trace_id": "t9", "timestamp": "2025-03-01T10:00:00Z", "model": "kw", "input": "caf\xe9"}'
    write_jsonl(project / "t.jsonl", [trace("t1"), latin1])
    (project / "f.csv").write_bytes(b"feedback_id,trace_id,timestamp,kind,comment\n"
                                    b"f1,t1,2025-03-01T10:00:00Z,ticket,d\xe9j\xe0 vu\n")
    first = flywheel("ingest", "path=[t.jsonl,f.csv]", NO_SHARE_LIMIT,
                     "export_quarantine=q.jsonl", "out=r.json", project=project)
    assert first.code == 0 and first.json["totals"]["quarantined"] == 2
    exported = (project / "q.jsonl").read_bytes().splitlines()
    assert latin1 in exported  # the original bytes, not U+FFFD
    assert any(b"d\xe9j\xe0 vu" in line for line in exported)
    assert "\ufffd".encode() not in b"".join(exported)
    again = flywheel("ingest", "path=q.jsonl", NO_SHARE_LIMIT, "out=r2.json", project=project)
    assert again.json["totals"] == {"read": 2, "accepted": 0, "inserted": 0, "duplicates": 0, "quarantined": 2}
    assert all(r[0][0].startswith("not valid UTF-8") for r in
               query(project, "SELECT reasons FROM quarantine WHERE source_file = 'q.jsonl'"))
    assert query(project, "SELECT count(*) FROM traces WHERE input LIKE '%' || chr(65533) || '%'") == [(0,)]
    assert query(project, "SELECT count(*) FROM feedback") == [(0,)]
    # the export of the re-ingested export holds the same two records, once each
    flywheel("ingest", "export_quarantine=q2.jsonl", project=project)
    assert sorted((project / "q2.jsonl").read_bytes().splitlines()) == sorted(exported)
