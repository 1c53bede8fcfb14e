"""Later migrations: trust fixes, judges, agents (see engine/migrations/__init__.py). Append new ones here."""
from __future__ import annotations

MIGRATIONS: list[tuple[int, str, tuple[str, ...]]] = [
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
    (103, "the sampling hash's version recorded with every trace the bridge sent (engine/sampling_hash.py)", (
        # Changing the hash changes which traces are sampled; every row sent before this migration was sampled by
        # version 1 (md5_number % 10^6), the only version so far.
        "ALTER TABLE bridge_exports ADD COLUMN sampling_hash INTEGER",
        "UPDATE bridge_exports SET sampling_hash = 1",
    )),
]
