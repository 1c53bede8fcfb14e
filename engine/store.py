"""The DuckDB store: long fact tables, a recorded schema version and forward migrations.

A new metric, rule or feature never changes the schema: results are rows keyed by name. A later feature
that needs a new table appends a migration to MIGRATIONS; opening an older store applies the missing ones
in one transaction, so a store is never left half-migrated.
"""
from __future__ import annotations

import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import duckdb

from engine import journal
from engine.errors import OperationalError, StoreBusy, UserError

T = TypeVar("T")

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
    (60, "what-if: the monitor policy each monitor run was computed with", (
        """CREATE TABLE monitor_policies (
            run_id VARCHAR PRIMARY KEY,           -- monitor_runs.run_id
            policy JSON NOT NULL                  -- {"monitor": the monitor section, "online_metric_hashes": {...}}
        )""",
    )),
    (30, "OpenTelemetry ids: span_id beside trace_id; OTLP traces stored as '<traceId>-<spanId>' split in two", (
        # A trace record's span_id is its answer span (engine/ingest/otel.py); feedback and events may name a
        # span instead of (or besides) a trace.
        "ALTER TABLE traces ADD COLUMN span_id VARCHAR",
        "ALTER TABLE feedback ADD COLUMN span_id VARCHAR",
        "ALTER TABLE events ADD COLUMN span_id VARCHAR",
        "ALTER TABLE feedback ALTER COLUMN trace_id DROP NOT NULL",  # a feedback record may name only a span
        # Before, an OTLP span was stored as trace_id = '<traceId>-<spanId>', so feedback keyed by the OTel trace
        # id joined nothing. Such rows become (traceId, spanId), and what referenced the old id follows, where
        # the OTel trace had one stored span and its id is not taken; a trace stored as several spans keeps its
        # old ids (the monitor still resolves '<traceId>-<spanId>' references to them).
        """CREATE TEMPORARY TABLE fw_otel_ids AS
           SELECT t.trace_id AS old_id, split_part(t.trace_id, '-', 1) AS new_id,
                  split_part(t.trace_id, '-', 2) AS span_id
           FROM traces AS t
           WHERE regexp_full_match(t.trace_id, '[0-9a-f]{32}-[0-9a-f]{16}')
             AND EXISTS (SELECT 1 FROM ingest_batches AS b WHERE b.batch_id = t.batch_id
                         AND b.source_file = t.source_file AND b.format = 'otlp')
             AND NOT EXISTS (SELECT 1 FROM traces AS o WHERE o.trace_id = split_part(t.trace_id, '-', 1))
           QUALIFY count(*) OVER (PARTITION BY split_part(t.trace_id, '-', 1)) = 1""",
        """UPDATE traces SET trace_id = m.new_id, span_id = m.span_id FROM fw_otel_ids AS m
           WHERE traces.trace_id = m.old_id""",
        """UPDATE feedback SET trace_id = m.new_id, span_id = coalesce(feedback.span_id, m.span_id)
           FROM fw_otel_ids AS m WHERE feedback.trace_id = m.old_id""",
        """UPDATE events SET trace_id = m.new_id, span_id = coalesce(events.span_id, m.span_id)
           FROM fw_otel_ids AS m WHERE events.trace_id = m.old_id""",
        "UPDATE live_scores SET trace_id = m.new_id FROM fw_otel_ids AS m WHERE live_scores.trace_id = m.old_id",
        "UPDATE bridge_exports SET trace_id = m.new_id FROM fw_otel_ids AS m WHERE bridge_exports.trace_id = m.old_id",
        "DROP TABLE fw_otel_ids",
    )),
    (10, "ingest corrections: quarantine identity and resolution, export lines, retractions, stale monitor runs", (
        # A quarantined record is identified by the hash of what the quarantine keeps (the same bad line read
        # again, e.g. from a re-ingested export, is the same record). It is resolved when a later batch stores
        # its key or content hash, or reads its source line or the export line it was written to again.
        "ALTER TABLE quarantine ADD COLUMN raw_bytes BLOB",          # the line's bytes when not valid UTF-8
        "ALTER TABLE quarantine ADD COLUMN content_hash VARCHAR",    # md5 of raw_bytes or raw (kept as kept)
        "ALTER TABLE quarantine ADD COLUMN resolved_at TIMESTAMPTZ",
        "ALTER TABLE quarantine ADD COLUMN resolved_by VARCHAR",     # the batch that resolved it (or retracted it)
        "ALTER TABLE quarantine ADD COLUMN resolution VARCHAR",      # accepted | read again | retracted
        "UPDATE quarantine SET content_hash = md5(raw) WHERE raw IS NOT NULL",
        """CREATE TABLE quarantine_exports (
            path VARCHAR NOT NULL,                -- the export file, as shown (relative to the project)
            line BIGINT NOT NULL,                 -- its line
            content_hash VARCHAR NOT NULL,        -- the quarantined record written there
            exported_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (path, line)
        )""",
        """CREATE TABLE ingest_retractions (
            batch_id VARCHAR PRIMARY KEY,         -- the ingest batch whose records were removed
            retracted_at TIMESTAMPTZ NOT NULL,
            removed JSON NOT NULL,                -- {traces: n, feedback: n, events: n, quarantine: n}
            data_from TIMESTAMPTZ,                -- the removed records' timestamps span
            data_to TIMESTAMPTZ
        )""",
        """CREATE TABLE monitor_stale (
            run_id VARCHAR NOT NULL,              -- a monitor run that read records later retracted
            batch_id VARCHAR NOT NULL,            -- the retracted batch
            data_from TIMESTAMPTZ,                -- the retracted records' span within the run's periods
            data_to TIMESTAMPTZ,
            marked_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (run_id, batch_id)
        )""",
    )),
    (80, "judge calibration: human labels, judge verdicts, calibrations as a time series", (
        # Written by `flywheel judges` (engine/judges/). A label is one person's verdict on one answer (the exact
        # text they read); a calibration is a judge's agreement with those labels, per judge fingerprint and slice.
        """CREATE TABLE judge_label_batches (
            batch_id VARCHAR PRIMARY KEY,
            source_file VARCHAR NOT NULL,
            file_sha256 VARCHAR NOT NULL,
            n_read BIGINT NOT NULL,               -- label records read = inserted + updated + unchanged + pending
            n_inserted BIGINT NOT NULL,
            n_updated BIGINT NOT NULL,            -- a person changed their verdict on the same answer
            n_unchanged BIGINT NOT NULL,
            n_pending BIGINT NOT NULL,            -- label-queue rows without a verdict yet, or rejected
            imported_at TIMESTAMPTZ NOT NULL
        )""",
        """CREATE TABLE judge_labels (
            label_key VARCHAR PRIMARY KEY,        -- hash of (metric, item, answer, labeller): re-imports update it
            metric VARCHAR NOT NULL,              -- the llm_judge metric whose question the person answered
            item_kind VARCHAR NOT NULL,           -- case | trace
            dataset VARCHAR,                      -- case: the dataset name
            dataset_version VARCHAR,              -- case: the version the case was read from
            item_id VARCHAR NOT NULL,             -- case id or trace id
            output_text VARCHAR NOT NULL,         -- the answer the person judged
            output_hash VARCHAR NOT NULL,
            output_source VARCHAR NOT NULL,       -- label (given in the file) | run:<run_id> | trace
            verdict VARCHAR,                      -- pass | fail
            score DOUBLE,                         -- a graded judgement, any scale (rank-correlated)
            labeller VARCHAR NOT NULL,
            labelled_at TIMESTAMPTZ,
            note VARCHAR,
            batch_id VARCHAR NOT NULL,
            source_file VARCHAR NOT NULL,
            source_line BIGINT NOT NULL,
            imported_at TIMESTAMPTZ NOT NULL
        )""",
        """CREATE TABLE judge_verdicts (
            metric VARCHAR NOT NULL,
            judge_fingerprint VARCHAR NOT NULL,   -- model + rubric + parameters (engine/judges/fingerprint.py)
            item_kind VARCHAR NOT NULL,           -- case | trace
            item_key VARCHAR NOT NULL,            -- dataset_version/case_id, or the trace id
            output_hash VARCHAR NOT NULL,
            prompt_hash VARCHAR NOT NULL,         -- the judge's cached answer: outputs(judge model, prompt_hash)
            value DOUBLE NOT NULL,
            passed BOOLEAN NOT NULL,
            detail VARCHAR,
            judged_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (metric, judge_fingerprint, item_kind, item_key, output_hash)
        )""",
        """CREATE TABLE judge_calibration_runs (
            calibration_id VARCHAR PRIMARY KEY,
            calibrated_at TIMESTAMPTZ NOT NULL,
            config_hash VARCHAR NOT NULL,         -- the judges section + the calibrated metric definitions
            git_commit VARCHAR,
            result JSON NOT NULL
        )""",
        """CREATE TABLE judge_calibrations (
            calibration_id VARCHAR NOT NULL,
            metric VARCHAR NOT NULL,
            judge_fingerprint VARCHAR NOT NULL,
            judge_model_fingerprint VARCHAR NOT NULL,
            rubric_hash VARCHAR NOT NULL,
            params JSON NOT NULL,                 -- the metric parameters in the fingerprint (threshold)
            slice VARCHAR NOT NULL,               -- '*' for every label, else a capability tag
            n_labels INTEGER NOT NULL,            -- answers with a human verdict (ties between people excluded)
            n_scored INTEGER NOT NULL,            -- answers with a human score
            accuracy DOUBLE,
            kappa DOUBLE,                         -- Cohen's kappa, human verdict vs judge verdict
            kappa_low DOUBLE,                     -- bootstrap percentile interval (seeded)
            kappa_high DOUBLE,
            spearman DOUBLE,                      -- human score vs judge score
            confusion JSON NOT NULL,              -- {"human_pass": {"judge_pass": n, "judge_fail": n}, ...}
            calibrated_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (calibration_id, metric, slice)
        )""",
    )),
    (20, "runs record the process that owns them, so a killed run can be marked aborted", (
        # status: running | ok | failed | aborted. A writable Store.open stamps its process identity into session
        # variables, and these defaults copy it into every new run row, whichever module inserts it.
        "ALTER TABLE runs ADD COLUMN owner_pid BIGINT",
        "ALTER TABLE runs ADD COLUMN owner_host VARCHAR",
        "ALTER TABLE runs ADD COLUMN owner_started VARCHAR",  # the process's start time: tells pid reuse apart
        "ALTER TABLE runs ADD COLUMN aborted_at TIMESTAMPTZ",  # when a later command found the process gone
        "ALTER TABLE runs ALTER COLUMN owner_pid SET DEFAULT getvariable('flywheel_owner_pid')",
        "ALTER TABLE runs ALTER COLUMN owner_host SET DEFAULT getvariable('flywheel_owner_host')",
        "ALTER TABLE runs ALTER COLUMN owner_started SET DEFAULT getvariable('flywheel_owner_started')",
    )),
    (21, "the bridge publishes its files only after its transaction commits", (
        """CREATE TABLE bridge_publications (
            export_id VARCHAR NOT NULL,
            staged_path VARCHAR NOT NULL,         -- where the file was written (relative to the project)
            final_path VARCHAR NOT NULL,          -- where it appears once published (relative to the project)
            published_at TIMESTAMPTZ,             -- NULL: committed, rename pending (engine/bridge/publish.py)
            PRIMARY KEY (export_id, final_path)
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
    (90, "ingest: compiled validation SQL kept, keyed by the hash of schema, compiler and options", (
        """CREATE TABLE ingest_sql_cache (
            cache_key VARCHAR NOT NULL,           -- engine/ingest/compiled.py::cache_key
            kind VARCHAR NOT NULL,
            statement VARCHAR NOT NULL,           -- insert, validate, settle, ...
            sql VARCHAR NOT NULL,
            params JSON NOT NULL,                 -- the parameter names it binds
            created_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (cache_key, statement)
        )""",
    )),
    (100, "agents: conversation and task rows of golden cases, trajectory steps of outputs", (
        # engine/agents/cases.py writes the task rows with a dataset version; engine/agents/steps.py unrolls an
        # output's recorded trajectory (outputs.raw) into one row per step. The trajectory metrics join them.
        """CREATE TABLE agent_cases (
            dataset_version VARCHAR NOT NULL,
            case_id VARCHAR NOT NULL,
            messages JSON NOT NULL,               -- the conversation before the input ([] when none)
            order_mode VARCHAR,                   -- exact | in_order | any_order | subset (NULL: no task)
            forbidden_tools VARCHAR[] NOT NULL,
            max_steps INTEGER,                    -- step budget (NULL: none)
            n_expected INTEGER,                   -- expected tool calls (NULL: not declared)
            PRIMARY KEY (dataset_version, case_id)
        )""",
        """CREATE TABLE agent_expected_calls (
            dataset_version VARCHAR NOT NULL,
            case_id VARCHAR NOT NULL,
            position INTEGER NOT NULL,            -- 0-based, in declared order
            name VARCHAR NOT NULL,
            PRIMARY KEY (dataset_version, case_id, position)
        )""",
        """CREATE TABLE agent_argument_checks (
            dataset_version VARCHAR NOT NULL,
            case_id VARCHAR NOT NULL,
            position INTEGER NOT NULL,            -- the expected call it constrains
            check_no INTEGER NOT NULL,
            path VARCHAR NOT NULL,                -- JSON path into the call's arguments
            op VARCHAR NOT NULL,                  -- equals | regex | approx
            value JSON,                           -- equals: the JSON value
            pattern VARCHAR,                      -- regex: searched in the value as text
            approx DOUBLE,                        -- approx: |value - approx| <= tolerance
            tolerance DOUBLE,
            PRIMARY KEY (dataset_version, case_id, position, check_no)
        )""",
        """CREATE TABLE trajectory_steps (
            model_fingerprint VARCHAR NOT NULL,
            output_key VARCHAR NOT NULL,
            repeat INTEGER NOT NULL,
            step INTEGER NOT NULL,                -- 0-based; the last step of a trajectory is its final answer
            kind VARCHAR NOT NULL,                -- tool_call | message | final
            role VARCHAR,                         -- message: assistant | user | tool | system
            content VARCHAR,                      -- message or final answer text
            tool_name VARCHAR,
            tool_call_id VARCHAR,
            call_index INTEGER,                   -- tool_call: 0-based among the trajectory's tool calls
            arguments JSON,
            result JSON,
            error VARCHAR,                        -- the tool call failed
            latency_ms DOUBLE,
            PRIMARY KEY (model_fingerprint, output_key, repeat, step)
        )""",
    )),
    (101, "agents in production: the tool calls of ingested OTel GenAI traces (execute_tool spans)", (
        # Written by `flywheel ingest` (engine/agents/otel_steps.py) in its transaction; trace_id joins traces.
        """CREATE TABLE trace_tool_steps (
            trace_id VARCHAR NOT NULL,
            span_id VARCHAR NOT NULL,
            parent_span_id VARCHAR,               -- the agent or model-call span that made the call
            step INTEGER NOT NULL,                -- 0-based order of the trace's tool calls by start time
            tool_name VARCHAR,                    -- gen_ai.tool.name
            tool_call_id VARCHAR,                 -- gen_ai.tool.call.id
            arguments JSON,                       -- gen_ai.tool.call.arguments, when captured
            result JSON,                          -- gen_ai.tool.call.result, when captured
            error VARCHAR,                        -- status ERROR: its message (or error.type)
            started_at TIMESTAMPTZ,
            latency_ms DOUBLE,
            batch_id VARCHAR NOT NULL,
            source_file VARCHAR NOT NULL,
            source_line BIGINT,
            PRIMARY KEY (trace_id, span_id)
        )""",
    )),
    (102, "agents in production: the earlier turns of an ingested agent conversation (invoke_agent input)", (
        # Written by `flywheel ingest` (engine/agents/otel_steps.py); the bridge makes them a golden case's messages.
        """CREATE TABLE trace_conversations (
            trace_id VARCHAR NOT NULL PRIMARY KEY,
            span_id VARCHAR NOT NULL,             -- the invoke_agent span whose input held the conversation
            messages JSON NOT NULL,               -- [{role, content}] before the trace's input, oldest first
            batch_id VARCHAR NOT NULL,
            source_file VARCHAR NOT NULL,
            source_line BIGINT
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
    def open(cls, path: Path, read_only: bool = False, lock_wait_s: float | None = None) -> Iterator["Store"]:
        """Open the store, waiting up to `lock_wait_s` (default: the configured `store.lock_wait_s`) while another
        process holds it. A writable open marks runs whose process is gone as aborted; a run of this process
        that is still `running` when the block exits with an exception is marked failed (aborted on Ctrl-C)."""
        path = Path(path)
        if read_only and not path.exists():
            raise UserError(f"no store at {path}: run `flywheel evaluate` first (or set store.path)")
        path.parent.mkdir(parents=True, exist_ok=True)
        wait = lock_wait if lock_wait_s is None else lock_wait_s
        con = retry_while_locked(lambda: duckdb.connect(str(path), read_only=read_only), path, wait)
        if journal.current() is not None:  # the command records what it runs (run_results.json)
            con = journal.RecordingConnection(con, journal.current())
        store = cls(con, path)
        try:
            with journal.phase("connect"):
                con.execute("SET TimeZone = 'UTC'")  # windows (date_trunc) and reports are in UTC everywhere
                if not read_only:
                    from engine import abandoned_runs

                    with journal.phase("migrate"):
                        store.migrate()
                    abandoned_runs.stamp_owner(store)
                    abandoned_runs.mark_abandoned(store)
            try:
                yield store
            except BaseException as e:
                if not read_only and not isinstance(e, GeneratorExit):
                    from engine import abandoned_runs

                    abandoned_runs.close_own_runs(store, interrupted=isinstance(e, KeyboardInterrupt))
                raise
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
        with journal.phase("transaction"):
            self.con.execute("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield self.con
        except BaseException:
            with journal.phase("transaction"):
                self.con.execute("ROLLBACK")
            raise
        else:
            with journal.phase("transaction"):
                self.con.execute("COMMIT")
        finally:
            self._depth = 0


# How long a command waits for another process to release the store (`store.lock_wait_s`); the CLI sets it
# from the composed config before a command runs.
DEFAULT_LOCK_WAIT_S = 30.0
lock_wait = DEFAULT_LOCK_WAIT_S


def set_lock_wait(seconds: float) -> None:
    global lock_wait
    lock_wait = float(seconds)


_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


def _is_lock_conflict(e: duckdb.Error) -> bool:
    return isinstance(e, duckdb.IOException) and "conflicting lock" in str(e).lower()


def retry_while_locked(open_fn: Callable[[], T], path: Path, wait_s: float) -> T:
    """Call `open_fn` (a connect or ATTACH of the store) until no other process holds the store's lock, for at
    most `wait_s` seconds; say once that we wait, and raise StoreBusy (exit 3) when the wait is over."""
    from engine.console import err_console

    deadline = None
    while True:
        try:
            return open_fn()
        except duckdb.Error as e:
            if not _is_lock_conflict(e):
                if "no space left" in str(e).lower():
                    raise OperationalError(f"cannot open the store {path}: the disk is full") from e
                raise UserError(f"cannot open the store {path}: {e}") from e
            m = _HOLDER.search(str(e))
            holder = f"process {m['pid']}" if m else "another process"
            now = time.monotonic()
            if deadline is None:
                deadline = now + wait_s
                if wait_s > 0:
                    err_console.print(f"the store {path} is in use by {holder} (DuckDB allows one writer); "
                                      f"waiting up to {wait_s:g} s for it (store.lock_wait_s)", highlight=False)
            if now >= deadline:
                raise StoreBusy(f"the store {path} is still in use by {holder} after waiting {wait_s:g} s "
                                f"(store.lock_wait_s); run again when it has finished") from e
            time.sleep(min(0.2, deadline - now))
