"""The SQL compiled from a record schema decides exactly as jsonschema does (the reference), record by record."""
from __future__ import annotations

import copy
import json
import random

import duckdb
import pyarrow as pa
import pytest
from sqlglot import exp

from engine.ingest.records import KINDS, record_validator
from engine.ingest.schema_sql import compile_schema
from engine.schemas import load_schema
from engine.sql import render

VALID = {
    "traces": {"trace_id": "t1", "session_id": "s", "user_id": "u", "timestamp": "2025-03-01T10:00:00Z",
               "model": "m", "model_version": "v1", "input": "q", "output": "a", "latency_ms": 3.5,
               "prompt_tokens": 3, "completion_tokens": 1, "cost": 0.1, "error": None,
               "attributes": {"topic": "billing", "channel": "web", "locale": "en", "feature": None}},
    "feedback": {"feedback_id": "f", "trace_id": "t", "timestamp": "2025-03-01 10:00", "kind": "rating", "rating": 4,
                 "comment": "ok"},
    "events": {"event_id": "e", "user_id": "u", "timestamp": "2025-03-01T10:00:00+02:00", "type": "revenue",
               "amount": 9.5, "currency": "EUR", "attributes": {"plan": "pro"}},
}
ODD_VALUES = [None, "", "x", "2025-03-01T10:00:00Z", "2025-02-30T10:00:00Z", 0, -1, 1.5, 4.0, 6, 10**12, True,
              [], {}, {"topic": 5}, "up", "rating", "correction", "EUR", "eur", "a" * 300]


def mutations(kind: str, n: int, seed: int = 1) -> list[dict]:
    """Valid records and records with one to three fields dropped, nulled or replaced by odd values."""
    rng = random.Random(seed)
    base = VALID[kind]
    fields = list(load_schema(KINDS[kind].schema)["properties"]) + ["kind", "rating", "thumbs", "correction"]
    out = [base]
    for _ in range(n):
        r = copy.deepcopy(base)
        if kind == "feedback":
            r["kind"] = rng.choice(["rating", "thumbs", "ticket", "behavior", "correction", "evaluation"])
        for _ in range(rng.randint(1, 3)):
            f = rng.choice(fields)
            if rng.random() < 0.25:
                r.pop(f, None)
            else:
                r[f] = rng.choice(ODD_VALUES)
        out.append(r)
    return out


def sql_decisions(kind: str, lines: list[str]) -> list[tuple[bool, list[str]]]:
    rec = compile_schema(load_schema(KINDS[kind].schema), exp.column("raw"))
    types, strings = rec.extract()
    inner = exp.select("n", "raw", exp.alias_(types, "fw_t"), exp.alias_(strings, "fw_w")).from_("lines")
    query = exp.select(exp.alias_(rec.ok(), "ok"), exp.alias_(rec.reasons(), "reasons")).from_(
        inner.subquery("x")).order_by("n")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("lines", pa.table({"n": list(range(len(lines))), "raw": lines}))
    return [(ok, reasons) for ok, reasons in con.execute(render(query)).fetchall()]


@pytest.mark.parametrize("kind", list(KINDS))
def test_sql_and_jsonschema_agree_on_every_record(kind):
    records = mutations(kind, 400)
    lines = [json.dumps(r) for r in records]
    decisions = sql_decisions(kind, lines)
    check = record_validator(kind)
    disagreements = []
    for record, (ok, reasons) in zip(records, decisions):
        reference = not list(check.iter_errors(record))
        if ok != reference:
            disagreements.append((record, ok, reasons))
        if not ok:
            assert reasons, record  # every rejection says why
    assert not disagreements, disagreements[:3]
    assert sum(ok for ok, _ in decisions) not in (0, len(decisions))  # both outcomes were exercised


def test_reasons_name_the_field_and_the_rule():
    lines = [json.dumps({**VALID["feedback"], "rating": 9}), json.dumps({**VALID["feedback"], "kind": "thumbs"}),
             "{oops", "[1]"]
    got = [r for _, r in sql_decisions("feedback", lines)]
    assert got == [["rating: 9 is above the maximum 5"], ["thumbs: required but missing"], ["invalid JSON"],
                   ["not a JSON object"]]


def test_a_keyword_without_a_sql_translation_is_refused():
    with pytest.raises(ValueError, match="uniqueItems"):
        compile_schema({"type": "object", "properties": {"a": {"type": "array", "uniqueItems": True}}},
                       exp.column("raw"))
