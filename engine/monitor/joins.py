"""Join coverage: how many feedback (or event) records of the current period name a trace the monitor sees.

A KPI or a parity figure over feedback is only as good as the join behind it: feedback keyed by ids that match no
stored trace silently drops out of every aggregate. Each such section reports, over the records of the current
period (by their own timestamp) that pass its filter:

    records       the records that count: those on a monitored trace, plus those that name no stored trace at all
    matched       on a trace in scope (the monitored model, within start/end): the rows the figure is computed from
    unmatched     naming no stored trace (by trace id or span id); `unmatched_ids` distinct ids, `examples` three
    out_of_scope  on a stored trace of another model or outside start/end: not counted as records

A figure computed from zero matched rows is `no_data` (an alert, whatever its severity); a matched share below
`monitor.min_join_share` (default 0.9) is a join warning naming the unmatched ids.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from engine.monitor.sources import TABLE_COLUMNS, in_period, resolved, traces_in_scope, user_expression
from engine.monitor.spec import Scope
from engine.sql import Statement, parse

EXAMPLES = 3


def coverage_statement(name: str, table: str, scope: Scope, where: str | None = None, what: str = "") -> Statement:
    """One row: matched, unmatched, out_of_scope, unmatched_ids, examples (for feedback or events; events count
    only those that name a trace)."""
    rows = exp.select("*").from_(resolved(table).subquery("x")).where(
        in_period(exp.column("timestamp", table="x", quoted=True), "cur_start", "cur_end"))
    if where:
        rows = rows.where(user_expression(where, TABLE_COLUMNS[table], what=what or f"filter of {name}"))
    if table == "events":
        rows = rows.where(exp.column("fw_ref", table="x").is_(exp.null()).not_())
    tagged = (exp.select(exp.column("fw_ref", table="r"), exp.column("fw_matched", table="r"),
                         exp.alias_(exp.column("trace_id", table="t").is_(exp.null()).not_(), "fw_in_scope"))
              .from_(rows.subquery("r"))
              .join(exp.select("trace_id").from_(traces_in_scope(scope).subquery("s")).subquery("t"),
                    on="t.trace_id = r.trace_id", join_type="left"))
    tree = parse("""
        WITH fw_rows AS (SELECT 1)
        SELECT count(*) FILTER (WHERE fw_in_scope) AS matched,
               count(*) FILTER (WHERE NOT fw_matched) AS unmatched,
               count(*) FILTER (WHERE fw_matched AND NOT fw_in_scope) AS out_of_scope,
               count(DISTINCT fw_ref) FILTER (WHERE NOT fw_matched) AS unmatched_ids,
               (SELECT list(fw_ref ORDER BY fw_ref) FROM (SELECT DISTINCT fw_ref FROM fw_rows WHERE NOT fw_matched
                                                        ORDER BY fw_ref LIMIT 3)) AS examples
        FROM fw_rows""")
    tree.find(exp.CTE).set("this", tagged)
    return Statement(name, tree, ("cur_start", "cur_end"),
                     f"join coverage of {table}" + (f" where {where}" if where else "") + " in the current period")


def count_statement(name: str, table: str, scope: Scope) -> Statement:
    """Rows of traces in scope (or events) in the current period: a source with none gives no figure."""
    source = traces_in_scope(scope).subquery("x") if table == "traces" else exp.table_(table).as_("x")
    tree = exp.select(exp.alias_(exp.func("count", exp.Star()), "n")).from_(source).where(
        in_period(exp.column("timestamp", table="x", quoted=True), "cur_start", "cur_end"))
    return Statement(name, tree, ("cur_start", "cur_end"), f"{table} in the current period")


@dataclass
class Coverage:
    """The join coverage of one section (or one KPI aggregate)."""

    source: str  # feedback | events
    what: str  # the section and filter, for messages
    matched: int = 0
    unmatched: int = 0
    out_of_scope: int = 0
    unmatched_ids: int = 0
    examples: list[str] = field(default_factory=list)

    @classmethod
    def from_row(cls, source: str, what: str, row: dict) -> "Coverage":
        return cls(source, what, int(row["matched"]), int(row["unmatched"]), int(row["out_of_scope"]),
                   int(row["unmatched_ids"]), [str(e) for e in row["examples"] or []])

    @property
    def records(self) -> int:
        return self.matched + self.unmatched

    @property
    def share(self) -> float | None:
        return self.matched / self.records if self.records else None

    def warning(self, min_share: float) -> str | None:
        if self.share is None or self.share >= min_share:
            return None
        return (f"{self.unmatched:,} of {self.records:,} {self.what} name no stored trace "
                f"({self.share:.0%} matched, below monitor.min_join_share {min_share:g}): {self.unmatched_ids:,} "
                f"unmatched id(s), e.g. {', '.join(self.examples)}")

    def to_json(self) -> dict:
        return {"source": self.source, "what": self.what, "records": self.records, "matched": self.matched,
                "unmatched": self.unmatched, "out_of_scope": self.out_of_scope, "share": self.share,
                "unmatched_ids": self.unmatched_ids, "examples": self.examples}

