"""The DuckDB store: long fact tables, a recorded schema version and forward migrations.

A new metric, rule or feature never changes the schema: results are rows keyed by name. A later feature
that needs a new table appends a migration to MIGRATIONS; opening an older store applies the missing ones
in one transaction, so a store is never left half-migrated.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from engine.errors import UserError

# Each entry: (version, description, statements). Never edit a released entry; append a new one.
MIGRATIONS: list[tuple[int, str, tuple[str, ...]]] = [
    (1, "foundation: runs, datasets, cases, outputs, scores", (
        """CREATE TABLE dataset_versions (
            dataset_version VARCHAR PRIMARY KEY,  -- content hash of the records
            name VARCHAR NOT NULL,
            source VARCHAR NOT NULL,              -- file it was loaded from
            n_cases INTEGER NOT NULL,
            parent_version VARCHAR,               -- the version this one was derived from (the bridge)
            created_at TIMESTAMPTZ NOT NULL,
            provenance JSON
        )""",
        """CREATE TABLE cases (
            dataset_version VARCHAR NOT NULL,
            case_id VARCHAR NOT NULL,
            position INTEGER NOT NULL,            -- 1-based line in the source file
            input JSON NOT NULL,
            input_text VARCHAR NOT NULL,
            expected JSON,
            expected_answers VARCHAR[] NOT NULL,  -- acceptable answers as text (a list expected gives several)
            context VARCHAR[] NOT NULL,
            tags VARCHAR[] NOT NULL,
            metadata JSON NOT NULL,
            input_hash VARCHAR NOT NULL,          -- what the model sees: keys the output cache
            PRIMARY KEY (dataset_version, case_id)
        )""",
        """CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            command VARCHAR NOT NULL,
            model_name VARCHAR NOT NULL,
            model_fingerprint VARCHAR NOT NULL,
            config_hash VARCHAR NOT NULL,         -- the whole resolved config
            metrics_hash VARCHAR NOT NULL,        -- the metric definitions only: comparable runs share it
            dataset_versions JSON NOT NULL,       -- {dataset name: version}
            git_commit VARCHAR,
            started_at TIMESTAMPTZ NOT NULL,
            finished_at TIMESTAMPTZ,
            status VARCHAR NOT NULL,              -- running | ok | failed
            n_cases INTEGER,
            n_model_calls INTEGER,
            n_errors INTEGER,
            config JSON NOT NULL
        )""",
        """CREATE TABLE run_cases (
            run_id VARCHAR NOT NULL,
            dataset VARCHAR NOT NULL,
            dataset_version VARCHAR NOT NULL,
            case_id VARCHAR NOT NULL,
            input_hash VARCHAR NOT NULL,
            PRIMARY KEY (run_id, dataset_version, case_id)
        )""",
        """CREATE TABLE outputs (
            model_fingerprint VARCHAR NOT NULL,
            input_hash VARCHAR NOT NULL,
            repeat INTEGER NOT NULL,
            output_text VARCHAR,
            error VARCHAR,                        -- set when the call failed; such rows are retried next run
            latency_ms DOUBLE,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cost DOUBLE,
            raw JSON,
            run_id VARCHAR NOT NULL,              -- the run that called the model
            created_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (model_fingerprint, input_hash, repeat)
        )""",
        """CREATE TABLE scores (
            run_id VARCHAR NOT NULL,
            dataset VARCHAR NOT NULL,
            dataset_version VARCHAR NOT NULL,
            case_id VARCHAR NOT NULL,
            repeat INTEGER NOT NULL,
            metric VARCHAR NOT NULL,
            value DOUBLE,
            passed BOOLEAN NOT NULL,
            detail VARCHAR,                       -- why it failed: the rule, the category, the parse error
            PRIMARY KEY (run_id, dataset_version, case_id, repeat, metric)
        )""",
    )),
    (2, "production data: traces, feedback, events, quarantine, ingest batches", (
        # Written only by `flywheel ingest` (engine/ingest/load.py). No PRIMARY KEY on the fact tables: the
        # ingest enforces key uniqueness with one anti-join per batch inside its transaction (DuckDB allows one
        # writer), which is 3x faster than maintaining an ART index on 100M rows. Every row carries its
        # provenance: batch, source file, line (CSV/Parquet: row) and item (the span's record inside an OTLP line).
        """CREATE TABLE traces (
            trace_id VARCHAR NOT NULL,            -- the record's id, or 'h-' || md5 of the record when absent
            session_id VARCHAR,
            user_id VARCHAR,                      -- sha256(salt || user_id) when a privacy salt is set
            "timestamp" TIMESTAMPTZ NOT NULL,
            model VARCHAR NOT NULL,
            model_version VARCHAR,
            input VARCHAR NOT NULL,
            output VARCHAR,
            latency_ms DOUBLE,
            prompt_tokens BIGINT,
            completion_tokens BIGINT,
            cost DOUBLE,
            error VARCHAR,
            topic VARCHAR,                        -- attributes.topic/channel/locale/feature, promoted to columns
            channel VARCHAR,
            locale VARCHAR,
            feature VARCHAR,
            attributes JSON,                      -- all attributes, as given
            extra JSON,                           -- unknown top-level fields, kept (ingest.unknown_fields=keep)
            record_hash UBIGINT NOT NULL,         -- hash of the record's values: tells a duplicate from a conflict
            batch_id VARCHAR NOT NULL,
            source_file VARCHAR NOT NULL,
            source_line BIGINT,
            source_item INTEGER
        )""",
        """CREATE TABLE feedback (
            feedback_id VARCHAR NOT NULL,
            trace_id VARCHAR NOT NULL,
            session_id VARCHAR,
            user_id VARCHAR,
            "timestamp" TIMESTAMPTZ NOT NULL,
            kind VARCHAR NOT NULL,                -- rating | thumbs | ticket | behavior | correction | evaluation
            rating BIGINT,
            thumbs VARCHAR,
            signal VARCHAR,
            correction VARCHAR,                   -- the right answer, when the user or an agent gave it
            ticket_id VARCHAR,
            metric VARCHAR,
            value DOUBLE,
            label VARCHAR,
            comment VARCHAR,
            score DOUBLE,                         -- satisfaction in [0, 1] where the kind carries one
            attributes JSON,
            extra JSON,
            record_hash UBIGINT NOT NULL,
            batch_id VARCHAR NOT NULL,
            source_file VARCHAR NOT NULL,
            source_line BIGINT,
            source_item INTEGER
        )""",
        """CREATE TABLE events (
            event_id VARCHAR NOT NULL,
            user_id VARCHAR NOT NULL,
            session_id VARCHAR,
            trace_id VARCHAR,
            "timestamp" TIMESTAMPTZ NOT NULL,
            type VARCHAR NOT NULL,                -- signup | conversion | revenue | cancellation | churn | ...
            amount DOUBLE,
            currency VARCHAR,
            value DOUBLE,
            attributes JSON,
            extra JSON,
            record_hash UBIGINT NOT NULL,
            batch_id VARCHAR NOT NULL,
            source_file VARCHAR NOT NULL,
            source_line BIGINT,
            source_item INTEGER
        )""",
        """CREATE TABLE quarantine (
            batch_id VARCHAR NOT NULL,
            kind VARCHAR,                         -- NULL when the record's kind could not be told
            source_file VARCHAR NOT NULL,
            source_line BIGINT,                   -- NULL for a whole unreadable file
            source_item INTEGER,
            raw VARCHAR,                          -- the record as read (invalid UTF-8 bytes shown as U+FFFD)
            reasons VARCHAR[] NOT NULL,
            record_key VARCHAR,                   -- the record's id when it could be read
            quarantined_at TIMESTAMPTZ NOT NULL
        )""",
        """CREATE TABLE ingest_batches (
            batch_id VARCHAR NOT NULL,
            source_file VARCHAR NOT NULL,
            file_sha256 VARCHAR,
            file_bytes BIGINT,
            format VARCHAR NOT NULL,              -- jsonl | csv | parquet | otlp
            started_at TIMESTAMPTZ NOT NULL,
            finished_at TIMESTAMPTZ NOT NULL,
            n_read BIGINT NOT NULL,               -- n_read = n_accepted + n_quarantined
            n_accepted BIGINT NOT NULL,           -- n_accepted = n_inserted + n_duplicates
            n_inserted BIGINT NOT NULL,
            n_duplicates BIGINT NOT NULL,
            n_quarantined BIGINT NOT NULL,
            config JSON NOT NULL,                 -- kind, format, privacy (salt fingerprint, never the salt)
            PRIMARY KEY (batch_id, source_file)
        )""",
    )),
    (4, "release gate: decisions and blessed baselines", (
        """CREATE TABLE gate_decisions (
            decision_id VARCHAR PRIMARY KEY,
            baseline_run VARCHAR NOT NULL,
            challenger_run VARCHAR NOT NULL,
            baseline_model VARCHAR NOT NULL,
            challenger_model VARCHAR NOT NULL,
            verdict VARCHAR NOT NULL,             -- PASS | BLOCKED
            gate_config_hash VARCHAR NOT NULL,    -- the exact rules that decided
            git_commit VARCHAR,
            decided_at TIMESTAMPTZ NOT NULL,
            gate_config JSON NOT NULL,
            result JSON NOT NULL
        )""",
        """CREATE TABLE blessed_baselines (
            version INTEGER PRIMARY KEY,          -- 1, 2, ...: the latest is the default baseline
            model_name VARCHAR NOT NULL,
            model_fingerprint VARCHAR NOT NULL,
            model_spec JSON NOT NULL,
            decision_id VARCHAR NOT NULL,
            promoted_at TIMESTAMPTZ NOT NULL
        )""",
    )),
    (5, "monitoring: runs, results as a time series, stored reference profiles, live scores", (
        """CREATE TABLE monitor_runs (
            run_id VARCHAR PRIMARY KEY,
            started_at TIMESTAMPTZ NOT NULL,
            finished_at TIMESTAMPTZ NOT NULL,
            config_hash VARCHAR NOT NULL,         -- the monitor policy that produced the results
            git_commit VARCHAR,
            healthy BOOLEAN NOT NULL,             -- no blocking alert
            n_alerts INTEGER NOT NULL,
            result JSON NOT NULL
        )""",
        """CREATE TABLE monitor_results (
            run_id VARCHAR NOT NULL,
            section VARCHAR NOT NULL,             -- drift | kpi | parity | online
            name VARCHAR NOT NULL,                -- the rule, KPI or parity check
            model VARCHAR,                        -- model version, when the result is per model
            window_start TIMESTAMPTZ,             -- NULL: the whole current period
            statistic DOUBLE,
            p_value DOUBLE,
            threshold DOUBLE,
            alert BOOLEAN NOT NULL,
            severity VARCHAR NOT NULL,
            details JSON
        )""",
        """CREATE TABLE reference_profiles (
            profile_key VARCHAR PRIMARY KEY,      -- hash of the feature, the reference definition and its data
            feature VARCHAR NOT NULL,
            profile JSON NOT NULL,                -- bins and reference proportions, fitted once
            created_at TIMESTAMPTZ NOT NULL
        )""",
        """CREATE TABLE live_scores (
            trace_id VARCHAR NOT NULL,
            metric VARCHAR NOT NULL,
            metrics_hash VARCHAR NOT NULL,        -- the metric definition (same as in the lab)
            value DOUBLE,
            passed BOOLEAN NOT NULL,
            detail VARCHAR,
            scored_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (trace_id, metric, metrics_hash)
        )""",
    )),
    (6, "the bridge: exports and dataset heads", (
        """CREATE TABLE bridge_exports (
            export_id VARCHAR NOT NULL,
            trace_id VARCHAR NOT NULL,
            policy VARCHAR NOT NULL,              -- the sampling policy that selected the trace
            text_hash VARCHAR NOT NULL,           -- normalised input: deduplication across exports
            destination VARCHAR NOT NULL,         -- training | golden | label_queue
            config_hash VARCHAR NOT NULL,
            exported_at TIMESTAMPTZ NOT NULL
        )""",
        """CREATE TABLE dataset_heads (
            name VARCHAR PRIMARY KEY,             -- a golden dataset grown by the bridge
            dataset_version VARCHAR NOT NULL,     -- its latest version (a content hash in dataset_versions)
            path VARCHAR NOT NULL,                -- the JSONL file of that version
            updated_at TIMESTAMPTZ NOT NULL
        )""",
    )),
    (3, "metric extras: judgements, embeddings", (
        """CREATE TABLE judgements (
            run_id VARCHAR NOT NULL,
            metric_key VARCHAR NOT NULL,          -- content hash of the llm_judge metric's config
            dataset_version VARCHAR NOT NULL,
            case_id VARCHAR NOT NULL,
            repeat INTEGER NOT NULL,
            judge_fingerprint VARCHAR NOT NULL,
            prompt_hash VARCHAR NOT NULL,         -- the judge's cached answer: outputs(judge_fingerprint, prompt_hash)
            response VARCHAR,                     -- the judge's raw answer, parsed by the metric's SQL
            error VARCHAR,                        -- the judge call failed
            PRIMARY KEY (run_id, metric_key, dataset_version, case_id, repeat)
        )""",
        """CREATE TABLE embeddings (
            encoder VARCHAR NOT NULL,             -- content hash of the encoder config
            text_hash VARCHAR NOT NULL,           -- sha256 of the UTF-8 text (DuckDB sha256())
            vector FLOAT[] NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (encoder, text_hash)
        )""",
    )),
    (40, "outputs keyed by output identity: input (shared by equal inputs) or case (replay)", (
        # An output belongs to what identifies it for its adapter (engine/output_identity.py): the input hash
        # for a model whose answer depends on the input only, the case for replay. Rows of older stores were
        # all keyed by input hash, so their key is their input hash and old runs read back as they were.
        "ALTER TABLE outputs RENAME COLUMN input_hash TO output_key",
        # DuckDB cannot add a NOT NULL column to a filled table in one transaction: copy into a new table.
        """CREATE TABLE run_cases_v40 (
            run_id VARCHAR NOT NULL,
            dataset VARCHAR NOT NULL,
            dataset_version VARCHAR NOT NULL,
            case_id VARCHAR NOT NULL,
            input_hash VARCHAR NOT NULL,
            output_key VARCHAR NOT NULL,          -- the key of the output this case reads
            PRIMARY KEY (run_id, dataset_version, case_id)
        )""",
        "INSERT INTO run_cases_v40 SELECT run_id, dataset, dataset_version, case_id, input_hash, input_hash "
        "FROM run_cases",
        "DROP TABLE run_cases",
        "ALTER TABLE run_cases_v40 RENAME TO run_cases",
    )),
    (41, "dataset files already loaded: a file's exact bytes name its stored version", (
        """CREATE TABLE dataset_files (
            file_sha256 VARCHAR NOT NULL,         -- the file's bytes
            loader VARCHAR NOT NULL,              -- the rules it was validated with (engine/dataset_cache.py)
            dataset_version VARCHAR NOT NULL,     -- the version its records made
            PRIMARY KEY (file_sha256, loader)
        )""",
    )),
]

SCHEMA_VERSION = max(m[0] for m in MIGRATIONS)


class Store:
    """An open connection to the store file. Use `with Store.open(path) as store:`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path):
        self.con = con
        self.path = path
        self._depth = 0  # open transaction blocks

    @classmethod
    @contextmanager
    def open(cls, path: Path, read_only: bool = False) -> Iterator["Store"]:
        path = Path(path)
        if read_only and not path.exists():
            raise UserError(f"no store at {path}: run `flywheel evaluate` first (or set store.path)")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            con.execute("SET TimeZone = 'UTC'")  # windows (date_trunc) and reports are in UTC everywhere
        except duckdb.IOException as e:
            if "lock" in str(e).lower():
                raise UserError(f"the store {path} is in use by another flywheel process "
                                f"(DuckDB allows one writer); wait for it or use another store.path") from e
            raise UserError(f"cannot open the store {path}: {e}") from e
        store = cls(con, path)
        try:
            if not read_only:
                store.migrate()
            yield store
        finally:
            con.close()

    def schema_version(self) -> int:
        exists = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'").fetchall()[0][0]
        if not exists:
            return 0
        return self.con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()[0][0]

    def migrate(self) -> None:
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise UserError(f"the store {self.path} has schema version {current}, newer than this flywheel "
                            f"({SCHEMA_VERSION}); upgrade flywheel")
        # Versions are applied by set difference, not `> current`: features land out of order, so a store
        # may hold 1, 3 and 4 and still need 2.
        applied = set()
        if current:
            applied = {v for (v,) in self.con.execute("SELECT version FROM schema_migrations").fetchall()}
        pending = sorted((m for m in MIGRATIONS if m[0] not in applied), key=lambda m: m[0])
        if not pending:
            return
        with self.transaction():
            self.con.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMPTZ DEFAULT now())""")
            for version, description, statements in pending:
                for statement in statements:
                    self.con.execute(statement)
                self.con.execute("INSERT INTO schema_migrations (version, description) VALUES (?, ?)",
                                 [version, description])

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction; a nested block joins the outer one (DuckDB has no nested transactions), so a
        step that is atomic on its own stays atomic inside a larger unit of work."""
        if self._depth:
            self._depth += 1
            try:
                yield self.con
            finally:
                self._depth -= 1
            return
        self.con.execute("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")
        finally:
            self._depth = 0
