"""The monitored traffic as SQL: traces in scope, their windows, features, and the reference and current periods.

Periods travel as bound parameters ($ref_start, $ref_end, $cur_start, $cur_end: UTC timestamps) so that the
compiled plan does not depend on the data; `periods()` computes them from the stored traces and the config.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlglot import exp

from engine.agents.monitor_columns import AGENT_COLUMNS, with_agent_columns
from engine.errors import UserError
from engine.monitor.spec import FeatureSpec, MonitorSpec, Scope
from engine.sql import Statement, literal, parse
from engine.usersql import parse_expression

TRACE_COLUMNS = ("trace_id", "session_id", "user_id", "timestamp", "model", "model_version", "input", "output",
                 "latency_ms", "prompt_tokens", "completion_tokens", "cost", "error", "topic", "channel", "locale",
                 "feature", "attributes", "span_id", *AGENT_COLUMNS)
FEEDBACK_COLUMNS = ("feedback_id", "trace_id", "session_id", "user_id", "timestamp", "kind", "rating", "thumbs",
                    "signal", "correction", "ticket_id", "metric", "value", "label", "comment", "score",
                    "attributes", "span_id")
EVENT_COLUMNS = ("event_id", "user_id", "session_id", "trace_id", "timestamp", "type", "amount", "currency", "value",
                 "attributes", "span_id")
TABLE_COLUMNS = {"traces": TRACE_COLUMNS, "feedback": FEEDBACK_COLUMNS, "events": EVENT_COLUMNS}
WINDOWS = ("hour", "day", "week")


def user_expression(text: str, columns: tuple[str, ...], *, aggregates: bool = False, what: str) -> exp.Expression:
    tree, problems = parse_expression(text, columns, aggregates=aggregates, what=what)
    if problems:
        raise UserError(f"{what} {text!r}: {problems[0]}")
    return tree


def traces_in_scope(scope: Scope | dict) -> exp.Select:
    """Traces of the monitored model (if one is named) within the configured start/end, with their window and
    their agent's tool calls (engine/agents/monitor_columns.py). `scope`: a Scope, or a dict of its keys."""
    scope = scope if isinstance(scope, Scope) else Scope.of(scope)
    select = with_agent_columns(parse(
        f"""SELECT t.*, date_trunc('{_window(scope)}', t."timestamp") AS window_start FROM traces AS t"""))
    conditions = []
    if scope.model:
        conditions.append(exp.column("model", table="t").eq(literal(scope.model)))
    if scope.start:
        conditions.append(exp.column("timestamp", table="t", quoted=True) >= exp.cast(literal(str(scope.start)), "TIMESTAMPTZ"))
    if scope.end:
        conditions.append(exp.column("timestamp", table="t", quoted=True) < exp.cast(literal(str(scope.end)), "TIMESTAMPTZ"))
    return select.where(exp.and_(*conditions)) if conditions else select


# Ids other than its trace_id that name a stored trace: its answer span id, and '<traceId>-<spanId>' (how OTLP
# spans were stored before span_id existed, so references written for that still resolve).
TRACE_REFS = """
SELECT ref, min(trace_id) AS trace_id FROM (
    SELECT span_id AS ref, trace_id FROM traces WHERE span_id IS NOT NULL
    UNION ALL
    SELECT trace_id || '-' || span_id AS ref, trace_id FROM traces WHERE span_id IS NOT NULL)
GROUP BY ref"""


def resolved(table: str) -> exp.Select:
    """`feedback` or `events` with trace_id resolved: a record may name its trace by the trace id or by a span id
    (in trace_id or span_id). Adds fw_ref (the id as written) and fw_matched (it names a stored trace); an
    unresolved record keeps its trace_id as written.

    Every join of feedback or events to traces goes through this relation (monitor, parity, bridge)."""
    if table not in ("feedback", "events"):
        raise ValueError(table)
    return parse(f"""
        WITH fw_refs AS ({TRACE_REFS})
        SELECT x.* EXCLUDE (trace_id),
               coalesce(d.trace_id, r1.trace_id, r2.trace_id, x.trace_id) AS trace_id,
               coalesce(x.trace_id, x.span_id) AS fw_ref,
               coalesce(d.trace_id, r1.trace_id, r2.trace_id) IS NOT NULL AS fw_matched
        FROM {table} AS x
        LEFT JOIN (SELECT trace_id FROM traces) AS d ON d.trace_id = x.trace_id
        LEFT JOIN fw_refs AS r1 ON r1.ref = x.trace_id
        LEFT JOIN fw_refs AS r2 ON r2.ref = x.span_id""")


def with_resolved_feedback(tree: exp.Expression) -> exp.Expression:
    """`tree` with every reference to the feedback table read through `resolved('feedback')` (same alias)."""
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.name == "feedback" and not node.db:
            return resolved("feedback").subquery(node.alias or "feedback")
        return node
    return tree.transform(swap)


def _window(scope: Scope) -> str:
    window = scope.window
    if window not in WINDOWS:  # validated earlier; this keeps the f-string above safe on its own
        raise UserError(f"monitor.window: {window!r} is not one of {', '.join(WINDOWS)}")
    return window


def in_period(column: exp.Expression, start_param: str, end_param: str) -> exp.Expression:
    return exp.and_(column >= exp.Placeholder(this=start_param), column < exp.Placeholder(this=end_param))


def feature_relation(scope: Scope, feature: FeatureSpec, metrics_hashes: dict[str, str]) -> exp.Select:
    """SELECT window_start, <feature> AS x over the traces in scope (all periods; callers filter)."""
    base = traces_in_scope(scope).subquery("t")
    if feature.score is not None:
        metric = feature.score
        return (exp.select("t.window_start", "t.\"timestamp\"", exp.alias_(exp.column("value", table="ls"), "x"))
                .from_(base)
                .join(exp.table_("live_scores").as_("ls"),
                      on=exp.and_(exp.column("trace_id", table="ls").eq(exp.column("trace_id", table="t")),
                                  exp.column("metric", table="ls").eq(literal(metric)),
                                  exp.column("metrics_hash", table="ls").eq(literal(metrics_hashes.get(metric, "")))),
                      join_type="inner"))
    expr = user_expression(feature.expr, TRACE_COLUMNS, what="monitor feature expression")
    return exp.select("t.window_start", "t.\"timestamp\"", exp.alias_(expr, "x")).from_(base)


def golden_relation(dataset_version_param: str = "golden_version") -> exp.Select:
    """Golden cases shaped like traces (input features only): the reference of `reference.kind: golden`."""
    return parse(f"""
        SELECT NULL::VARCHAR AS trace_id, NULL::VARCHAR AS session_id, NULL::VARCHAR AS user_id,
               NULL::TIMESTAMPTZ AS "timestamp", NULL::VARCHAR AS model, NULL::VARCHAR AS model_version,
               input_text AS input, NULL::VARCHAR AS output, NULL::DOUBLE AS latency_ms,
               NULL::BIGINT AS prompt_tokens, NULL::BIGINT AS completion_tokens, NULL::DOUBLE AS cost,
               NULL::VARCHAR AS error, tags[1] AS topic, NULL::VARCHAR AS channel, NULL::VARCHAR AS locale,
               NULL::VARCHAR AS feature, metadata AS attributes, NULL::VARCHAR AS span_id
        FROM cases WHERE dataset_version = ${dataset_version_param}""")


@dataclass(frozen=True)
class Periods:
    """The reference and current periods, [start, end) in UTC. For `previous`, each window's reference is the
    window before it and the reference period is empty."""

    first: datetime | None  # first and last trace in scope
    last: datetime | None
    ref_start: datetime | None
    ref_end: datetime | None
    cur_start: datetime | None
    cur_end: datetime | None

    def params(self) -> dict:
        return {"ref_start": self.ref_start, "ref_end": self.ref_end, "cur_start": self.cur_start,
                "cur_end": self.cur_end}

    def to_json(self) -> dict:
        return {k: (v.isoformat() if v else None) for k, v in self.__dict__.items()}


def periods_statement(scope: Scope) -> Statement:
    traces = traces_in_scope(scope).subquery("t")
    return Statement("periods", exp.select('min("timestamp") AS first', 'max("timestamp") AS last').from_(traces),
                     (), "the first and last trace in scope: the reference and current periods follow")


def periods(con, spec: MonitorSpec, run=None) -> Periods:
    """The periods of the traces in scope; `run(statement) -> rows` executes the plan step (default: directly)."""
    statement = periods_statement(spec.scope)
    row = (run(statement)[0] if run is not None
           else dict(zip(("first", "last"), con.execute(statement.text).fetchall()[0])))
    first, last = row["first"], row["last"]
    if first is None:
        return Periods(None, None, None, None, None, None)
    end = last + timedelta(microseconds=1)
    ref = spec.reference
    if ref.kind == "first_days":
        day0 = first.replace(hour=0, minute=0, second=0, microsecond=0)
        split = day0 + timedelta(days=ref.days)
        return Periods(first, last, first, split, split, end)
    if ref.kind == "window":
        start, stop = _ts(ref.start, first), _ts(ref.end, first)
        return Periods(first, last, start, stop, stop, end)
    # golden / previous: every window of the traffic is current
    return Periods(first, last, None, None, first, end)


def _ts(value, like: datetime) -> datetime:
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=like.tzinfo)
