"""Running a statement over an Arrow table without registering it.

`con.register(name, table)` creates a view in the catalog. Inside a transaction, dropping it again
(`unregister`) leaves the old catalog entry, and the table it holds, alive until the transaction ends: an
ingest, one transaction over every chunk of every file, would keep every chunk it read in memory (peak RSS grew
with the input: 2 GiB for 2M traces). DuckDB's replacement scan instead finds the table as a local variable of
the calling frame, for the one statement only: engine/executor.py `execute_over` runs a plan statement so.
"""
from __future__ import annotations

TABLE = "fw_chunk"  # the name statements read the Arrow table by
