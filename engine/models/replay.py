"""Replay: predictions produced elsewhere, read from a JSONL, Parquet or CSV file and matched by case id.

A prediction belongs to its case id, so replay outputs are keyed by case (engine/output_identity.py): two
cases with the same question keep their own predictions. The file is read only when an output is not cached
(its fingerprint is the hash of its bytes), and matched to the cases in one columnar join.
"""
from __future__ import annotations

from pathlib import Path

from engine.errors import UserError
from engine.models.base import ModelRequest, ModelResponse
from engine.models.spec import ReplayParams
from engine.provenance import file_sha256

_NUMERIC = {"latency_ms": "Float64", "prompt_tokens": "Int64", "completion_tokens": "Int64", "cost": "Float64"}


class ReplayAdapter:
    """Returns the recorded prediction for each case id; a case with no row is an errored case."""

    output_identity = "case"

    def __init__(self, name: str, path: Path, params: ReplayParams):
        self.name = name
        self.path = path  # params.path resolved against the project
        self.shown_path = params.path
        self.id_field = params.id_field
        self.output_field = params.output_field
        if not path.is_file():
            raise UserError(f"model '{name}': predictions file not found: {params.path} ({path})")
        self.file_hash = file_sha256(path)[:24]
        self._frame = None

    def fingerprint_payload(self) -> dict:
        return {"adapter": "replay", "file_sha256": self.file_hash, "output_field": self.output_field}

    def _predictions(self):
        """The file as a frame: id (text), output_text, error and the numeric extras; ids are unique."""
        if self._frame is not None:
            return self._frame
        import polars as pl

        try:
            if self.path.suffix == ".parquet":
                frame = pl.read_parquet(self.path)
            elif self.path.suffix == ".csv":
                frame = pl.read_csv(self.path, infer_schema_length=0)  # all text: ids stay exactly as written
            else:
                frame = pl.read_ndjson(self.path, infer_schema_length=None)
        except Exception as e:
            raise UserError(f"model '{self.name}': cannot read predictions {self.shown_path}: {e}") from e
        for field in (self.id_field, self.output_field):
            if field not in frame.columns:
                raise UserError(f"model '{self.name}': {self.shown_path} has no column '{field}' "
                                f"(columns: {', '.join(frame.columns)}); set id_field/output_field")
        ids = frame.get_column(self.id_field).cast(pl.String)
        duplicated = frame.select(ids.alias("id")).with_row_index("row").filter(pl.col("id").is_duplicated())
        if duplicated.height:
            first = duplicated.get_column("id")[0]
            rows = duplicated.filter(pl.col("id") == first).get_column("row").to_list()
            raise UserError(f"model '{self.name}': {self.shown_path} has {duplicated.height} predictions for "
                            f"{duplicated.get_column('id').n_unique()} repeated case id(s), e.g. '{first}' at "
                            f"records {', '.join(str(r + 1) for r in rows[:5])}: one prediction per case id")
        data = {"id": ids, "output_text": frame.get_column(self.output_field).cast(pl.String),
                "error": (frame.get_column("error").cast(pl.String) if "error" in frame.columns
                          else pl.Series("error", [None] * frame.height, pl.String))}
        for name, dtype in _NUMERIC.items():
            data[name] = (frame.get_column(name).cast(getattr(pl, dtype), strict=False) if name in frame.columns
                          else pl.Series(name, [None] * frame.height, getattr(pl, dtype)))
        self._frame = pl.DataFrame(data).with_columns(
            # an empty error is no error; a null output without one is an error of its own
            pl.when(pl.col("error").str.len_chars() > 0).then(pl.col("error"))
            .when(pl.col("output_text").is_null()).then(pl.lit("prediction is null"))
            .otherwise(None).alias("error"),
            pl.lit(True).alias("flywheel_found"))
        return self._frame

    def predict_table(self, case_ids):
        """One prediction row per case id (an Arrow string array), in order: the columnar answer."""
        import polars as pl

        wanted = pl.DataFrame({"id": pl.Series("id", case_ids, dtype=pl.String)})
        joined = wanted.join(self._predictions(), on="id", how="left", maintain_order="left")
        missing = pl.concat_str(pl.lit("no prediction for case '"), pl.col("id"), pl.lit(f"' in {self.shown_path}"))
        return joined.with_columns(
            pl.when(pl.col("flywheel_found")).then(pl.col("error")).otherwise(missing).alias("error"),
        ).select("output_text", "error", *_NUMERIC).to_arrow()

    def predict_batch(self, requests: list[ModelRequest]) -> list[ModelResponse]:
        import pyarrow as pa

        table = self.predict_table(pa.array([r.case_id for r in requests], pa.string())).to_pylist()
        return [ModelResponse(output_text=row["output_text"], error=row["error"], latency_ms=row["latency_ms"],
                              prompt_tokens=row["prompt_tokens"], completion_tokens=row["completion_tokens"],
                              cost=row["cost"]) for row in table]
