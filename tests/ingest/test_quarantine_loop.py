"""The quarantine loop settles: a record accepted later is resolved (by key, content hash or source line) and
left out of later exports; re-ingesting an export never grows the next one. With privacy settings the
quarantine keeps and exports only hashed and redacted records (raw text only with keep_raw)."""
from __future__ import annotations

import hashlib
import json

from ingest_helpers import flywheel, query, trace, write_jsonl

NO_LIMIT = "ingest.max_quarantine_share=1"


def _export(project, name: str) -> list[bytes]:
    r = flywheel("ingest", f"export_quarantine={name}", "out=e.json", project=project)
    assert r.code == 0
    return (project / name).read_bytes().splitlines()


def test_reingesting_an_unfixed_export_does_not_grow_the_next_export(project):
    write_jsonl(project / "t.jsonl", [trace("t1"), trace("t2", latency_ms=-1), "{oops", "[1]",
                                      trace(None, input="no id", cost=-3)])
    flywheel("ingest", "path=t.jsonl", NO_LIMIT, project=project)
    first = _export(project, "q.jsonl")
    assert len(first) == 4
    for _ in range(3):  # the same export again and again, unfixed, and the source file once more
        again = flywheel("ingest", "path=q.jsonl", NO_LIMIT, "out=r.json", project=project)
        assert again.json["totals"]["quarantined"] == 4
        assert again.json["resolved"] == {"read again": 4}
        assert sorted(_export(project, "q.jsonl")) == sorted(first)
    flywheel("ingest", "path=t.jsonl", NO_LIMIT, project=project)
    assert sorted(_export(project, "q2.jsonl")) == sorted(first)
    assert query(project, "SELECT count(*) FROM quarantine WHERE resolved_at IS NULL") == [(4,)]


def test_fixed_lines_resolve_by_key_by_content_hash_and_by_export_line(project):
    write_jsonl(project / "t.jsonl", [trace("t1"), trace("t2", latency_ms=-1), "{oops",
                                      trace(None, input="no id", cost=-3), trace("t5", input=5)])
    flywheel("ingest", "path=t.jsonl", NO_LIMIT, project=project)
    lines = _export(project, "q.jsonl")
    reasons = [json.loads(x) for x in (project / "q.reasons.jsonl").read_text().splitlines()]
    assert [r["source_line"] for r in reasons] == [2, 3, 4, 5]
    fixed = [json.dumps({**json.loads(lines[0]), "latency_ms": 1}).encode(),    # t2: keeps its id
             json.dumps(trace("t3")).encode(),                                 # {oops: fixed into a record
             json.dumps({**json.loads(lines[2]), "cost": 3}).encode(),         # no id: new content hash
             lines[3]]                                                         # t5 left as it was
    (project / "q.jsonl").write_bytes(b"\n".join(fixed) + b"\n")
    r = flywheel("ingest", "path=q.jsonl", NO_LIMIT, "out=r.json", project=project)
    assert r.json["totals"] == {"read": 4, "accepted": 3, "inserted": 3, "duplicates": 0, "quarantined": 1}
    assert r.json["resolved"] == {"accepted": 3, "read again": 1}
    left = _export(project, "q.jsonl")
    assert left == [lines[3]]
    resolved = dict(query(project, "SELECT source_line, resolution FROM quarantine WHERE source_file = 't.jsonl'"))
    assert resolved == {2: "accepted", 3: "accepted", 4: "accepted", 5: "read again"}


def test_a_record_without_an_id_resolves_by_content_hash_and_a_file_fixed_in_place_by_line(project):
    record = trace(None, input="no id here", surprise=1)
    write_jsonl(project / "t.jsonl", [trace("t1"), record, '{"trace_id": "t3", "input": '])
    flywheel("ingest", "path=t.jsonl", "ingest.unknown_fields=quarantine", NO_LIMIT, project=project)
    assert len(_export(project, "q.jsonl")) == 2
    # the policy changes: the same record (same content hash) is accepted from another file
    write_jsonl(project / "other.jsonl", [record])
    r = flywheel("ingest", "path=other.jsonl", "out=r.json", project=project)
    assert r.json["resolved"] == {"accepted": 1}
    # the broken line is fixed in the source file itself, which is ingested again
    write_jsonl(project / "t.jsonl", [trace("t1"), record, trace("t3")])
    r = flywheel("ingest", "path=t.jsonl", "out=r.json", project=project)
    assert r.json["resolved"] == {"accepted": 1}
    assert _export(project, "q.jsonl") == []
    # a record with an id is not resolved by another record that takes its line
    write_jsonl(project / "u.jsonl", [trace("u1", latency_ms=-1)])
    flywheel("ingest", "path=u.jsonl", NO_LIMIT, project=project)
    write_jsonl(project / "u.jsonl", [trace("u2")])
    assert flywheel("ingest", "path=u.jsonl", "out=r.json", project=project).json["resolved"] == {}
    assert len(_export(project, "q.jsonl")) == 1


SALT = "s3cret"


def _sha(value: str) -> str:
    return hashlib.sha256((SALT + value).encode()).hexdigest()


def test_quarantine_applies_the_privacy_settings_and_keeps_raw_only_on_request(project):
    private = [trace("t1", user_id="alice", input="my card is 4111", attributes={"email": "a@x.io", "topic": "b"},
                     latency_ms=-1),                                   # rejected: kept hashed and redacted
               '{"trace_id": "t2", "user_id": "bob", "input": "secret',  # broken: withheld
               trace("t3", user_id="carol", input="fine")]
    conflict = trace("t3", user_id="carol", input="carol's other secret")  # a conflict: kept treated too
    write_jsonl(project / "t.jsonl", private)
    write_jsonl(project / "c.jsonl", [conflict])
    privacy = [f"ingest.privacy.salt={SALT}", "ingest.privacy.redact=[input,attributes.email]", NO_LIMIT]
    flywheel("ingest", "path=t.jsonl", *privacy, project=project)
    flywheel("ingest", "path=c.jsonl", *privacy, project=project)
    kept = query(project, "SELECT record_key, raw, raw_bytes FROM quarantine ORDER BY source_file DESC, source_line")
    assert [k for k, _, _ in kept] == ["t1", None, "t3"]
    t1, t2, t3 = (json.loads(r) if r else None for _, r, _ in kept)
    assert t1["user_id"] == "fw-sha256:" + _sha("alice") and t1["input"] == "[REDACTED]"
    assert t1["attributes"] == {"email": "[REDACTED]", "topic": "b"} and t1["latency_ms"] == -1
    assert t2 is None  # cannot be treated field by field: its text is not kept
    assert t3["user_id"] == "fw-sha256:" + _sha("carol") and t3["input"] == "[REDACTED]"
    everything = json.dumps(query(project, "SELECT * FROM quarantine"), default=str)
    for secret in ("alice", "bob", "carol", "4111", "a@x.io", "secret"):
        assert secret not in everything, secret
    exported = flywheel("ingest", "export_quarantine=q.jsonl", "out=e.json", *privacy, project=project)
    assert exported.json["export"]["records"] == 2 and exported.json["export"]["withheld"] == 1
    text = (project / "q.jsonl").read_text() + (project / "q.reasons.jsonl").read_text()
    for secret in ("alice", "bob", "carol", "4111", "a@x.io"):
        assert secret not in text, secret
    # fixed and ingested again: the hashed id is stored as the hash, not hashed twice (joins keep working)
    lines = (project / "q.jsonl").read_text().splitlines()
    fixed = [json.dumps({**json.loads(x), "latency_ms": 1}) if '"t1"' in x else x for x in lines]
    (project / "q.jsonl").write_text("\n".join(fixed) + "\n")
    flywheel("ingest", "path=q.jsonl", *privacy, project=project)
    assert dict(query(project, "SELECT trace_id, user_id FROM traces")) == {"t1": _sha("alice"), "t3": _sha("carol")}
    # the opt-in: raw lines kept as read
    write_jsonl(project / "k.jsonl", ['{"trace_id": "k1", "user_id": "dave", "input": "raw'])
    flywheel("ingest", "path=k.jsonl", *privacy, "ingest.quarantine.keep_raw=true", project=project)
    assert query(project, "SELECT raw FROM quarantine WHERE source_file = 'k.jsonl'") == \
        [('{"trace_id": "k1", "user_id": "dave", "input": "raw',)]


def test_privacy_treatment_is_stable_so_a_reingested_export_does_not_grow(project):
    privacy = [f"ingest.privacy.salt={SALT}", "ingest.privacy.redact=[comment]", NO_LIMIT]
    write_jsonl(project / "f.jsonl", [{"feedback_id": "f1", "trace_id": "t1", "user_id": "erin",
                                       "timestamp": "2025-03-01T10:00:00Z", "kind": "rating", "rating": 9,
                                       "comment": "call me at 555"}])
    flywheel("ingest", "path=f.jsonl", *privacy, project=project)
    flywheel("ingest", "export_quarantine=q.jsonl", *privacy, project=project)
    first = (project / "q.jsonl").read_bytes()
    for _ in range(2):
        flywheel("ingest", "path=q.jsonl", *privacy, project=project)
        flywheel("ingest", "export_quarantine=q.jsonl", *privacy, project=project)
        assert (project / "q.jsonl").read_bytes() == first
    assert b"erin" not in first and b"555" not in first
