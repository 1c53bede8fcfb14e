"""Production data in: readers for JSONL, CSV, Parquet and OTLP/JSON, record checks compiled from the JSON
Schemas into SQL, and a transactional, idempotent loader with a quarantine. See engine/ingest/load.py (the overview; the modules it names hold the parts)."""
