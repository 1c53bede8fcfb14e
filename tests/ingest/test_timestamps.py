"""Timestamps: the SQL checks and the reference validator (jsonschema + engine/ingest/timestamps.py) decide the
same on every record of a generated corpus of valid and invalid timestamps, and the stored instants are exact."""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

from ingest_helpers import flywheel, query, trace, write_jsonl
from test_schema_sql import VALID, sql_decisions

from engine.ingest.records import record_validator
from engine.ingest.timestamps import instant, is_date_time

YEARS = ["2025", "2024", "2000", "1900", "0001", "9999", "0000", "999", "20251"]
MONTHS = ["01", "02", "06", "12", "00", "13", "1"]
DAYS = ["01", "28", "29", "30", "31", "00", "32", "1"]
SEPARATORS = ["T", "t", " ", "_", "", "TT"]
HOURS = ["00", "09", "23", "24", "25", "9"]
MINUTES = ["00", "30", "59", "60", "5"]
SECONDS = ["", ":00", ":07", ":59", ":60", ":61", ":5"]
FRACTIONS = ["", ".", ".1", ".25", ".123456", ".1234567", ".999999999", ".1234567891", ".12a"]
OFFSETS = ["", "Z", "z", "+00:00", "-00:00", "+05:30", "+0530", "+05", "-12:00", "+23:59", "-23:59", "+24:00",
           "+25:00", "-99", "+05:60", "+5:30", "+05:30:00", " UTC", "Z ", "ZZ", "+05:3", "UTC"]


def corpus(n: int, seed: int = 11) -> list[str]:
    """Timestamps assembled from valid and invalid parts, plus edge cases written out, plus random noise."""
    rng = random.Random(seed)
    out = ["2025-03-01T10:00:00Z", "2025-03-01t10:00:00z", "2024-02-29T23:59:59.999999999+23:59",
           "2025-02-29T10:00:00Z", "2016-12-31T23:59:60Z", "2025-03-01T24:00:00Z", "2025-03-01T10:00:00+25:00",
           "2025-03-01", "2025-03-01T10:00", "2025-03-01 10:00:00", " 2025-03-01T10:00:00Z", "2025-03-01T10:00:00Z\n",
           "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2025-03-01T10:00:00.Z", "２０２５-03-01T10:00Z"]
    for _ in range(n):
        if rng.random() < 0.5:  # mostly valid parts, one part swapped for any option
            parts = [rng.choice(YEARS[:6]), "-", rng.choice(MONTHS[:4]), "-", rng.choice(DAYS[:5]),
                     rng.choice(SEPARATORS[:3]), rng.choice(HOURS[:3]), ":", rng.choice(MINUTES[:3]),
                     rng.choice(SECONDS[:4]), "", rng.choice(OFFSETS[:11])]
            if parts[9]:
                parts[10] = rng.choice(FRACTIONS[:7])
            slot, options = rng.choice([(0, YEARS), (2, MONTHS), (4, DAYS), (5, SEPARATORS), (6, HOURS),
                                        (8, MINUTES), (9, SECONDS), (10, FRACTIONS), (11, OFFSETS)])
            parts[slot] = rng.choice(options)
        else:
            parts = [rng.choice(YEARS), "-", rng.choice(MONTHS), "-", rng.choice(DAYS), rng.choice(SEPARATORS),
                     rng.choice(HOURS), ":", rng.choice(MINUTES), rng.choice(SECONDS), rng.choice(FRACTIONS),
                     rng.choice(OFFSETS)]
        out.append("".join(parts))
    for _ in range(n // 10):  # random characters over a valid one
        s = list("2025-03-01T10:00:00.123+05:30")
        s[rng.randrange(len(s))] = rng.choice("0123456789-:+.TZz x")
        out.append("".join(s))
    return list(dict.fromkeys(out))


def test_sql_and_reference_agree_on_every_generated_timestamp():
    stamps = corpus(3000)
    for kind in ("traces", "feedback", "events"):
        records = [{**VALID[kind], "timestamp": s} for s in stamps]
        decisions = sql_decisions(kind, [json.dumps(r) for r in records])
        check = record_validator(kind)
        disagree = [(r["timestamp"], ok) for r, (ok, _) in zip(records, decisions)
                    if ok != (not list(check.iter_errors(r)))]
        assert not disagree, disagree[:10]
    valid = [s for s in stamps if is_date_time(s)]
    assert 300 < len(valid) < len(stamps) - 300  # both outcomes well exercised
    for s in ("2025-03-01t10:00:00z", "2024-02-29T23:59:59.999999999+23:59", "2025-03-01 10:00:00"):
        assert s in valid
    for s in ("2025-03-01T10:00:00+25:00", "2016-12-31T23:59:60Z", "2025-03-01T24:00:00Z", "2025-02-29T10:00:00Z"):
        assert s not in valid


def test_stored_instants_are_exact_through_the_real_ingest(project):
    stamps = corpus(600, seed=5)
    lines = [trace(f"t{i}", timestamp=s) for i, s in enumerate(stamps)]
    write_jsonl(project / "stamps.jsonl", lines)
    r = flywheel("ingest", "path=stamps.jsonl", "ingest.max_quarantine_share=1", "out=r.json", project=project)
    assert r.code == 0
    expected_ok = {f"t{i}": s for i, s in enumerate(stamps) if is_date_time(s)}
    stored = dict(query(project, "SELECT trace_id, epoch_us(\"timestamp\") FROM traces"))
    assert set(stored) == set(expected_ok)
    rejected = {row[0] for row in query(project, "SELECT record_key FROM quarantine")}
    assert rejected == {f"t{i}" for i in range(len(stamps))} - set(expected_ok)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    for tid, s in expected_ok.items():  # aware subtraction: no conversion that could leave year 1..9999
        assert stored[tid] == (instant(s) - epoch) // timedelta(microseconds=1), (s, stored[tid])
    # an offset is applied, never dropped; digits beyond microseconds are truncated, never rounded
    got = dict(query(project, "SELECT trace_id, strftime(\"timestamp\", '%Y-%m-%dT%H:%M:%S.%fZ') FROM traces"))
    index = {s: f"t{i}" for i, s in enumerate(stamps)}
    assert got[index["2024-02-29T23:59:59.999999999+23:59"]] == "2024-02-29T00:00:59.999999Z"
