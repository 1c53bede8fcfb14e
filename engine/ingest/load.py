"""One ingest batch: read files in chunks, validate each chunk in SQL, load everything in one transaction.

The statements (all sqlglot ASTs, rendered by engine.sql):

  detect      kind=auto: which kind each record is, from its marker fields (one JSON parse)
  insert      per chunk and kind: the schema checks derived from schemas/<kind>.schema.json, and the records
              that pass them, typed, privacy-treated (salted hash, redaction), with key and record hash, straight
              into the kind's table; it returns which records went in. The others are set aside (pending).
  validate    once per batch: the same checks on the set-aside records, with every reason -> a staging table
  quarantine  rejected staged records -> quarantine (with file, line, raw and every reason)
  settle      the batch's records whose key is stored already or came earlier in the batch (file, line, item
              order): duplicate (same content) or conflict (other content)
  drop        those leave the kind's table again: the record stored first stays
  conflicts   conflicts -> quarantine ("conflicting duplicate"), their raw text read again from the file;
              exact repeats are duplicates: accepted, counted, not inserted

Only rejected records are explained in detail; an accepted record costs one pass of the checks.
Counting rule, per file and per kind:  read = accepted + quarantined,  accepted = inserted + duplicates.
A batch is one DuckDB transaction: killed half way, the store holds none of it.

The parts: readers.py + strict.py (files -> chunks of raw records, strict JSON), options.py (the config),
checks.py (validation and typing of a kind as SQL), statements.py (the statements above), compiled.py (rendered
once, cached by schema hash), plan.py (the whole plan: what `flywheel compile ingest` prints and a run writes as
plan.sql), batch.py (running it chunk by chunk through the executor). This module names the public ones.
"""
from engine.ingest.batch import Batch, FileCounts  # noqa: F401  (the public names of the ingest engine)
from engine.ingest.checks import CHUNK, CONTROL, FILES, PENDING  # noqa: F401
from engine.ingest.compiled import KIND_STATEMENTS, kind_sql, kind_statement  # noqa: F401
from engine.ingest.options import UNKNOWN_FIELDS, Options  # noqa: F401
from engine.ingest.plan import plan  # noqa: F401
from engine.ingest.statements import (KindSQL, count_extra, detect_sql, k_derived,  # noqa: F401
                                      quarantine_text, quarantine_undetected, rows_to_json)
