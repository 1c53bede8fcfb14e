"""What a metric kind is: a small function from its config to SQL expressions over one scored row.

The row (alias-free columns of the `scoring_input` relation) holds the case and the model's output:
  case_id, dataset, input_text, expected_answers (VARCHAR[]), expected (JSON), context (VARCHAR[]),
  tags (VARCHAR[]), metadata (JSON), repeat, output_text, error, latency_ms, prompt_tokens,
  completion_tokens, cost.
A kind returns `value` (DOUBLE), and optionally `passed` and `detail`, which may refer to the computed
`value` column, and a `where` condition restricting the rows it applies to. Every metric may also be scoped
by `datasets`, `tags` and `exclude_tags`: a case outside a metric's scope has no score row for it (not a 0). An errored case always fails
(fail closed), whatever the kind says. A kind that needs a model or an encoder registers a Python `prepare`
step that fills a store table (in batches, cached) before the SQL runs; the SQL then reads that table.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from sqlglot import exp

from engine import registry
from engine.specs import with_defaults

SCORING_COLUMNS = ("case_id", "dataset", "input_text", "expected_answers", "expected", "context", "tags",
                   "metadata", "repeat", "output_text", "error", "latency_ms", "prompt_tokens",
                   "completion_tokens", "cost")

# Keys every metric accepts; a kind's own schema adds the rest.
COMMON_PROPERTIES = {
    "kind": {"type": "string", "description": "the metric kind (see `flywheel metrics`)"},
    "description": {"type": "string"},
    "datasets": {"type": "array", "items": {"type": "string"}, "uniqueItems": True,
                 "description": "datasets this metric scores; empty or absent means every dataset"},
    "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "uniqueItems": True,
             "description": "scores only cases with any of these tags; other cases get no score for this metric"},
    "exclude_tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1,
                     "uniqueItems": True,
                     "description": "cases with any of these tags get no score for this metric (e.g. red-team "
                                    "cases for an answer-quality metric)"},
    "threshold": {"type": "number", "description": "a case passes when value >= threshold (kinds say)"},
    "aggregate": {"enum": ["mean", "pass_rate", "p50", "p95", "p99", "sum", "max"],
                  "description": "how the per-case values are summarised in tables and gate rules"},
    "higher_is_better": {"type": "boolean"},
}


@dataclass(frozen=True)
class MetricSQL:
    value: exp.Expression
    passed: exp.Expression | None = None  # default: value >= threshold (or value = 1 without one)
    detail: exp.Expression | None = None  # why a case failed, shown in reports
    applies_to_errors: bool = False  # operational metrics (latency, error rate) also score errored cases
    # Rows the metric applies to (e.g. only red-team cases). Other rows get no score row at all, so they are
    # neither passed nor failed and do not count in the metric's n.
    where: exp.Expression | None = None
    # Columns computed once per row before value, passed and detail, which read them by name (an expression used
    # several times, e.g. a text's tokens, is not recomputed): (name, expression) pairs, names starting fw_.
    bindings: tuple[tuple[str, exp.Expression], ...] = ()


def col(name: str) -> exp.Column:
    return exp.column(name)


def output() -> exp.Expression:
    """The model output, '' for an errored case (so it scores as wrong, never as NULL)."""
    return exp.func("coalesce", col("output_text"), exp.Literal.string(""))


@dataclass(frozen=True)
class PrepareContext:
    """What a kind's Python `prepare` step gets: the run whose outputs are about to be scored.

    `rows(name, spec)` are the scoring_input rows the metric will score (its scope and `where` applied), read
    from `store`. During `flywheel evaluate` that is a private in-memory copy of the run: the real store is
    closed while judges and encoders are called, `cached()` opens it for a short read of cached answers or
    vectors, and `write()` defers each write to the run's single write transaction. Built on an open store
    alone (the defaults), it reads and writes that store directly."""

    store: object  # engine.store.Store holding the run's cases and outputs
    run_id: str
    repeats: int
    project: object  # engine.config.Project
    show_progress: bool = False
    batch_size: int = 32
    cache: Callable[[], AbstractContextManager] | None = None  # opens the store of cached answers and vectors
    writes: list | None = None  # deferred writes (engine.bulk.DeferredWrite); None: write at once
    journal_dir: object = None  # where judge calls are journaled while the store is closed (Path)

    def rows(self, name: str, spec: dict, columns: tuple[str, ...] = SCORING_COLUMNS) -> list[dict]:
        from engine.compiler import scoring_rows
        from engine.executor import execute

        return execute(self.store.con, scoring_rows(name, spec, columns),
                       {"run_id": self.run_id, "repeats": self.repeats})

    @contextmanager
    def cached(self) -> Iterator[object]:
        """The store that holds cached judge answers and embeddings, open for a short read."""
        if self.cache is None:
            yield self.store
        else:
            with self.cache() as store:
                yield store

    def write(self, name: str, frame, statement: str, params: dict | None = None) -> None:
        """Run `statement` with the Arrow table `frame` registered as `name`: now, or in the write transaction."""
        from engine.bulk import DeferredWrite

        write = DeferredWrite(name, frame, statement, params or {})
        if self.writes is None:
            with self.store.transaction() as con:
                write.apply(con)
        else:
            self.writes.append(write)


def params(spec: dict) -> dict:
    """A metric's config with every key its kind's schema gives a `default` filled in: what a kind reads, so a
    kind's defaults live in its schema (and in `flywheel metrics`' docs), not in its code. Only for reading: a
    metric's identity (its judgements' key, its cached vectors) stays the hash of the config as written."""
    return with_defaults(registry.schema("metric", spec["kind"]), spec)


def has_prepare_step(metrics: dict[str, dict]) -> bool:
    return any(registry.get("metric", spec["kind"]).fn.prepare is not None for spec in metrics.values())


def prepare_metrics(ctx: PrepareContext, metrics: dict[str, dict]) -> None:
    """Run the Python prepare step of every configured metric that has one (outside any transaction: a step
    may call a judge model for hours)."""
    for name, spec in metrics.items():
        hook = registry.get("metric", spec["kind"]).fn.prepare
        if hook is not None:
            hook(ctx, name, spec)


def metric_kind(name: str, schema: dict | None = None, aggregate: str = "mean",
                higher_is_better: bool = True, prepare: Callable | None = None,
                dataset_report: Callable | None = None) -> Callable:
    """Register a metric kind. `schema` lists the kind's own config keys (JSON Schema properties).

    `prepare(ctx: PrepareContext, name, spec)` runs in Python before the score statements (a judge or an encoder
    fills its table in the store, in batches and cached); the kind's SQL then reads that table.
    `dataset_report(name, spec) -> Statement` adds a dataset-level statement (named `<section>:<metric>`)
    run after scoring, e.g. a confusion matrix; its rows land in the evaluate result under `<section>`."""
    full = {
        "type": "object",
        "required": ["kind"] + list((schema or {}).get("required", [])),
        "additionalProperties": False,
        "properties": {**COMMON_PROPERTIES, **(schema or {}).get("properties", {})},
    }
    # the declared default aggregate is part of the schema, so the docs' kinds table is read from the schemas
    full["properties"]["aggregate"] = {**full["properties"]["aggregate"], "default": aggregate}

    def decorator(fn: Callable) -> Callable:
        fn.default_aggregate = aggregate
        fn.higher_is_better = higher_is_better
        fn.prepare = prepare
        fn.dataset_report = dataset_report
        return registry.register("metric", name, full)(fn)

    return decorator
