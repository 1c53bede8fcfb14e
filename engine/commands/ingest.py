"""`flywheel ingest`: production traces, feedback and business events into the store.

    flywheel ingest path=FILE|DIR|GLOB [kind=auto|traces|feedback|events] [ingest.format=...] [out=result.json]
    flywheel ingest export_quarantine=bad.jsonl [ingest.export.batch=ID] [ingest.export.kind=traces]
    flywheel ingest path=... to=parquet:LAKE     (accepted records into a Parquet lake: engine/ingest/lake_sink.py)

Exit codes: 0 when the batch loaded and at most `ingest.max_quarantine_share` of its records was quarantined;
1 when more was (an alert: the batch is stored all the same); 2 when an input cannot be read at all (nothing is
stored then) or the config is wrong.
"""
from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Callable, Iterator

import duckdb
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from engine.commands.registry import Outcome, command
from engine.config import Composed
from engine.console import console
from engine.errors import OperationalError, UserError
from engine.evaluation import store_path
from engine.ingest import lake_sink, readers
from engine import executor, journal
from engine.ingest.load import Batch, count_extra
from engine.ingest.options import ExportSpec, IngestSpec
from engine.ingest.plan import TOOL_STEPS, fixed, plan
from engine.ingest.otel import print_otlp_summary
from engine.ingest.quarantine import export_quarantine
from engine.ingest.records import KINDS
from engine.ingest.share import share_verdict
from engine.provenance import canonical_json, new_run_id, utc_now
from engine.report.layout import fit
from engine.schemas import all_errors, dotted, validator
from engine.specs import RunSpec
from engine.sql import Plan
from engine.store import Store
from engine.config_checks import checker

COUNTS = ("read", "accepted", "inserted", "duplicates", "quarantined")


@checker(section="ingest")
def _check_ingest(composed: Composed, add) -> None:
    cfg = composed.config
    problem = lake_sink.scheme_problem(cfg.get("to"))
    if problem:
        add("to", problem)
    block = cfg.get("ingest")
    if not isinstance(block, dict):
        return
    for path, message in all_errors(validator("ingest"), block):
        add(dotted(path, "ingest"), message)
    known = {f for k in KINDS.values() for f in k.top_level_fields}
    for i, name in enumerate((block.get("privacy") or {}).get("redact") or []):
        top, _, child = str(name).partition(".")
        if top not in known or (child and top != "attributes"):
            add(f"ingest.privacy.redact[{i}]", f"'{name}' is not a record field; use a top-level field "
                                               f"({', '.join(sorted(known))}) or attributes.<key>")


def _plan(cfg: dict, spec: IngestSpec) -> Plan:
    """The plan an ingest with this config runs: loading (when a path is given, or nothing is) and/or exporting."""
    export_to = cfg.get("export_quarantine")
    return plan(spec.options, ingest=bool(spec.paths) or not export_to, export=spec.export if export_to else None)


def compile_sql(composed: Composed) -> Plan:
    return _plan(composed.config, IngestSpec.of(composed.config))


def _sources(composed: Composed, spec: IngestSpec) -> list[readers.SourceFile]:
    files = readers.discover(list(spec.paths), composed.project.dir)
    sources = []
    for f in files:
        try:
            shown = str(f.relative_to(composed.project.dir))
        except ValueError:
            shown = str(f)
        sources.append(readers.SourceFile(f, shown, readers.detect_format(f, spec.options.format), f.stat().st_size))
    return sources


@command("ingest", "load production traces, feedback and events (JSONL, CSV, Parquet, OTLP); quarantine bad records",
         compile=compile_sql, sections=("ingest",))
def ingest(composed: Composed) -> Outcome:
    cfg = composed.config
    spec = IngestSpec.of(cfg)
    options = spec.options
    export_to = cfg.get("export_quarantine")
    if not spec.paths and not export_to:
        raise UserError("nothing to ingest: give path=FILE|DIR|GLOB (and kind=traces|feedback|events|auto), "
                        "or export_quarantine=PATH to write out quarantined records")
    sources = _sources(composed, spec) if spec.paths else []
    lake = lake_sink.target(cfg.get("to"), composed.project.dir) if spec.paths else None
    path = store_path(cfg, composed.project)
    result: dict = {"command": "ingest", "store": str(path), "batch_id": None, "kind": options.kind,
                    "started_at": None, "finished_at": None, "seconds": None, "records_per_second": None,
                    "privacy": options.privacy_summary(), "files": [], "totals": dict.fromkeys(COUNTS, 0),
                    "by_kind": {}, "quarantine_reasons": {}, "unknown_fields_kept": 0, "export": None,
                    "quarantine_share": None, "conflicts": None, "resolved": {}, "lake": None}
    with Store.open(path) as store:
        if sources:
            _ingest(store, sources, spec, cfg, result, lake)
        if export_to:
            _export(store, composed, export_to, spec.export, result)
    # the plan it ran, for its run artifacts: its kind statements are those the batch ran (compiled once, or read
    # from the store), not compiled again
    journal.running_plan(_plan(cfg, spec))
    share = result["quarantine_share"]
    if share and share["exceeded"]:
        console.print(f"[bold red]quarantine share {share['share']:.1%} is above ingest.max_quarantine_share "
                      f"{share['limit']:.1%}[/]: exit 1 (the batch is stored; see the reasons above)", highlight=False)
        return Outcome(1, result, "ingest_result")
    return Outcome(0, result, "ingest_result")


def _export(store: Store, composed: Composed, export_to: str, export: ExportSpec, result: dict) -> None:
    out = Path(export_to).expanduser()
    out = out if out.is_absolute() else composed.project.dir / out
    try:  # named as `ingest path=` will name it when the export comes back (see _sources)
        shown = str(out.relative_to(composed.project.dir))
    except ValueError:
        shown = str(out)
    with store.transaction() as con:
        result["export"] = export_quarantine(con, out, shown, utc_now(), batch=export.batch, kind=export.kind,
                                             include_resolved=export.include_resolved)
    console.print(f"exported {result['export']['records']} quarantined record(s) to {out} "
                  f"(reasons in {result['export']['reasons_path']}); fix them in place (keep the line order) and "
                  f"run `flywheel ingest path={export_to}`", highlight=False)
    if result["export"]["withheld"]:
        console.print(f"{result['export']['withheld']:,} quarantined record(s) are not exported: privacy settings "
                      f"withhold their text (not a JSON object, or not UTF-8); fix them at their source (file and "
                      f"line in the `quarantine` table) or set ingest.quarantine.keep_raw=true", highlight=False)


def _ingest(store: Store, sources: list[readers.SourceFile], spec: IngestSpec, cfg: dict, result: dict,
            lake: lake_sink.LakeTarget | None = None) -> None:
    options = spec.options
    batch_id = new_run_id("ingest")
    sink = lake_sink.Sink.prepare(lake, store, sources, options, batch_id) if lake is not None else None
    if sink is not None and sink.done:
        result.update(batch_id=sink.manifest["store_batch"], lake=sink.to_json())
        sink.print_done()
        return
    started = utc_now()
    clock = time.perf_counter()
    show = RunSpec.of(cfg).progress
    total_bytes = sum(s.size for s in sources)
    interactive = console.is_terminal
    with _progress(len(sources), total_bytes, clock, enabled=show and interactive) as advance:
        done: dict[str, tuple[int, int]] = {}  # file -> (bytes done, records read)

        def on_chunk(source: readers.SourceFile, n_records: int, bytes_done: int) -> None:
            before_bytes, before_records = done.get(source.shown, (0, 0))
            done[source.shown] = (bytes_done, n_records)
            advance(max(0, bytes_done - before_bytes), max(0, n_records - before_records))
            if show and not interactive:  # logs and pipes get a line per chunk
                records = sum(n for _, n in done.values())
                rate = records / max(time.perf_counter() - clock, 1e-9)
                console.print(f"  {source.shown}: {n_records:,} records read "
                              f"({bytes_done * 100 // max(source.size, 1)}%; {rate:,.0f} records/s)", highlight=False)

        try:
            with store.transaction() as con, ExitStack() as within:
                if sink is not None:  # the batch's records into private tables shadowing the store's
                    within.enter_context(lake_sink.shadowing(con, list(KINDS) if options.kind == "auto"
                                                             else [options.kind]))
                batch = Batch(con, options, batch_id, started, on_chunk)
                files = batch.run(sources)
                from engine.agents.otel_steps import store_tool_steps  # agents' execute_tool spans, same transaction
                with journal.step(TOOL_STEPS.name):
                    result["tool_steps"] = store_tool_steps(con, sources, batch_id)
                finished = utc_now()
                earlier = {f.path: [r["batch_id"] for r in executor.execute(con, fixed()["earlier_ingests"],
                                                                            {"sha256": f.sha256})] if f.sha256 else []
                           for f in files}
                settings = canonical_json({"kind": options.kind, "format": options.format,
                                           "unknown_fields": options.unknown_fields,
                                           "privacy": options.privacy_summary(),
                                           **({"lake": sink.provenance()} if sink is not None else {})})
                for f in files:
                    f.previously_ingested_in = earlier[f.path]
                    executor.execute(con, fixed()["record_batch"], {
                        "batch_id": batch_id, "path": f.path, "sha256": f.sha256, "bytes": f.bytes, "format": f.format,
                        "started": started, "finished": finished, "read": f.read, "accepted": f.accepted,
                        "inserted": f.inserted, "duplicates": f.duplicates, "quarantined": f.quarantined,
                        "options": settings})
                kept = 0
                if options.unknown_fields == "keep":
                    for kind in batch.kinds:
                        kept += executor.execute(con, count_extra(KINDS[kind]), {"batch_id": batch_id})[0]["n"]
                if sink is not None:  # published before the store commits: see engine/ingest/lake_sink.py
                    sink.publish(con, batch.kinds, files)
        except readers.UnreadableFile as e:
            raise UserError(f"{e}; nothing was stored (set ingest.on_unreadable_file=quarantine to load the other "
                            f"files and quarantine this one)") from e
        except duckdb.OutOfMemoryException as e:
            raise OperationalError(f"ingest ran out of its memory budget (ingest.memory_mb={options.memory_mb}); "
                                   f"nothing was stored: raise ingest.memory_mb or lower ingest.chunk_bytes "
                                   f"(CSV, Parquet: ingest.chunk_rows) "
                                   f"({str(e).splitlines()[0]})") from e
    seconds = time.perf_counter() - clock
    result.update(batch_id=batch_id, started_at=started.isoformat(), finished_at=finished.isoformat(),
                  seconds=round(seconds, 3), unknown_fields_kept=kept,
                  quarantine_reasons=batch.quarantine_reasons, files=[f.to_json() for f in files])
    totals = dict.fromkeys(COUNTS, 0)
    by_kind: dict[str, dict[str, int]] = {}
    for f in files:
        for key in COUNTS:
            totals[key] += getattr(f, key)
        for kind, counts in f.by_kind.items():
            agg = by_kind.setdefault(kind, dict.fromkeys(COUNTS, 0))
            for key in COUNTS:
                agg[key] += counts[key]
    result["totals"] = totals
    result["by_kind"] = by_kind
    result["records_per_second"] = round(totals["read"] / seconds, 1) if seconds > 0 else None
    skipped = sum(f.skipped for f in files)
    result["quarantine_share"] = share_verdict({**totals, "skipped": skipped}, spec.max_quarantine_share)
    result["resolved"] = batch.resolved
    result["lake"] = sink.to_json() if sink is not None else None
    if batch.conflicts_with:
        retract = " ".join(f"`flywheel store retract {b}`" for b in sorted(batch.conflicts_with))
        result["conflicts"] = {"records": sum(batch.conflicts_with.values()), "stored_by": batch.conflicts_with,
                               "how_to_replace": f"to replace the stored versions: {retract} (it removes every "
                                                 f"record of that batch), then ingest the corrected data again"}
    _print(result, store, batch_id, spec.show_reasons)


@contextmanager
def _progress(n_files: int, total_bytes: int, clock: float, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar over the input's bytes that shows the records read and records/s (rich; interactive
    terminals only, and not with run.progress=false). Yields advance(bytes, records)."""
    if not enabled or total_bytes == 0:
        yield lambda n_bytes, n_records: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                  TextColumn("{task.fields[records]:,} records, {task.fields[rate]:,.0f} records/s"),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        task = progress.add_task(f"ingest {n_files} file(s)", total=total_bytes, records=0, rate=0.0)
        records = 0

        def advance(n_bytes: int, n_records: int) -> None:
            nonlocal records
            records += n_records
            progress.update(task, advance=n_bytes, records=records,
                            rate=records / max(time.perf_counter() - clock, 1e-9))

        yield advance


def _print(result: dict, store: Store, batch_id: str, show_reasons: int) -> None:
    t = result["totals"]
    table = Table(title=f"ingest batch {batch_id}", title_justify="left")
    table.add_column("file")
    table.add_column("format")
    for key in COUNTS:
        table.add_column(key, justify="right")
    for f in result["files"]:
        table.add_row(f["path"], f["format"], *[f"{f[k]:,}" for k in COUNTS])
    if len(result["files"]) > 1:
        table.add_row("[bold]total[/]", "", *[f"[bold]{t[k]:,}[/]" for k in COUNTS])
    console.print(fit(table))
    rate = result["records_per_second"]
    console.print(f"{t['read']:,} read = {t['accepted']:,} accepted + {t['quarantined']:,} quarantined; "
                  f"{t['inserted']:,} new, {t['duplicates']:,} duplicate(s) already stored or repeated"
                  + (f"; {rate:,.0f} records/s" if rate else ""), highlight=False)
    if result["lake"]:
        console.print(lake_sink.summary(result["lake"]), highlight=False)
    elif t["read"] and t["inserted"] == 0 and t["duplicates"] == t["accepted"] and t["accepted"]:
        console.print("nothing new: every accepted record was already in the store", highlight=False)
    for f in result["files"]:
        if f["previously_ingested_in"]:
            console.print(f"{f['path']}: the same file (sha256 {f['sha256'][:12]}) was ingested before in "
                          f"{', '.join(f['previously_ingested_in'])}", highlight=False)
    for f in result["files"]:
        if f.get("otlp"):
            print_otlp_summary(f["path"], f["otlp"])
    if result["resolved"]:
        how = ", ".join(f"{n:,} {what}" for what, n in sorted(result["resolved"].items()))
        console.print(f"quarantined records of earlier batches resolved by this one: {how}", highlight=False)
    if result["conflicts"]:
        c = result["conflicts"]
        console.print(f"[bold yellow]{c['records']:,} record(s) have the id of a stored record but other content[/] "
                      f"(a correction?): the stored version stays, these are quarantined as conflicts. Stored by "
                      f"batch(es) {', '.join(sorted(c['stored_by']))} (`flywheel store batches` lists them); "
                      f"{c['how_to_replace']}.", highlight=False)
    if result["unknown_fields_kept"]:
        console.print(f"{result['unknown_fields_kept']:,} accepted record(s) carry fields the schema does not name; "
                      f"kept in the `extra` column", highlight=False)
    if not t["quarantined"] or not show_reasons:
        return
    console.print(f"[bold yellow]{t['quarantined']:,} quarantined[/] (table `quarantine`, batch {batch_id}):")
    for reason, n in list(result["quarantine_reasons"].items())[:20]:
        rows = executor.execute(store.con, fixed()["quarantine_examples"],
                                {"batch_id": batch_id, "reason": reason, "limit": show_reasons})
        where = ", ".join(f"{r['source_file']}:{r['source_line'] if r['source_line'] is not None else '-'}"
                          + (f"#{r['source_item']}" if r["source_item"] is not None else "") for r in rows)
        console.print(f"  {n:,} x {reason}  [dim]({where}{', ...' if n > len(rows) else ''})[/]", highlight=False)
    console.print("export them with `flywheel ingest export_quarantine=PATH`, fix, and ingest the file again",
                  highlight=False)
