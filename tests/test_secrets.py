"""Secrets never written in clear: a salt from the environment and an API key a server echoes are searched for
in every file a command wrote, in every table of the store and in the terminal output."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import pytest

from engine.provenance import config_hash, stored_config
from engine.redaction import fingerprint, is_secret_key, redact, register_secret, scrub

sys.path.insert(0, str(Path(__file__).resolve().parent / "models"))
from chat_server import ChatServer, Reply  # noqa: E402

SALT = "pepper-7f3a9c-not-a-dictionary-word"
KEY = "sk-live-5c1d8e2f9a7b4c3d"


@pytest.mark.parametrize("key,secret", [
    ("salt", True), ("api_key", True), ("apiKey", True), ("authToken", True), ("client_secret", True),
    ("db_password", True), ("secrets", True), ("key", True), ("credentials", True),
    ("api_key_env", False), ("max_tokens", False), ("prompt_tokens", False), ("hash_fields", False),
    ("keep_raw", False), ("monkey", False), ("id_field", False),
])
def test_secret_key_names(key, secret):
    assert is_secret_key(key) is secret


def test_redaction_fingerprints_named_and_registered_secrets_only():
    register_secret("from-the-environment-123")
    config = {"ingest": {"privacy": {"salt": "s3cr3t", "hash_fields": ["user_id"]}},
              "model": {"params": {"api_key": "k", "top_k": 3, "credentials": {"user": "u", "password": "p"}}},
              "store": {"path": "from-the-environment-123"}, "flag": True, "none": None}
    redacted = redact(config)
    assert redacted["ingest"]["privacy"] == {"salt": fingerprint("s3cr3t"), "hash_fields": ["user_id"]}
    assert redacted["model"]["params"] == {"api_key": fingerprint("k"), "top_k": 3,
                                           "credentials": {"user": fingerprint("u"), "password": fingerprint("p")}}
    assert redacted["store"]["path"] == fingerprint("from-the-environment-123")
    assert redacted["flag"] is True and redacted["none"] is None
    assert "s3cr3t" not in stored_config(config) and "from-the-environment-123" not in stored_config(config)
    assert scrub("path: from-the-environment-123.") == f"path: {fingerprint('from-the-environment-123')}."
    assert fingerprint("s3cr3t").startswith("pbkdf2-sha256:") and fingerprint("s3cr3t") != fingerprint("s3cr3u")


def test_values_resolved_from_the_environment_are_marked_where_they_land(monkeypatch):
    from omegaconf import OmegaConf

    from engine.config import resolve

    monkeypatch.setenv("FLYWHEEL_TEST_SALT", SALT)
    monkeypatch.setenv("FLYWHEEL_TEST_N", "2")
    plain = resolve(OmegaConf.create({
        "ingest": {"privacy": {"salt": "${oc.env:FLYWHEEL_TEST_SALT}"}},
        "run": {"batch_size": "${oc.decode:${oc.env:FLYWHEEL_TEST_N}}", "repeats": 2, "label": "v${oc.env:FLYWHEEL_TEST_N}"},
        "copy": "${ingest.privacy.salt}", "default": "${oc.env:FLYWHEEL_UNSET_VARIABLE,fallback}", "two": "2"}))
    assert plain["run"]["batch_size"] == 2 and plain["run"]["batch_size"] + 1 == 3  # still a number
    redacted = redact(plain)
    assert redacted["ingest"]["privacy"]["salt"] == redacted["copy"] == fingerprint(SALT)
    assert redacted["run"] == {"batch_size": fingerprint(2), "repeats": 2, "label": fingerprint("v2")}
    assert redacted["two"] == "2"  # the same value, not from the environment
    assert redacted["default"] == fingerprint("fallback")  # read through oc.env, even if the default was used


def test_the_provenance_hash_changes_with_the_secret_and_only_with_it():
    one = {"ingest": {"privacy": {"salt": "a-salt"}}, "out": None}
    assert config_hash(one) == config_hash({"ingest": {"privacy": {"salt": "a-salt"}}, "out": None})
    assert config_hash(one) != config_hash({"ingest": {"privacy": {"salt": "b-salt"}}, "out": None})


def test_a_config_error_does_not_print_the_secret_it_is_about(cli, project):
    r = cli("ingest", "ingest.privacy.salt=12345678", "path=data/mini.jsonl", cwd=project)
    assert r.code == 2, r
    out = r.stdout + r.stderr
    assert "@ ingest.privacy.salt: expected" in out and fingerprint(12345678) in out, out
    assert "12345678" not in out


def _leaks(root: Path, secret: str, store: Path) -> list[str]:
    """Every place under `root` (files, and rows of every table of the store) holding `secret` in clear."""
    found = [str(p) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    con = duckdb.connect(str(store), read_only=True)
    try:
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables "
                                    "WHERE table_schema = 'main'").fetchall():
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()  # names from the catalogue
            found += [f"{table}: {row!r:.200}" for row in rows if secret in repr(row)]
    finally:
        con.close()
    return found


SALTED_CONFIG = """\
defaults:
  - base
  - _self_
ingest:
  privacy:
    salt: ${oc.env:FLYWHEEL_TEST_SALT}
"""


def test_a_salt_from_the_environment_is_never_written_in_clear(cli, tmp_path):
    project = tmp_path / "salted"
    (project / "conf").mkdir(parents=True)
    (project / "conf" / "config.yaml").write_text(SALTED_CONFIG)
    env = {"FLYWHEEL_TEST_SALT": SALT}
    small = ["dataset=[support_safety]"]  # 40 cases: the smallest bundled set
    steps = [
        ("simulate", "model=bm25_clean", "simulate.days=3", "simulate.sessions_per_day=15", "simulate.users=30"),
        ("ingest", "path=data/production", "out=out/ingest.json"),
        ("evaluate", "model=bm25_clean", *small, "out=out/evaluate.json"),
        ("gate", "challenger=bm25_fast", "baseline=keyword_baseline", *small, "out=out/gate.json",
         "report=out/gate.html", "junit=out/gate.xml", "markdown=out/gate.md"),
        ("monitor", "out=out/monitor.json", "report=out/monitor.html"),
        ("bridge", "out=out/bridge.json"),
    ]
    printed = []
    for args in steps:
        r = cli(*args, cwd=project, env=env)
        assert r.code in (0, 1), r  # the gate blocks bm25_fast, the monitor may alert on 3 days of traffic
        printed.append(r.stdout + r.stderr)
    assert not any(SALT in text for text in printed)
    store = project / ".flywheel" / "flywheel.duckdb"
    assert _leaks(project, SALT, store) == []
    con = duckdb.connect(str(store), read_only=True)
    try:
        stored = con.execute("SELECT json_extract_string(config, '$.ingest.privacy.salt'), config_hash "
                             "FROM runs ORDER BY started_at").fetchall()
        hashed_users = con.execute("SELECT count(*) FROM traces WHERE length(user_id) = 64").fetchall()[0][0]
    finally:
        con.close()
    assert hashed_users > 0  # the salt was used: user ids are salted hashes
    assert {salt for salt, _ in stored} == {fingerprint(SALT)}
    # the same config gives the same hash; a new salt gives a new one
    cli("evaluate", "model=bm25_clean", *small, "out=out/evaluate.json", cwd=project, env=env)
    cli("evaluate", "model=bm25_clean", *small, "out=out/evaluate.json", cwd=project,
        env={"FLYWHEEL_TEST_SALT": SALT + "-rotated"})
    con = duckdb.connect(str(store), read_only=True)
    try:
        hashes = [h for (h,) in con.execute("SELECT config_hash FROM runs WHERE model_name = 'bm25_clean' "
                                            "AND command = 'evaluate' ORDER BY started_at").fetchall()]
    finally:
        con.close()
    assert hashes[0] == hashes[1] != hashes[2]


ECHO_MODEL = """\
name: echo
adapter: chat_completions
version: "1"
params:
  base_url: {base_url}
  model: echo-model
  api_key_env: FLYWHEEL_TEST_API_KEY
  max_retries: 0
"""


def test_an_api_key_echoed_by_the_server_is_never_stored_or_written(cli, project):
    with ChatServer() as server:
        for line in (project / "data" / "mini.jsonl").read_text().splitlines():
            server.script(json.loads(line)["input"], Reply.echo_header("Authorization"))
        (project / "conf" / "model" / "echo.yaml").write_text(ECHO_MODEL.format(base_url=server.base_url))
        env = {"FLYWHEEL_TEST_API_KEY": KEY}
        r = cli("gate", "challenger=echo", "out=out/gate.json", "report=out/gate.html", "junit=out/gate.xml",
                "markdown=out/gate.md", cwd=project, env=env)
        assert r.code == 1, r  # echoing the header is not an answer: blocked
        e = cli("evaluate", "model=echo", "out=out/evaluate.json", cwd=project, env=env)
        assert e.code == 0, e
        assert all(rec.headers.get("Authorization") == f"Bearer {KEY}" for rec in server.requests)
        assert server.requests  # the key was sent to the model's own host
    assert KEY not in r.stdout + r.stderr + e.stdout + e.stderr
    store = project / ".flywheel" / "flywheel.duckdb"
    assert _leaks(project, KEY, store) == []
    con = duckdb.connect(str(store), read_only=True)
    try:
        outputs = {o for (o,) in con.execute("SELECT output_text FROM outputs WHERE output_text IS NOT NULL").fetchall()}
    finally:
        con.close()
    assert f"you sent Authorization: Bearer {fingerprint(KEY)}" in outputs
