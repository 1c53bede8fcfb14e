"""`flywheel bridge`: sample production traces into a training export, and turn production failures into a new
immutable version of a golden dataset (corrections as ground truth; the rest into a label queue)."""
from __future__ import annotations

import json
import os
import signal
import uuid
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
from sqlglot import exp

from engine import datasets as ds, journal, jsonlines
from engine.bridge import publish
from engine.bridge.redact import redact
from engine.bridge.spec import BridgeSpec, ExportSpec
from engine.bridge.sampling import compile_policy
from engine.bridge.texts import text_hash
from engine.dataset_carry import follow_head
from engine.errors import UserError
from engine.monitor.sources import with_resolved_feedback
from engine.backend_choice import backend_for, provenance
from engine.executor import execute
from engine.monitor.sources import traces_in_scope
from engine.monitor.spec import Scope
from engine.paths import resolve_data_path
from engine.provenance import config_hash as provenance_hash
from engine.provenance import utc_now
from engine.sampling_hash import SAMPLING_HASH
from engine.sql import Plan, PythonStep, Statement, literal, parse, statement, temp_table
from engine.store import Store

SELECTED = "bridge_selected"


def traces_relation(cfg: dict) -> exp.Select:
    bridge = BridgeSpec.of(cfg)
    window = Scope.of_section(cfg.get("monitor")).window  # the monitor's windows
    return traces_in_scope(Scope(window, None, bridge.start, bridge.end))


def selection_statement(cfg: dict) -> Statement:
    """Every policy's selection, each trace kept under the first policy (config order) that selected it."""
    bridge = BridgeSpec.of(cfg)
    traces = traces_relation(cfg)
    parts = []
    for i, (name, policy) in enumerate(bridge.policies.items()):
        q = compile_policy(name, policy, traces, bridge.salt)
        parts.append(exp.select("trace_id", "ord", "policy", exp.alias_(literal(i), "policy_order"))
                     .from_(q.subquery(f"p{i}")))
    union = parts[0]
    for p in parts[1:]:
        union = exp.union(union, p, distinct=False)
    ranked = parse(f"""
        CREATE OR REPLACE TEMP TABLE {SELECTED} AS
        SELECT s.trace_id, s.policy, s.policy_order, s.ord, t.input, t.output, t.topic, t.user_id, t.model,
               t.model_version, t."timestamp", t.attributes, __hash__ AS text_hash
        FROM (SELECT 1) AS s JOIN traces AS t ON t.trace_id = s.trace_id
        QUALIFY row_number() OVER (PARTITION BY s.trace_id ORDER BY s.policy_order, s.ord) = 1""")
    ranked = ranked.transform(lambda n: text_hash(exp.column("input", table="t"))
                              if isinstance(n, exp.Column) and n.name == "__hash__" else n)
    ranked.find(exp.Select).from_(union.subquery("s"), copy=False)
    return Statement("select", ranked, (), "every policy's sample; a trace counts under its first policy")


def golden_hashes_statement() -> Statement:
    """The normalised inputs of every golden case of every stored version, and of every trace already sent to
    a golden set or its label queue: the leakage guard's list."""
    cases = exp.select(exp.alias_(text_hash(exp.column("input_text")), "text_hash")).from_("cases").distinct()
    sent = parse("SELECT text_hash FROM bridge_exports WHERE destination IN ('golden', 'label_queue')")
    return Statement("golden_hashes", temp_table("golden_hashes", exp.union(cases, sent, distinct=True)), (),
                     "the leakage guard: golden inputs never leave for training")


TRAINING = "bridge_training"  # the training export's rows (before layout), materialised once


def _redacted(tree: exp.Expression, pii: list[str]) -> exp.Expression:
    """Fill the template's __input__, __output__ and __correction__ with the PII-redacted columns."""
    sources = {"__input__": ("input", "s"), "__output__": ("output", "s"), "__correction__": ("correction", "c")}

    def sub(n):
        if isinstance(n, exp.Column) and n.name in sources:
            name, table = sources[n.name]
            return redact(exp.column(name, table=table), pii)
        return n
    return tree.transform(sub)


def training_statement(cfg: dict) -> Statement:
    """Selected traces that may leave the store for training: not a golden case (leakage guard), not exported
    before, one per normalised input; PII redacted; the correction (if any) as the target."""
    pii = list(BridgeSpec.of(cfg).export.pii)
    tree = parse(f"""
        SELECT s.trace_id, s.policy, s.topic, s.model, s.model_version, s."timestamp", s.text_hash,
               __input__ AS input, __output__ AS output,
               coalesce(__correction__, __output__) AS target,
               CASE WHEN c.correction IS NOT NULL THEN 'correction' ELSE 'model_output' END AS target_source
        FROM {SELECTED} AS s
        LEFT JOIN (SELECT trace_id, arg_max(correction, "timestamp") AS correction FROM feedback
                   WHERE kind = 'correction' AND correction IS NOT NULL GROUP BY trace_id) AS c
          ON c.trace_id = s.trace_id
        WHERE s.text_hash NOT IN (SELECT text_hash FROM golden_hashes)
          AND s.text_hash NOT IN (SELECT text_hash FROM bridge_exports WHERE destination = 'training')
        QUALIFY row_number() OVER (PARTITION BY s.text_hash ORDER BY s.policy_order, s.ord, s.trace_id) = 1
        ORDER BY s.policy_order, s.ord, s.trace_id""")
    return Statement("training", temp_table(TRAINING, with_resolved_feedback(_redacted(tree, pii))), (),
                     "the training export (before layout)")


def candidates_statement(cfg: dict) -> Statement:
    """Production failures that become golden cases: from the declared policies, new to the dataset."""
    pii = list(BridgeSpec.of(cfg).export.pii)
    tree = parse(f"""
        SELECT s.trace_id, s.policy, s.topic, s.model, s.model_version, s."timestamp", s.text_hash,
               __input__ AS input, __output__ AS output, __correction__ AS correction, c.feedback_id
        FROM {SELECTED} AS s
        LEFT JOIN (SELECT trace_id, arg_max(correction, "timestamp") AS correction,
                          arg_max(feedback_id, "timestamp") AS feedback_id FROM feedback
                   WHERE kind = 'correction' AND correction IS NOT NULL GROUP BY trace_id) AS c
          ON c.trace_id = s.trace_id
        WHERE s.policy IN (SELECT unnest($policies))
          AND s.text_hash NOT IN (SELECT text_hash FROM parent_hashes)
          AND s.text_hash NOT IN (SELECT text_hash FROM bridge_exports WHERE destination IN ('golden', 'label_queue'))
        QUALIFY row_number() OVER (PARTITION BY s.text_hash ORDER BY c.correction IS NULL, s.ord, s.trace_id) = 1
        ORDER BY s.ord, s.trace_id""")
    return Statement("candidates", with_resolved_feedback(_redacted(tree, pii)), ("policies",),
                     "failures into golden cases", "when bridge.golden.dataset names a dataset to grow")


EXPORTED_FOR_TRAINING = Statement("exports:training", parse(
    f"INSERT INTO bridge_exports SELECT $export_id, trace_id, policy, text_hash, 'training', $config_hash, now(), "
    f"$sampling_hash FROM {TRAINING}"), ("export_id", "config_hash", "sampling_hash"),
    "what left for training (and the sampling hash version that chose it), so it never leaves twice")


POLICY_COUNTS = Statement("select:counts", parse(f"SELECT policy, count(*) AS n FROM {SELECTED} GROUP BY 1"),
                          (), "traces selected per policy")
EXCLUDED = Statement("leakage:excluded", parse(f"SELECT count(*) AS n FROM {SELECTED} WHERE text_hash IN "
                                               f"(SELECT text_hash FROM golden_hashes)"), (),
                     "selected traces that were golden cases and stayed out")
_GROWS = "when bridge.golden.dataset names a dataset to grow"
RECOVER = PythonStep("publish:recover", "files staged by a bridge killed after its commit are published first "
                     "(engine/bridge/publish.py)")
PARENT = PythonStep("golden:dataset", "the golden dataset to grow: its file's version stored, the bridge's head "
                    "followed", _GROWS)
GROW = PythonStep("golden:grow", "the candidates with a correction become a new dataset version (file staged), "
                  "the others a label queue; both recorded in bridge_exports", _GROWS)
EXPORT_FILE = PythonStep("export:file", "the training file written by DuckDB (COPY, JSONL or Parquet, staged) and "
                         "read back by the leakage guard")
PUBLISH = PythonStep("publish", "the staged files recorded in the transaction, renamed into place after the commit")
IMPORT = PythonStep("labels:import", "a filled-in label queue imported as a new dataset version")


def compile_plan(cfg: dict) -> Plan:
    """The bridge's steps in the order they run (the golden candidates come first when a dataset grows)."""
    if cfg.get("import_labels"):
        return Plan("bridge", (RECOVER, PARENT, IMPORT, PUBLISH))
    return Plan("bridge", (RECOVER, PARENT, selection_statement(cfg), POLICY_COUNTS, candidates_statement(cfg),
                           GROW, golden_hashes_statement(), training_statement(cfg), export_rows_statement(cfg),
                           EXPORT_FILE,
                           EXPORTED_FOR_TRAINING, EXCLUDED, PUBLISH))


EXPORT_ROWS = "bridge_export_rows"  # the training rows in the export's layout, with their provenance


def export_rows_statement(cfg: dict) -> Statement:
    """The training rows in the configured layout (chat messages or flat columns), each with its provenance."""
    export = BridgeSpec.of(cfg).export
    common = ("trace_id, policy, $config_hash AS config_hash, $exported_at AS exported_at, $export_id AS export_id, "
              "$sampling_hash AS sampling_hash, topic, target_source"
              + ("" if "model" in export.dropped_fields else ", model, model_version"))
    if export.layout == "chat":
        body = (f"SELECT {common}, [{{'role': 'user', 'content': input}}, "
                f"{{'role': 'assistant', 'content': target}}] AS messages FROM {TRAINING}")
    else:
        body = f"SELECT {common}, input, output, target FROM {TRAINING}"
    return Statement("export:rows", temp_table(EXPORT_ROWS, parse(body)),
                     ("config_hash", "exported_at", "export_id", "sampling_hash"),
                     f"the training rows in the {export.layout} layout, with the export's provenance")


EXPORT_COUNT = statement("export:count", f"SELECT count(*) AS n FROM {EXPORT_ROWS}", "the records exported")


def _copy_export(path: Path, export: ExportSpec) -> Statement:
    """COPY the export's rows into its (staged) file, JSONL or Parquet; the path is a quoted literal."""
    fmt = "PARQUET" if export.format == "parquet" else "JSON"
    copy = parse(f"COPY (SELECT * FROM {EXPORT_ROWS}) TO 'file' (FORMAT {fmt})")
    copy.set("files", [literal(str(path))])
    return Statement("export:copy", copy, (), "the export's file")


def run_bridge(store: Store, cfg: dict, project_dir: Path, import_labels: str | None = None) -> dict:
    """One bridge export as one unit of work: the store's records and the files appear together or not at all
    (files are staged and published after the commit, engine/bridge/publish.py)."""
    plan = journal.running_plan(compile_plan(cfg))  # compiled once: what runs and what run artifacts show
    out_dir = resolve_data_path(BridgeSpec.of(cfg).out_dir, project_dir)
    with journal.step(RECOVER.name):
        publish.recover(store, project_dir, out_dir)
    export_id = f"bridge-{utc_now().strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    staging = publish.Staging(store, out_dir, export_id, project_dir)
    backend = backend_for(store, cfg, project_dir)  # DuckDB, or Spark over the production sources
    try:
        with store.transaction():
            result = _export(store, backend, cfg, plan, project_dir, import_labels, out_dir, staging)
            with journal.step(PUBLISH.name):
                staging.record()
            _test_seam("before_commit")
    except BaseException:
        staging.discard()
        raise
    _test_seam("before_publish")
    with journal.step(PUBLISH.name):
        publish.publish(store, project_dir, export_id)
    return result


# Test seam (used only by tests/bridge/test_bridge_atomic.py): FLYWHEEL_TEST_KILL_BRIDGE_AT=before_commit or
# before_publish makes the process SIGKILL itself at that point, to prove a killed bridge leaves no duplicates.
_KILL_AT_ENV = "FLYWHEEL_TEST_KILL_BRIDGE_AT"


def _test_seam(point: str) -> None:
    if os.environ.get(_KILL_AT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _export(store: Store, backend, cfg: dict, plan: Plan, project_dir: Path, import_labels: str | None,
            out_dir: Path, staging: publish.Staging) -> dict:
    bridge = BridgeSpec.of(cfg)
    run = backend.run
    export_id = staging.export_id
    exported_at = utc_now().isoformat()
    config_hash = provenance_hash(cfg["bridge"])  # the section as configured (a default added later changes nothing)
    name = bridge.golden.dataset
    parent = None
    if name:
        with journal.step(PARENT.name):
            parent = _parent_dataset(store, cfg, project_dir, name)
    result = {"command": "bridge", "export_id": export_id, "config_hash": config_hash, "exported_at": exported_at,
              "sampling_hash": SAMPLING_HASH, "policies": {}, "training": None, "golden": None,
              "store": str(store.path), "backend": provenance(backend)}
    if import_labels:
        with journal.step(IMPORT.name):
            result["golden"] = _import_labels(store, project_dir, import_labels, parent, out_dir, staging)
        return result

    steps = {st.name: st for st in plan.statements}
    run(steps["select"], {})
    for row in run(POLICY_COUNTS, {}):
        result["policies"][row["policy"]] = {"selected": row["n"]}
    for policy in bridge.policies:
        result["policies"].setdefault(policy, {"selected": 0})

    # failures into golden cases first: they are test cases from now on, so the training export must not hold
    # them, nor the failures waiting in the label queue
    if name:
        with journal.step(GROW.name):
            result["golden"] = _grow_golden(store, backend, steps["candidates"], bridge, parent, out_dir, staging,
                                            config_hash)
    run(steps["golden_hashes"], {})

    # training export
    export = bridge.export
    run(steps["training"], {})
    meta = {"config_hash": config_hash, "exported_at": exported_at, "export_id": export_id,
            "sampling_hash": SAMPLING_HASH}
    run(steps["export:rows"], meta)
    suffix = "parquet" if export.format == "parquet" else "jsonl"
    final = out_dir / f"training-{export_id}.{suffix}"
    path = staging.stage(final)
    with journal.step(EXPORT_FILE.name):
        path.parent.mkdir(parents=True, exist_ok=True)
        run(_copy_export(path, export), {})
        n = run(EXPORT_COUNT, {})[0]["n"]
        leaked = _leaks(run, path, suffix) if n else 0
    if leaked:  # the query excludes them; this re-reads what was written, so a bug cannot leak silently
        raise RuntimeError(f"leakage guard: {leaked} exported records match golden cases; nothing exported")
    run(steps["exports:training"], {"export_id": export_id, "config_hash": config_hash,
                                    "sampling_hash": SAMPLING_HASH})
    excluded = run(EXCLUDED, {})[0]["n"]
    result["training"] = {"path": str(final), "records": n, "format": suffix, "layout": export.layout,
                          "excluded_golden_matches": excluded}
    return result


def _leaks(run, path: Path, suffix: str) -> int:
    """Exported records whose trace's original input is a golden case: read back from the written file (by the
    store, which wrote it), then matched against the traces wherever they are."""
    reader = "read_parquet" if suffix == "parquet" else "read_json_auto"
    written = exp.Anonymous(this=reader, expressions=[literal(str(path))])
    run(Statement("export:written_ids", temp_table(WRITTEN_IDS, exp.select("trace_id").from_(
        exp.Table(this=written)))), {})
    check = exp.select("count(*) AS n").from_(exp.table_(WRITTEN_IDS).as_("e")).join(
        exp.table_("traces").as_("t"), on="t.trace_id = e.trace_id").where(
        exp.column("text_hash", table="g").is_(exp.null()).not_()).join(
        exp.table_("golden_hashes").as_("g"), on=exp.EQ(this=exp.column("text_hash", table="g"),
                                                        expression=text_hash(exp.column("input", table="t"))),
        join_type="left")
    return run(Statement("export:leak_check", check), {})[0]["n"]


WRITTEN_IDS = "bridge_written_ids"  # the trace ids read back from the written export file


def _parent_dataset(store: Store, cfg: dict, project_dir: Path, name: str) -> ds.DatasetVersion:
    spec = (cfg.get("dataset") or {}).get(name)
    if spec is None:
        raise UserError(f"bridge.golden.dataset: '{name}' is not a selected dataset "
                        f"(selected: {', '.join(cfg.get('dataset') or {})})")
    base = ds.load(name, spec, project_dir)
    ds.store_version(store, base)
    return follow_head(store, base, spec, project_dir)


_PARENT_HASHES = Statement("golden:parent_hashes", temp_table("parent_hashes", exp.select(
    text_hash(exp.column("t")).as_("text_hash")).from_(parse("(SELECT unnest($texts) AS t)"))), ("texts",),
    "the normalised inputs of the dataset's cases (a candidate already among them is not new)")


def _grow_golden(store: Store, backend, statement: Statement, bridge: BridgeSpec, parent: ds.DatasetVersion,
                 out_dir: Path, staging: publish.Staging, config_hash: str) -> dict:
    hashes = [c.input_text for c in parent.cases]
    backend.run(_PARENT_HASHES, {"texts": hashes})
    rows = backend.run(statement, {"policies": list(bridge.golden.from_policies)})
    from engine.agents.bridge_cases import agent_parts  # an agent session: its earlier turns, calls, forbidden calls

    parts = agent_parts(backend, rows, bridge.policies, list(bridge.export.pii))
    rows = [{**r, "agent_part": parts.get(r["trace_id"], {})} for r in rows]
    # ground truth: the correction, else the forbidden tools an agent called (its own label)
    labelled = [r for r in rows if r["correction"] or "agent" in r["agent_part"]]
    unlabelled = [r for r in rows if not (r["correction"] or "agent" in r["agent_part"])] \
        if bridge.golden.label_queue else []
    new_cases = [_case(r, r["correction"], "correction" if r["correction"] else "forbidden_call") for r in labelled]
    out = {"dataset": parent.name, "parent_version": parent.version, "candidates": len(rows),
           "added": len(new_cases), "label_queue": None, "version": parent.version, "path": None}
    if new_cases:
        version, final = _new_version(store, parent, new_cases, out_dir, staging)
        out.update(version=version.version, path=str(final))
    if unlabelled:
        queue = out_dir / f"label_queue-{staging.export_id}.jsonl"
        staging.stage(queue).write_text("".join(json.dumps(_queue_row(r), ensure_ascii=False) + "\n"
                                                for r in unlabelled), encoding="utf-8")
        out["label_queue"] = {"path": str(queue), "records": len(unlabelled)}
    golden_ids = {r["trace_id"] for r in labelled}
    sent = labelled + unlabelled
    backend.write("bridge_exports", pa.table({
        "export_id": pa.array([staging.export_id] * len(sent), pa.string()),
        "trace_id": pa.array([r["trace_id"] for r in sent], pa.string()),
        "policy": pa.array([r["policy"] for r in sent], pa.string()),
        "text_hash": pa.array([r["text_hash"] for r in sent], pa.string()),
        "destination": pa.array(["golden" if r["trace_id"] in golden_ids else "label_queue" for r in sent],
                                pa.string()),
        "config_hash": pa.array([config_hash] * len(sent), pa.string()),
        "exported_at": pa.array([utc_now()] * len(sent), pa.timestamp("us", tz="UTC")),
        "sampling_hash": pa.array([SAMPLING_HASH] * len(sent), pa.int32())}))
    out["cases_from_production"] = sum(1 for c in _all_cases(store, out["version"])
                                       if (c.get("metadata") or {}).get("origin") == "production")
    return out


def _case(row: dict, expected: str, ground_truth: str) -> dict:
    agent = row.get("agent_part") or {}  # engine/agents/bridge_cases.py
    return {"id": f"prod-{row['trace_id']}", "input": row["input"], "expected": expected,
            **{k: agent[k] for k in ("messages", "agent") if k in agent},
            "tags": [row["topic"]] if row.get("topic") else [],
            "metadata": {"origin": "production", "trace_id": row["trace_id"], "policy": row["policy"],
                         "ground_truth": ground_truth, "model": row.get("model"),
                         "model_version": row.get("model_version"),
                         "timestamp": row["timestamp"].isoformat() if row.get("timestamp") else None,
                         "feedback_id": row.get("feedback_id"), "model_output": row.get("output"),
                         **({"production_tool_calls": agent["tool_calls"]} if agent.get("tool_calls") else {})}}


def _queue_row(row: dict) -> dict:
    """A label-queue record: fill in `expected` (or set `reject: true`) and import the file back."""
    case = _case(row, None, "label")
    return {**case, "reject": False}


def _new_version(store: Store, parent: ds.DatasetVersion, new_cases: list[dict], out_dir: Path,
                 staging: publish.Staging) -> tuple[ds.DatasetVersion, Path]:
    """parent's cases + the new ones, written to a (staged) JSONL file, loaded back through the normal validation,
    stored as an immutable version (content hash) whose parent is recorded; the dataset's head moves to it.
    The version's path is stored relative to the project."""
    existing = {c.case_id for c in parent.cases}
    records = [ds.case_record(c) for c in parent.cases] + [c for c in new_cases if c["id"] not in existing]
    draft = staging.dir / f".{parent.name}.draft.jsonl"  # named by its content below, once the hash is known
    draft.parent.mkdir(parents=True, exist_ok=True)
    draft.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    loaded = ds.load_file(parent.name, draft, str(draft))
    final = out_dir / "golden" / f"{parent.name}-{loaded.version}.jsonl"
    os.replace(draft, staging.stage(final))
    stored_path = publish.project_relative(final, staging.project_dir)
    version = replace(loaded, source=stored_path)
    ds.store_version(store, version, parent=parent.version, provenance={"export_id": staging.export_id,
                                                                         "added": len(records) - len(parent.cases)})
    ds.move_head(store, parent.name, version.version, stored_path)
    return version, final


_CASE_METADATA = statement("golden:case_metadata", "SELECT metadata FROM cases WHERE dataset_version = $version",
                           "each stored case's metadata")


def _all_cases(store: Store, version: str) -> list[dict]:
    return [{"metadata": json.loads(r["metadata"])} for r in execute(store.con, _CASE_METADATA, {"version": version})]


def _import_labels(store: Store, project_dir: Path, path: str, parent: ds.DatasetVersion, out_dir: Path,
                   staging: publish.Staging) -> dict:
    """A completed label queue: rows with an `expected` answer become cases; `reject: true` rows are skipped."""
    file = resolve_data_path(path, project_dir)
    if not file.is_file():
        raise UserError(f"import_labels: file not found: {path} ({file})")
    problems, accepted, rejected, pending = [], [], 0, 0
    try:
        text = jsonlines.read_text(file)
    except UnicodeDecodeError as e:
        raise UserError(f"import_labels: {path} is not UTF-8 text ({e.reason} at byte {e.start})") from e
    for line_no, line in jsonlines.split_lines(text):
        if not line.strip():
            continue
        try:
            row = jsonlines.loads_strict(line)
        except jsonlines.StrictJSONError as e:
            problems.append(f"{path}:{line_no}: {e.reason}")
            continue
        if not isinstance(row, dict) or not isinstance(row.get("id"), str) or "input" not in row:
            problems.append(f"{path}:{line_no}: a label-queue record needs `id` and `input`")
            continue
        if row.get("reject"):
            rejected += 1
            continue
        labelled_calls = isinstance(row.get("agent"), dict) and "tool_calls" in row["agent"]
        if row.get("expected") in (None, "") and not labelled_calls:  # an expected tool sequence is a label too
            pending += 1
            continue
        case = {k: row[k] for k in ("id", "input", "expected", "context", "tags", "metadata", "messages", "agent")
                if k in row}  # a labelled agent task (expected tool calls) is kept
        case.setdefault("metadata", {})["ground_truth"] = "label"
        accepted.append(case)
    if problems:
        raise UserError(f"{len(problems)} bad record(s) in the label file:\n  " + "\n  ".join(problems[:20]))
    out = {"dataset": parent.name, "parent_version": parent.version, "imported": len(accepted),
           "rejected": rejected, "still_unlabelled": pending, "version": parent.version, "path": None}
    if accepted:
        version, final = _new_version(store, parent, accepted, out_dir, staging)
        out.update(version=version.version, path=str(final))
    return out
