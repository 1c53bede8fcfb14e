"""Migration 3 (judgements, embeddings) applies to stores migrated out of order."""
from __future__ import annotations

import duckdb

from engine.store import MIGRATIONS, SCHEMA_VERSION, Store


def test_a_missing_lower_version_is_applied_after_higher_ones(tmp_path):
    path = tmp_path / "gappy.duckdb"
    con = duckdb.connect(str(path))  # a store that got every migration except 3 (features land out of order)
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description VARCHAR, "
                "applied_at TIMESTAMPTZ DEFAULT now())")
    for version, description, statements in sorted(MIGRATIONS):
        if version == 3:
            continue
        for statement in statements:
            con.execute(statement)
        con.execute("INSERT INTO schema_migrations (version, description) VALUES (?, ?)", [version, description])
    con.close()
    with Store.open(path) as store:
        versions = [v for (v,) in store.con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()]
        assert versions == sorted(m[0] for m in MIGRATIONS)
        assert store.schema_version() == SCHEMA_VERSION
        tables = {t for (t,) in store.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert {"judgements", "embeddings"} <= tables
    with Store.open(path) as store:  # and opening it again changes nothing
        assert store.con.execute("SELECT count(*) FROM schema_migrations").fetchall()[0][0] == len(MIGRATIONS)
