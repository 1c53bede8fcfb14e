"""Input files -> chunks of raw records (Arrow tables), streamed with bounded memory.

Every reader yields `Chunk`s: an Arrow table with one row per record read:

    line     BIGINT   1-based line in the file (CSV: the line the row starts on; Parquet: the row number)
    item     INTEGER  the record's position inside an OTLP line (NULL for one-record-per-line formats)
    kind     VARCHAR  the record kind when the reader knows it (OTLP spans/events, a CSV header); else NULL
    problem  VARCHAR  why the reader could not take the record as it is (bad UTF-8, ragged CSV row); else NULL
    raw      VARCHAR  the record as JSON text (JSONL: the line itself, zero-copy)
    raw_bytes BLOB    the line's bytes when they are not valid UTF-8 (raw then shows U+FFFD): the quarantine keeps
                      and exports them as they were, so that a re-ingested export is rejected again, never
                      accepted with replacement characters
    strict   BOOLEAN  true when the strict-JSON check (engine/ingest/strict.py) recognised the record: RFC 8259
                      JSON by construction, so the SQL need not check that it parses; NULL as the reader yields it

Validation is not done here: the chunk goes to DuckDB as a whole (engine/ingest/load.py).
An empty line is not a record; lines end at \n only (a trailing \r is dropped), so U+2028, U+2029, U+0085,
\x0b, \x0c and \x1c-\x1e inside strings are content; a UTF-8 byte-order mark at the start of a file is skipped.
A file that cannot be read at all raises UnreadableFile.
"""
from __future__ import annotations

import csv
import glob as globlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from engine.errors import UserError

FORMATS = ("jsonl", "csv", "parquet", "otlp")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet",
               ".pq": "parquet"}
CHUNK_SCHEMA = pa.schema([("line", pa.int64()), ("item", pa.int32()), ("kind", pa.string()),
                          ("problem", pa.string()), ("raw", pa.large_string()), ("raw_bytes", pa.binary()),
                          ("strict", pa.bool_())])
UTF8_BOM = b"\xef\xbb\xbf"


FIRST_BLOCK_BYTES = 4 << 20


class UnreadableFile(Exception):
    """The whole file cannot be read (truncated Parquet, not a file, permission)."""


@dataclass
class Chunk:
    table: pa.Table
    bytes_done: int  # progress within the file
    skipped: int = 0  # input the reader had to leave out (e.g. model-call spans it could not convert): these
    #                   count against ingest.max_quarantine_share (engine/ingest/share.py), not as records read


@dataclass
class SourceFile:
    path: Path
    shown: str  # as the user named it (relative to the project when possible)
    format: str
    size: int
    sha256: str | None = None
    digest: Any = field(default=None, repr=False)
    otlp: dict | None = None  # OTLP files: what the reader saw (engine/ingest/otel.py OtlpFile.summary)


def prefetched(chunks: Iterator[Chunk], depth: int = 1) -> Iterator[Chunk]:
    """The chunks of `chunks`, read ahead in a thread: the next chunk is read, hashed and split while DuckDB
    validates the current one (both release the GIL). At most `depth` chunks wait, so memory stays bounded;
    an error in the reader is raised here, in order."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        q.put((chunk, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((done, None))
        except BaseException as e:  # handed to the consumer, which raises it
            q.put((done, e))

    worker = threading.Thread(target=produce, name="flywheel-ingest-reader", daemon=True)
    worker.start()
    try:
        while True:
            item, error = q.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue, then let it finish
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            worker.join(timeout=0.05)


def discover(patterns: list[str], project_dir: Path) -> list[Path]:
    """Files named by paths, directories (recursively: the files with a known extension) or globs."""
    found: list[Path] = []
    for pattern in patterns:
        p = Path(pattern).expanduser()
        p = p if p.is_absolute() else project_dir / p
        if any(ch in pattern for ch in "*?["):
            matches = sorted(Path(m) for m in globlib.glob(str(p), recursive=True) if Path(m).is_file())
            if not matches:
                raise UserError(f"ingest path '{pattern}': the glob matches no file")
            found.extend(matches)
        elif p.is_dir():
            matches = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in _EXTENSIONS)
            if not matches:
                raise UserError(f"ingest path '{pattern}': the directory holds no "
                                f"{'/'.join(sorted(_EXTENSIONS))} file")
            found.extend(matches)
        elif p.is_file():
            found.append(p)
        else:
            raise UserError(f"ingest path '{pattern}': no such file or directory ({p})")
    unique: list[Path] = []
    for f in found:
        if f.resolve() not in {u.resolve() for u in unique}:
            unique.append(f)
    return unique


def detect_format(path: Path, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: cannot tell the format from the extension '{path.suffix}'; "
                        f"set ingest.format to one of {', '.join(FORMATS)}")
    if fmt == "jsonl":
        with open(path, "rb") as f:
            head = f.read(1 << 16)
        if b'"resourceSpans"' in head or b'"resource_spans"' in head:
            return "otlp"
    return fmt


def _nulls(n: int, type_: pa.DataType = pa.string()) -> pa.Array:
    return pa.nulls(n, type_)


def _table(lines: np.ndarray | list[int], raw: pa.Array | list[str], kind: list | None = None,
           problem: list | None = None, item: list | None = None, raw_bytes: list | None = None) -> pa.Table:
    n = len(raw)
    return pa.Table.from_arrays([
        pa.array(lines, pa.int64()),
        pa.array(item, pa.int32()) if item is not None else _nulls(n, pa.int32()),
        pa.array(kind, pa.string()) if kind is not None else _nulls(n),
        pa.array(problem, pa.string()) if problem is not None else _nulls(n),
        raw if isinstance(raw, (pa.Array, pa.ChunkedArray)) else pa.array(raw, pa.large_string()),
        pa.array(raw_bytes, pa.binary()) if raw_bytes is not None else _nulls(n, pa.binary()),
        _nulls(n, pa.bool_()),  # set by the strict check (engine/ingest/strict.py check_table)
    ], schema=CHUNK_SCHEMA)


class _Rows:
    """Records of one chunk as they are read (the slow paths: OTLP, CSV)."""

    def __init__(self) -> None:
        self.lines: list[int] = []
        self.items: list[int | None] = []
        self.kinds: list[str | None] = []
        self.problems: list[str | None] = []
        self.raws: list[str] = []
        self.raw_bytes: list[bytes | None] = []

    def add(self, line: int, raw: str, kind: str | None = None, problem: str | None = None,
            item: int | None = None, raw_bytes: bytes | None = None) -> None:
        self.raw_bytes.append(raw_bytes)
        self.lines.append(line)
        self.items.append(item)
        self.kinds.append(kind)
        self.problems.append(problem)
        self.raws.append(raw)

    def __len__(self) -> int:
        return len(self.raws)

    def table(self) -> pa.Table:
        return _table(self.lines, self.raws, kind=self.kinds, problem=self.problems, item=self.items,
                      raw_bytes=self.raw_bytes)


def _byte_blocks(source: SourceFile, chunk_bytes: int) -> Iterator[tuple[memoryview, int, int]]:
    """(block of whole lines, bytes done, lines in earlier blocks); hashes the file on the way.

    Each block is a fresh buffer (the Arrow chunk made from it references it without copying): the part of a
    line cut by the previous block, then the file read straight into it. Blocks start small and grow to
    `chunk_bytes`, so that validation starts early while the next blocks are read (see prefetched)."""
    digest = hashlib.sha256()
    done = 0
    carry = b""
    want = min(chunk_bytes, FIRST_BLOCK_BYTES)
    with open(source.path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        while True:
            buf = bytearray(len(carry) + min(want, max(size - done, 0) + (1 << 16)))
            want = min(chunk_bytes, want * 4)
            view = memoryview(buf)
            view[: len(carry)] = carry
            end = len(carry)
            while end < len(buf):
                n = f.readinto(view[end:])
                if not n:
                    break
                end += n
            fresh = end - len(carry)
            digest.update(view[len(carry): end])  # releases the GIL for large buffers
            done += fresh
            if not fresh:
                if carry:
                    yield memoryview(carry), done, 0
                break
            cut = buf.rfind(b"\n", 0, end)
            if cut < 0:
                carry = bytes(view[:end])
                continue
            carry = bytes(view[cut + 1: end])
            yield view[: cut + 1], done, 0
    source.sha256 = digest.hexdigest()


def _split_lines(data: bytes | memoryview) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, newline and CR stripped) byte offsets of every line in `data`."""
    buf = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    if len(data) and buf[-1] != 10:  # last line without a newline
        nl = np.append(nl, len(data))
    starts = np.empty(len(nl), dtype=np.int64)
    if len(nl):
        starts[0] = 0
        starts[1:] = nl[:-1] + 1
    ends = nl.astype(np.int64)
    has_cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13)
    ends = ends - has_cr
    return starts, ends


def read_jsonl(source: SourceFile, chunk_bytes: int) -> Iterator[Chunk]:
    line0 = 1
    for data, done, _ in _byte_blocks(source, chunk_bytes):
        starts, ends = _split_lines(data)
        if line0 == 1 and len(starts) and bytes(data[:3]) == UTF8_BOM:
            starts[0] += 3  # the byte-order mark is not part of the first record
        n_lines = len(starts)
        keep = np.flatnonzero(ends > starts)  # an empty line is not a record
        line_numbers = line0 + keep
        line0 += n_lines
        if len(keep) == 0:
            yield Chunk(_table([], []), done)
            continue
        if len(keep) == n_lines:
            # Fast path, no empty line: the values are contiguous slices of `data` (zero copy), each keeping
            # its line break, which JSON parsing ignores and the quarantine trims.
            offsets = np.empty(n_lines + 1, dtype=np.int64)
            offsets[:-1] = starts
            offsets[-1] = len(data)
            raw = pa.LargeStringArray.from_buffers(n_lines, pa.py_buffer(offsets), pa.py_buffer(data))
            try:
                raw.validate(full=True)  # the UTF-8 check, vectorised
                yield Chunk(_table(line_numbers, raw), done)
                continue
            except pa.ArrowInvalid:
                pass
        yield Chunk(_decode_lines(data, starts[keep], ends[keep], line_numbers), done)


def _decode_lines(data: bytes | memoryview, starts: np.ndarray, ends: np.ndarray, lines: np.ndarray) -> pa.Table:
    """The slow path (a chunk with bad UTF-8 or empty lines): decode line by line, flag bad bytes."""
    raw: list[str] = []
    problem: list[str | None] = []
    raw_bytes: list[bytes | None] = []
    for s, e in zip(starts.tolist(), ends.tolist()):
        piece = bytes(data[s:e])
        try:
            raw.append(piece.decode("utf-8"))
            problem.append(None)
            raw_bytes.append(None)
        except UnicodeDecodeError as err:
            raw.append(piece.decode("utf-8", errors="replace"))
            problem.append(f"not valid UTF-8: byte 0x{piece[err.start]:02X} at column {err.start + 1} "
                           f"(is the file in another encoding, e.g. latin-1?)")
            raw_bytes.append(piece)
    return _table(lines, raw, problem=problem, raw_bytes=raw_bytes)


def read_otlp(source: SourceFile, chunk_bytes: int) -> Iterator[Chunk]:
    """OTLP/JSON: one ExportTraceServiceRequest per line (the OTel file exporter), or one pretty-printed
    document per file. Feedback events come as their lines are read; each OTel trace with a GenAI span becomes
    one trace record once the whole file is read, as its spans may be on several lines (engine/ingest/otel.py).
    What the file held (spans per attribute layout, traces, spans skipped and why) is left in `source.otlp`."""
    from engine.ingest.otel import OtlpFile, dumps
    from engine.jsonlines import BOM, loads_strict

    with open(source.path, "rb") as f:
        first = b""
        for first in f:
            if first.strip():
                break
    whole_document = False
    first = first.lstrip(b"\xef\xbb\xbf")
    try:
        json.loads(first)
    except ValueError:
        whole_document = first.strip().startswith(b"{")  # a pretty-printed document spans many lines
    if whole_document:
        data = source.path.read_bytes()
        source.sha256 = hashlib.sha256(data).hexdigest()
        blocks: Iterator[tuple[bytes, int, int]] = iter([(data, len(data), 0)])
    else:
        blocks = _byte_blocks(source, chunk_bytes)
    otlp = OtlpFile()
    line0 = 1
    done = 0
    for data, done, _ in blocks:
        pieces = [data] if whole_document else bytes(data).split(b"\n")
        rows = _Rows()
        for offset, piece in enumerate(pieces):
            line = line0 + offset
            if not piece.strip():
                continue
            try:
                text = piece.decode("utf-8")
            except UnicodeDecodeError:
                rows.add(line, piece.decode("utf-8", errors="replace"), "traces", "not valid UTF-8",
                         raw_bytes=piece.rstrip(b"\r"))
                continue
            try:
                request = loads_strict(text.lstrip(BOM) if line == 1 else text)
            except ValueError as err:
                rows.add(line, text.rstrip("\r"), "traces", f"invalid OTLP JSON: {err}")
                continue
            for at, item, kind, record, problem in otlp.add(request, line):
                rows.add(at, dumps(record), kind, problem, item)
        line0 += 1 if whole_document else len(pieces) - (1 if pieces and pieces[-1] == b"" else 0)
        yield Chunk(rows.table(), done)
    rows = _Rows()
    for at, item, kind, record, problem in otlp.finish():
        rows.add(at, dumps(record), kind, problem, item)
    source.otlp = otlp.summary()
    yield Chunk(rows.table(), done)


def _coerce(value: str, types: set[str]) -> Any:
    """A CSV cell as the JSON value the schema expects, when it reads as one; else the text unchanged."""
    if "integer" in types or "number" in types:
        try:
            number = float(value)
            if number == number and abs(number) != float("inf"):
                return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() \
                    else number
        except ValueError:
            pass
    if "boolean" in types and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if "object" in types and value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value


def read_csv(source: SourceFile, chunk_rows: int, field_types: dict[str, dict[str, set[str]]],
             kind: str | None) -> Iterator[Chunk]:
    """CSV with a header. Cells are typed by the record schema (numbers, JSON objects); an empty cell is an
    absent field; a column `attributes.topic` fills attributes.topic. `field_types` maps kind -> field -> types."""
    digest = hashlib.sha256()
    with open(source.path, "rb") as fb:
        for block in iter(lambda: fb.read(1 << 24), b""):
            digest.update(block)
    source.sha256 = digest.hexdigest()
    with open(source.path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise UnreadableFile(f"cannot read the CSV header: {e}") from e
        header = [h.strip().lstrip("\ufeff") for h in header]
        file_kind = kind or _kind_from_header(header, field_types)
        types = field_types.get(file_kind or "", {})
        previous_end = reader.line_num
        rows = _Rows()
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                rows.add(previous_end + 1, "", file_kind, f"unreadable CSV row: {e}")
                previous_end = reader.line_num
                continue
            start = previous_end + 1
            previous_end = reader.line_num
            if not row or all(not cell for cell in row) and len(row) <= 1:
                continue
            text = ",".join(row)
            problem = None
            raw_bytes = None
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                problem = "not valid UTF-8 (is the file in another encoding, e.g. latin-1?)"
                # The row as JSON with the undecodable bytes put back as they were (surrogateescape round trip)
                as_read = dict(zip(header, row)) if len(row) == len(header) else row
                raw_bytes = json.dumps(as_read, ensure_ascii=False).encode("utf-8", "surrogateescape")
                row = [c.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for c in row]
            if problem is None and len(row) != len(header):
                problem = f"row has {len(row)} fields, the header has {len(header)}"
            record: dict[str, Any] = {}
            if problem is None:
                for name, cell in zip(header, row):
                    if cell == "":
                        continue
                    if "." in name:
                        parent, child = name.split(".", 1)
                        target = record.setdefault(parent, {})
                        if isinstance(target, dict):
                            target[child] = cell
                        continue
                    record[name] = _coerce(cell, types.get(name, set()))
                raw = json.dumps(record, ensure_ascii=False)
            else:
                raw = json.dumps(dict(zip(header, row)) if len(row) == len(header) else row, ensure_ascii=False)
            rows.add(start, raw, file_kind, problem, raw_bytes=raw_bytes)
            if len(rows) >= chunk_rows:
                yield Chunk(rows.table(), f.buffer.tell())
                rows = _Rows()
        if len(rows):
            yield Chunk(rows.table(), source.size)


def _kind_from_header(header: list[str], field_types: dict[str, dict[str, set[str]]]) -> str | None:
    from engine.ingest.records import KINDS

    columns = {h.split(".", 1)[0] for h in header}
    for kind in KINDS.values():
        if set(kind.marker) <= columns:
            return kind.name
    return None


def read_parquet(source: SourceFile, chunk_rows: int, con) -> Iterator[Chunk]:
    """Parquet, streamed by record batches; each row becomes JSON text in DuckDB (to_json)."""
    import pyarrow.parquet as pq

    digest = hashlib.sha256()
    with open(source.path, "rb") as fb:
        for block in iter(lambda: fb.read(1 << 24), b""):
            digest.update(block)
    source.sha256 = digest.hexdigest()
    try:
        pf = pq.ParquetFile(source.path)
        total = pf.metadata.num_rows
        row0 = 1
        for batch in pf.iter_batches(batch_size=chunk_rows):
            rows = pa.Table.from_batches([batch])
            raw = _rows_as_json(con, rows)
            yield Chunk(_table(np.arange(row0, row0 + rows.num_rows), raw),
                        int(source.size * min(1.0, (row0 + rows.num_rows - 1) / max(total, 1))))
            row0 += rows.num_rows
    except (pa.ArrowInvalid, OSError) as e:
        raise UnreadableFile(f"not a readable Parquet file: {e}") from e


def _rows_as_json(con, rows: pa.Table) -> pa.Array:
    from engine import executor
    from engine.ingest.statements import rows_to_json

    out = executor.execute_over(con, rows_to_json(), {}, rows, lambda relation: relation.to_arrow_table(),
                                relation=True)
    return out.column(0).combine_chunks().cast(pa.large_string())
