"""The fast golden-case check agrees with the JSON Schema it stands in for (schemas/case.schema.json)."""
from __future__ import annotations

import hashlib
import itertools
import json
import random

from engine.case_check import plainly_valid
from engine.paths import schemas_dir
from engine.schemas import validator

# The case schema this check was written for; when the schema changes, update engine/case_check.py and this hash.
CASE_SCHEMA_SHA256 = "90dff6571c087586e9c16f11294c9e3ae5485383fe5187f0c4ea0319196769e7"

VALUES = [None, True, False, 0, 1, -2.5, 1e300, "", "x", "é\u2028", "a" * 200, "a" * 201, [], ["a"], ["a", "a"],
          ["a", ""], ["a", 1], [None], {}, {"k": "v"}, {"k": [1, {"x": None}]}]
GOOD = {"expected": VALUES, "context": [[], ["p"], ["p", "p", "é"]], "tags": [[], ["t"], ["t", "u"]],
        "metadata": [{}, {"k": "v"}]}
KEYS = ["id", "input", "expected", "context", "tags", "metadata", "extra", "ID"]


def records(n: int, seed: int = 11):
    rng = random.Random(seed)
    yield from (None, [], "x", 1, {})
    for keys in itertools.combinations(KEYS, 2):
        yield {k: "v" for k in keys}
    for _ in range(n):
        record = {"id": rng.choice(["c1", "c2", "c3", "a" * 200, "", "a" * 201, 3, None][:rng.choice([4, 8])]),
                  "input": rng.choice(["q", {"q": 1}, "", ["q"], 1, None][:rng.choice([3, 6])])}
        for key in rng.sample(KEYS[2:], rng.randint(0, 4)):
            record[key] = rng.choice(GOOD.get(key, VALUES)) if rng.random() < 0.7 else rng.choice(VALUES)
        if rng.random() < 0.2:
            record.pop(rng.choice(["id", "input"]))
        yield record


def test_the_fast_check_passes_exactly_what_the_schema_accepts():
    schema = validator("case")
    agreed = accepted = 0
    for record in records(20000):
        valid = schema.is_valid(record)
        assert plainly_valid(record) == valid, json.dumps(record)[:200]
        agreed += 1
        accepted += valid
    assert accepted > 1000 and agreed - accepted > 1000  # both kinds well represented


def test_the_schema_is_the_one_the_check_was_written_for():
    text = (schemas_dir() / "case.schema.json").read_bytes()
    assert hashlib.sha256(text).hexdigest() == CASE_SCHEMA_SHA256, (
        "schemas/case.schema.json changed: update engine/case_check.py to accept exactly what it accepts, "
        "then this hash")
