"""The three kinds of production record: what schema validates them, which table holds them, how fields map.

Adding a record kind means one entry here, a schema in schemas/ and a table in a store migration.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from jsonschema import Draft202012Validator, FormatChecker

from engine.schemas import load_schema


@dataclass(frozen=True)
class Column:
    name: str  # column in the store table
    path: tuple[str, ...]  # where the value is in the record
    type: str  # VARCHAR | DOUBLE | BIGINT | TIMESTAMPTZ | JSON


@dataclass(frozen=True)
class RecordKind:
    name: str  # traces | feedback | events (the `kind=` option and the table name)
    schema: str  # schemas/<schema>.schema.json
    table: str
    key: str  # the id field; absent -> a content hash of the record
    columns: tuple[Column, ...]
    identifiers: tuple[str, ...] = ("user_id",)  # fields hashed with the privacy salt
    marker: tuple[str, ...] = ()  # fields that tell this kind apart in `kind=auto`
    description: str = ""

    @property
    def top_level_fields(self) -> tuple[str, ...]:
        return tuple(load_schema(self.schema).get("properties", {}))


def _c(name: str, type_: str = "VARCHAR", path: tuple[str, ...] | None = None) -> Column:
    return Column(name, path or (name,), type_)


TRACES = RecordKind(
    "traces", "trace", "traces", "trace_id",
    (_c("trace_id"), _c("session_id"), _c("user_id"), _c("timestamp", "TIMESTAMPTZ"), _c("model"),
     _c("model_version"), _c("input"), _c("output"), _c("latency_ms", "DOUBLE"), _c("prompt_tokens", "BIGINT"),
     _c("completion_tokens", "BIGINT"), _c("cost", "DOUBLE"), _c("error"),
     _c("topic", path=("attributes", "topic")), _c("channel", path=("attributes", "channel")),
     _c("locale", path=("attributes", "locale")), _c("feature", path=("attributes", "feature")),
     _c("attributes", "JSON"), _c("span_id")),
    marker=("input",),
    description="one model call in a user session")

FEEDBACK = RecordKind(
    "feedback", "feedback", "feedback", "feedback_id",
    (_c("feedback_id"), _c("trace_id"), _c("session_id"), _c("user_id"), _c("timestamp", "TIMESTAMPTZ"),
     _c("kind"), _c("rating", "BIGINT"), _c("thumbs"), _c("signal"), _c("correction"), _c("ticket_id"),
     _c("metric"), _c("value", "DOUBLE"), _c("label"), _c("comment"), _c("attributes", "JSON"), _c("span_id")),
    marker=("kind",),
    description="a rating, thumbs, ticket, behavioural signal, correction or online evaluation of a trace")

EVENTS = RecordKind(
    "events", "event", "events", "event_id",
    (_c("event_id"), _c("user_id"), _c("session_id"), _c("trace_id"), _c("timestamp", "TIMESTAMPTZ"),
     _c("type"), _c("amount", "DOUBLE"), _c("currency"), _c("value", "DOUBLE"), _c("attributes", "JSON"),
     _c("span_id")),
    marker=("type",),
    description="a business event: signup, conversion, revenue, renewal, cancellation, churn ...")

KINDS: dict[str, RecordKind] = {k.name: k for k in (TRACES, FEEDBACK, EVENTS)}


@lru_cache(maxsize=None)
def record_validator(kind: str) -> Draft202012Validator:
    """The per-record jsonschema validator with the same date-time rule as the SQL (the reference path)."""
    from engine.ingest.timestamps import is_date_time

    checker = FormatChecker(formats=())

    @checker.checks("date-time")
    def _date_time(value: object) -> bool:
        return not isinstance(value, str) or is_date_time(value)

    return Draft202012Validator(load_schema(KINDS[kind].schema), format_checker=checker)
