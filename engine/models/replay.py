"""Replay: predictions produced elsewhere, read from a JSONL, Parquet or CSV file and matched by case id."""
from __future__ import annotations

from pathlib import Path

from engine.errors import UserError
from engine.models.base import ModelRequest, ModelResponse
from engine.provenance import content_hash


class ReplayAdapter:
    """Returns the recorded prediction for each case id; a case with no row is an errored case."""

    def __init__(self, name: str, path: Path, shown_path: str, id_field: str = "id", output_field: str = "output"):
        import polars as pl

        self.name = name
        self.shown_path = shown_path
        if not path.is_file():
            raise UserError(f"model '{name}': predictions file not found: {shown_path} ({path})")
        try:
            if path.suffix == ".parquet":
                frame = pl.read_parquet(path)
            elif path.suffix == ".csv":
                frame = pl.read_csv(path, infer_schema_length=0)  # all text: ids stay exactly as written
            else:
                frame = pl.read_ndjson(path, infer_schema_length=None)
        except Exception as e:
            raise UserError(f"model '{name}': cannot read predictions {shown_path}: {e}") from e
        for field in (id_field, output_field):
            if field not in frame.columns:
                raise UserError(f"model '{name}': {shown_path} has no column '{field}' "
                                f"(columns: {', '.join(frame.columns)}); set id_field/output_field")
        self.rows: dict[str, dict] = {}
        for row in frame.to_dicts():
            self.rows[str(row[id_field])] = row
        self.output_field = output_field
        self.file_hash = content_hash(path.read_bytes().hex(), length=24)

    def fingerprint_payload(self) -> dict:
        return {"adapter": "replay", "file": self.file_hash, "output_field": self.output_field}

    def predict_batch(self, requests: list[ModelRequest]) -> list[ModelResponse]:
        out = []
        for req in requests:
            row = self.rows.get(req.case_id)
            if row is None:
                out.append(ModelResponse.failed(f"no prediction for case '{req.case_id}' in {self.shown_path}"))
                continue
            output = row.get(self.output_field)
            error = row.get("error")
            out.append(ModelResponse(
                output_text=None if output is None else str(output),
                error=error or (None if output is not None else "prediction is null"),
                latency_ms=row.get("latency_ms"), prompt_tokens=row.get("prompt_tokens"),
                completion_tokens=row.get("completion_tokens"), cost=row.get("cost")))
        return out
