"""KPIs (business, usage, efficacy, ROI): named aggregates over traces, feedback or events, combined by a value
expression, per window, per model version and over the whole current period (which the target is checked on).

    conversion_rate:
      aggregates:
        conversions: {from: events, agg: "count(DISTINCT user_id)", where: "type = 'conversion'"}
        signups: {from: events, agg: "count(DISTINCT user_id)", where: "type = 'signup'"}
      value: "conversions / nullif(signups, 0)"
      target: {op: ">=", value: 0.08}

Every aggregate is computed over its table's rows in the current period; traces are restricted to the monitored
model, feedback to feedback on those traces (named by trace id or span id, see sources.resolved), events to the
period only (events carry no model). A KPI is broken down per model version when all its aggregates come from
traces or feedback.

A KPI computed from nothing is `no_data`, an alert whatever its severity: when a source it aggregates has no row
in the current period (no monitored trace, no feedback on one, no event), or when the feedback an aggregate
counts (after its `where`) names no monitored trace at all. Each aggregate reports its rows and, for feedback,
its join coverage (engine/monitor/joins.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from engine.monitor.joins import Coverage, count_statement, coverage_statement
from engine.monitor.sources import TABLE_COLUMNS, in_period, resolved, traces_in_scope, user_expression
from engine.monitor.spec import AggregateSpec, KPISpec, Scope
from engine.outcome import OPS
from engine.sql import Statement, parse
from engine.plan_memo import by_content

GROUPINGS = ("overall", "window", "model")


def _rows(table: str, scope: Scope) -> exp.Select:
    """The rows of one source table in the current period, each with its window and (where known) model."""
    scoped = traces_in_scope(scope)
    ts = exp.column("timestamp", table="x", quoted=True)
    if table == "traces":
        rel = exp.select("x.*", exp.alias_(exp.column("model_version", table="x"), "model_key")).from_(
            scoped.subquery("x"), copy=False)
    elif table == "feedback":
        rel = (exp.select("x.*", exp.alias_(exp.column("model_version", table="t"), "model_key"),
                          exp.alias_(exp.column("window_start", table="t"), "trace_window"))
               .from_(resolved("feedback").subquery("x"), copy=False)
               .join(scoped.subquery("t"), on="t.trace_id = x.trace_id", join_type="inner", copy=False))
    else:
        rel = exp.select("x.*", exp.alias_(exp.Null(), "model_key")).from_(exp.table_("events").as_("x"), copy=False)
    # each row's own time decides its window (feedback may come a day after its trace)
    win = parse(f"""SELECT date_trunc('{scope.window}', x."timestamp")""").expressions[0]
    # (the builders change the fresh trees here in place: copy=False, as a copy per step costs more than the query)
    return rel.select(exp.alias_(win, "kpi_window"), copy=False).where(in_period(ts, "cur_start", "cur_end"),
                                                                      copy=False)


def aggregate_query(agg: AggregateSpec, scope: Scope, grouping: str) -> exp.Select:
    columns = TABLE_COLUMNS[agg.table]
    value = user_expression(agg.agg, columns, aggregates=True, what=f"KPI aggregate '{agg.name}'")
    rows = _rows(agg.table, scope)
    if agg.where:
        rows = rows.where(user_expression(agg.where, columns, what=f"KPI filter of '{agg.name}'"), copy=False)
    key = {"overall": exp.Null(), "window": exp.column("kpi_window"), "model": exp.column("model_key")}[grouping]
    select = exp.select(exp.alias_(key, "grp"), exp.alias_(value, "v")).from_(rows.subquery("r", copy=False),
                                                                              copy=False)
    return select.group_by(exp.column("grp"), copy=False) if grouping != "overall" else select


@by_content
def kpi_statement(kpi: KPISpec, scope: Scope, grouping: str) -> Statement:
    """One row per group (window, model version, or one overall row) with every aggregate and the value.

    Each aggregate is computed once: a CTE `a_<i>` that both the list of groups and the join read (DuckDB
    materialises a CTE read twice). The overall row needs no list of groups: an aggregate without GROUP BY
    always yields its one row."""
    aggregates = kpi.aggregates
    value = user_expression(kpi.value, tuple(a.name for a in aggregates), what=f"KPI value of '{kpi.name}'")
    if grouping == "overall":
        keys = exp.select(exp.alias_(exp.Null(), "grp"))
    else:
        keys = exp.union(*[exp.select("grp").from_(f"a_{i}") for i in range(len(aggregates))], distinct=True) \
            if len(aggregates) > 1 else exp.select("grp").from_("a_0")
    select = exp.select(exp.column("grp", table="k")).from_(keys.subquery("k", copy=False), copy=False)
    for i, agg in enumerate(aggregates):  # the select grows in place (copy=False): a copy per step is quadratic
        cond = exp.column("grp", table=f"a_{i}").eq(exp.column("grp", table="k")) if grouping != "overall" \
            else exp.true()
        select = select.select(exp.alias_(exp.column("v", table=f"a_{i}"), agg.name), copy=False).join(
            exp.table_(f"a_{i}"), on=cond, join_type="left", copy=False)
    for i, agg in enumerate(aggregates):
        select = select.with_(f"a_{i}", as_=aggregate_query(agg, scope, grouping), copy=False)
    outer = exp.select("*", exp.alias_(exp.cast(value, "DOUBLE"), "kpi_value")).from_(select.subquery("named"))
    if grouping != "overall":
        outer = outer.where(exp.column("grp").is_(exp.null()).not_()).order_by("grp")
    return Statement(f"kpi.{kpi.name}.{grouping}", outer, ("cur_start", "cur_end"), kpi.description)


def can_split_by_model(kpi: KPISpec) -> bool:
    return all(a.table in ("traces", "feedback") for a in kpi.aggregates)


def statements(kpi: KPISpec, scope: Scope) -> list[Statement]:
    groupings = ["overall", "window"] + (["model"] if can_split_by_model(kpi) else [])
    return [kpi_statement(kpi, scope, g) for g in groupings]


@by_content
def source_statements(kpis: tuple[KPISpec, ...], scope: Scope) -> dict[str, Statement]:
    """Per source table the KPIs read: its rows in the current period (feedback: with its join coverage)."""
    tables = sorted({a.table for kpi in kpis for a in kpi.aggregates})
    return {t: coverage_statement(f"kpi_source.{t}", t, scope) if t == "feedback" else count_statement(
        f"kpi_source.{t}", t, scope) for t in tables}


@by_content
def coverage_statements(kpi: KPISpec, scope: Scope) -> dict[str, Statement]:
    """The join coverage of each feedback aggregate with a `where` (the others use their source's)."""
    return {a.name: coverage_statement(f"kpi.{kpi.name}.{a.name}.coverage", "feedback", scope, a.where,
                                       what=f"KPI filter of '{kpi.name}'")
            for a in kpi.aggregates if a.table == "feedback" and a.where}


def source_coverage(table: str, row: dict) -> Coverage | int:
    """A source statement's row: the feedback join coverage, or the row count of traces/events."""
    return Coverage.from_row("feedback", "feedback records", row) if table == "feedback" else int(row["n"])


@dataclass
class KPIResult:
    name: str
    category: str
    severity: str
    target: dict
    value: float | None
    status: str  # ok | alert | error | no_data
    message: str
    windows: list[dict] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)
    aggregates: dict = field(default_factory=dict)
    coverage: list[dict] = field(default_factory=list)  # per aggregate: its rows; feedback: its join coverage
    join_warning: str | None = None

    def to_json(self) -> dict:
        return dict(self.__dict__)


def judge(kpi: KPISpec, rows: dict[str, list[dict]], sources: dict[str, Coverage | int] | None = None,
          filtered: dict[str, Coverage] | None = None, min_share: float = 0.9) -> KPIResult:
    """The KPI against its target. `sources` (table -> rows, or feedback's coverage) and `filtered` (aggregate ->
    coverage after its where) decide no_data and the join warning; without them only the value is judged.
    `rows`: each grouping's rows (no `model` rows when the KPI is not split by model)."""
    target = kpi.target
    overall = rows["overall"][0] if rows["overall"] else {}
    value = overall.get("kpi_value")
    check = OPS[target.op] if target else None
    windows = [{"window": r["grp"].isoformat(), "value": r["kpi_value"],
                "meets_target": None if r["kpi_value"] is None or not check else check(r["kpi_value"], target.value)}
               for r in rows["window"]]
    models = [{"model": r["grp"], "value": r["kpi_value"]} for r in rows["model"]] if "model" in rows else []
    aggregates = {k: v for k, v in overall.items() if k not in ("grp", "kpi_value")}
    result = KPIResult(kpi.name, kpi.category, kpi.severity, target.to_json() if target else {}, value, "ok", "",
                       windows, models, aggregates)
    empty = _coverage(result, kpi, sources or {}, filtered or {}, min_share) if sources is not None else None
    if empty:
        result.status, result.message = "no_data", empty
    elif value is None:
        result.status, result.message = "error", "cannot compute: no data in the current period"
    elif check and not check(value, target.value):
        result.status = "alert"
        result.message = f"{value:.4g} misses the target {target.op} {target.value:g}"
    else:
        result.message = f"{value:.4g} meets the target" + (f" {target.op} {target.value}" if target else "")
    return result


def _coverage(result: KPIResult, kpi: KPISpec, sources: dict, filtered: dict, min_share: float) -> str | None:
    """Fills result.coverage and result.join_warning; returns why the KPI has no data, or None."""
    empty: list[str] = []
    warnings: list[str] = []
    for agg in kpi.aggregates:
        agg_name, table = agg.name, agg.table
        source = sources[table]
        if table != "feedback":
            result.coverage.append({"aggregate": agg_name, "from": table, "records": source, "joined": False})
            if source == 0:
                empty.append(f"no {'monitored trace' if table == 'traces' else 'event'} in the current period "
                             f"('{agg_name}')")
            continue
        own = filtered.get(agg_name, source)
        result.coverage.append({"aggregate": agg_name, "from": table, "where": agg.where, "joined": True,
                                **own.to_json()})
        if source.matched == 0:
            empty.append(f"no feedback on a monitored trace in the current period ('{agg_name}': "
                         f"{source.records:,} feedback record(s), {source.unmatched:,} naming no stored trace"
                         + (f", e.g. {', '.join(source.examples)}" if source.examples else "") + ")")
        elif own.records and own.matched == 0:
            empty.append(f"none of the {own.records:,} feedback record(s) '{agg_name}' counts names a monitored "
                         f"trace (e.g. {', '.join(own.examples)})")
        warning = own.warning(min_share)
        if warning:
            warnings.append(f"'{agg_name}': {warning}")
    result.join_warning = "; ".join(dict.fromkeys(warnings)) or None
    return "no data: " + "; ".join(dict.fromkeys(empty)) if empty else None
