"""Migrations of the lab and the first production tables (see engine/migrations/__init__.py)."""
from __future__ import annotations

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
    (60, "what-if: the monitor policy each monitor run was computed with", (
        """CREATE TABLE monitor_policies (
            run_id VARCHAR PRIMARY KEY,           -- monitor_runs.run_id
            policy JSON NOT NULL                  -- {"monitor": the monitor section, "online_metric_hashes": {...}}
        )""",
    )),
]
