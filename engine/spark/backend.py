"""Spark as a plan backend: the statements that read production data run on Spark; the store stays local.

A plan statement is routed by what it reads and writes:
- a statement that reads the production sources (`traces`, `feedback`, `events`) or a relation an earlier Spark
  step made (a drift sample, a training set) runs on Spark. Store tables it also reads (live scores, golden
  cases, tool steps) are mirrored into Spark as temp views, on first use;
- an `INSERT INTO <store table> SELECT ...` whose SELECT reads production data runs its SELECT on Spark and
  writes the rows into the store (results, run artifacts and time series are small and stay local);
- an `INSERT INTO <store table> SELECT ...` whose SELECT reads one of the command's *Spark inputs* -- store
  relations Spark computes from (evaluate: the run's scoring input, `run_scoring_input`, whose rows each metric's
  statement writes into `scores`; engine/evaluation.py) -- runs its SELECT on Spark, the input mirrored, when Spark
  can run it with the meaning it has on DuckDB; otherwise (a metric kind refused on Spark: NotPortable) it runs on
  the store, which holds the same rows, and `not_portable` records why. Other readers of an input (evaluate's
  dataset-level reports: small results, not covered by the parity suite) run on the store;
- anything else (the store's own bookkeeping, lab runs, stored profiles) runs on the store, as with DuckDB.

The production sources come from `source.*` (engine/spark/sources.py): a Parquet dataset read natively by
Spark, or the store's table mirrored through Arrow (fine for a demo, not for hundreds of millions of rows)."""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Mapping

import pyarrow as pa
from sqlglot import exp

from engine import executor
from engine.backend import WriteMode, DuckDBBackend
from engine.spark import execute as spark_exec, sources
from engine.sql import Statement, computed_part

PRODUCTION = ("traces", "feedback", "events")
FW_ROWS = "fw_chunk"  # the name executor.execute_over gives the Spark rows while the store inserts them


class SparkBackend:
    dialect = spark_exec.DIALECT

    def __init__(self, store, spark, sources: Mapping[str, Any], inputs: tuple[str, ...] = ()):
        """`sources`: table name -> a Spark DataFrame of that production table (engine/spark/sources.py).
        `inputs`: store relations whose readers run on Spark when portable (mirrored on first read)."""
        self.store = store
        self.spark = spark
        self.local = DuckDBBackend(store)
        self._spark_tables: set[str] = set()  # temp views this backend made (sources, steps, mirrors)
        self._mirrored: set[str] = set()
        self._inputs = frozenset(inputs)
        for name, frame in sources.items():
            frame.createOrReplaceTempView(name)
            self._spark_tables.add(name)
        self.on_spark: list[str] = []  # statement names run on Spark, in order (provenance, tests)
        self.not_portable: dict[str, str] = {}  # statements that read a Spark input but ran on the store: why

    # -- routing -------------------------------------------------------------------------------------------
    def runs_on_spark(self, tree: exp.Expression, name: str = "", writes: bool = False) -> bool:
        """`writes`: `tree` is the SELECT of a statement whose rows the store writes (then a Spark input counts)."""
        if _tables_read(tree) & self._spark_tables:
            return True
        why = _input_route(tree, self._inputs) if writes else None
        if why:
            self.not_portable[name] = why
        return why == ""

    def run(self, statement: Statement, params: Mapping[str, Any]) -> list[dict]:
        tree = statement.tree
        if tree is None:
            return self.local.run(statement, params)
        if isinstance(tree, (exp.Insert, exp.Copy)):
            return self._into_store(statement, params)
        made = spark_exec.temp_relation(tree)
        if not self.runs_on_spark(tree, statement.name):
            if made is not None:  # a local temp table (re)made: Spark reads it afresh when it needs it
                self._spark_tables.discard(made[0])
                self._stale(made[0])
            return self.local.run(statement, params)
        self._mirror(_tables_read(tree))
        self.on_spark.append(statement.name)
        rows = spark_exec.run(self.spark, statement, params)
        if made is not None:
            self._spark_tables.add(made[0])
        return rows

    def read_arrow(self, statement: Statement, params: Mapping[str, Any]) -> pa.Table:
        if statement.tree is None or not self.runs_on_spark(statement.tree, statement.name):
            return self.local.read_arrow(statement, params)
        self._mirror(_tables_read(statement.tree))
        self.on_spark.append(statement.name)
        return spark_exec.arrow(self.spark, statement, params)

    def write(self, table: str, frame: pa.Table, mode: WriteMode = "append") -> int:
        self._stale(table)
        return self.local.write(table, frame, mode)

    def write_step(self, step, frame: pa.Table) -> int:
        self._stale(step.table)
        return self.local.write_step(step, frame)

    def transaction(self) -> AbstractContextManager:
        return self.store.transaction()

    # -- writes of Spark results into the store ---------------------------------------------------------------
    def _into_store(self, statement: Statement, params: Mapping[str, Any]) -> list[dict]:
        """INSERT INTO <store table> SELECT ... or COPY (SELECT ...) TO 'file': the SELECT on Spark when it reads
        Spark data, the insert (or the file) local. The table's copy in Spark is stale once the insert is done
        (not before: the SELECT may read the table it inserts into, and mirror it)."""
        tree = statement.tree
        try:
            return self._insert_or_copy(statement, params)
        finally:
            if isinstance(tree, exp.Insert):
                self._stale((tree.this.this if isinstance(tree.this, exp.Schema) else tree.this).name)

    def _insert_or_copy(self, statement: Statement, params: Mapping[str, Any]) -> list[dict]:
        tree = statement.tree
        if isinstance(tree, exp.Insert):
            query = tree.expression
        else:
            query = tree.this.this if isinstance(tree.this, exp.Subquery) else tree.this
        if query is None or not isinstance(query, exp.Query) \
                or not self.runs_on_spark(query, statement.name, writes=True):
            return self.local.run(statement, params)
        if tree.args.get("returning") is not None:
            raise NotImplementedError(f"statement '{statement.name}': INSERT ... RETURNING of Spark rows")
        self._mirror(_tables_read(query))
        # named as the plan's statement: its Spark part is journaled under that name (run_results.json)
        select_step = Statement(statement.name, query, tuple(p for p in statement.params if p in _placeholders(query)))
        self.on_spark.append(statement.name)
        rows = spark_exec.arrow(self.spark, select_step, params)
        local = tree.copy()
        from_rows = exp.select(*[exp.column(c, quoted=True) for c in rows.column_names]).from_(FW_ROWS)
        if isinstance(local, exp.Insert):
            local.set("expression", from_rows)
        else:
            local.set("this", from_rows.subquery() if isinstance(local.this, exp.Subquery) else from_rows)
        remaining = Statement(statement.name, local, tuple(p for p in statement.params if p in _placeholders(local)))
        return executor.execute_over(self.store.con, remaining, dict(params), rows,
                                     fetch=lambda cursor: _rows(cursor))

    # -- store tables seen from Spark ------------------------------------------------------------------------------
    def _mirror(self, tables: set[str]) -> None:
        """Store tables a Spark statement reads, copied into Spark (through Arrow) the first time they are read
        after a write."""
        wanted = tables - self._spark_tables - self._mirrored
        if not wanted:
            return
        stored = {r["table_name"] for r in self.local.run(STORE_TABLES, {})}
        for name in sorted(wanted & stored):
            sources.dataframe(self.spark, self.local.read_arrow(_whole(name), {})).createOrReplaceTempView(name)
            self._mirrored.add(name)

    def _stale(self, table: str) -> None:
        self._mirrored.discard(table)


class StaticRoutes:
    """Where each statement of a plan would run on this backend, decided from the plan alone (what `flywheel
    compile <command> backend=spark` prints and plan.sql shows): the routing of `SparkBackend.run`, with the
    production tables as the only Spark relations to start with and `inputs` as the command's Spark inputs.
    Called with a statement: its dialect; `notes`: why a statement that reads a Spark input stays on the store."""

    def __init__(self, statements, inputs: tuple[str, ...] = ()):
        on_spark = set(PRODUCTION)
        self.where: dict[str, str] = {}
        self.notes: dict[str, str] = {}
        for st in statements:
            tree = getattr(st, "tree", None)
            if tree is None:
                continue
            query = tree.expression if isinstance(tree, exp.Insert) else tree
            spark = query is not None and bool(_tables_read(query) & on_spark)
            if not spark and query is not None and isinstance(tree, (exp.Insert, exp.Copy)):
                why = _input_route(query, frozenset(inputs))
                spark = why == ""
                if why:
                    self.notes[st.name] = why
            made = spark_exec.temp_relation(tree)
            if made is not None:
                (on_spark.add if spark else on_spark.discard)(made[0])
            self.where[st.name] = spark_exec.DIALECT if spark else "duckdb"

    def __call__(self, st) -> str:
        return self.where.get(st.name, "duckdb")


def _input_route(tree: exp.Expression, inputs: frozenset[str]) -> str | None:
    """For the SELECT of a write outside the Spark relations: None when it reads none of the Spark inputs; '' when
    it reads one and Spark can run it with the same meaning; else why not (it then runs on the store, which holds
    the rows)."""
    if not inputs:
        return None
    query = computed_part(tree)[0]
    if not (_tables_read(query) & inputs):
        return None
    from engine.dialects import NotPortable

    try:
        spark_exec.spark_text(query)
    except NotPortable as e:
        return f"not portable to Spark: {e}"
    return ""


STORE_TABLES = Statement("spark:store_tables", exp.select("table_name").from_("information_schema.tables").where(
    exp.column("table_schema").eq(exp.Literal.string("main"))))


def _whole(table: str) -> Statement:
    return Statement(f"spark:mirror:{table}", exp.select("*").from_(exp.to_table(table)))


def _tables_read(tree: exp.Expression) -> set[str]:
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    return {t.name for t in tree.find_all(exp.Table) if not t.db and t.name not in ctes}


def _placeholders(tree: exp.Expression) -> set[str]:
    return {p.name for p in tree.find_all(exp.Placeholder)}


def _rows(cursor) -> list[dict]:
    if cursor.description is None:
        return []
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]
