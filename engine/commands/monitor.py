"""`flywheel monitor`: Loop 2 over the stored traces, feedback and events; exit 1 on a blocking alert."""
from __future__ import annotations

from engine.commands.registry import Outcome, command
from engine.config import Composed
from engine.sql import Plan
from engine import lake
from engine.console import console
from engine.evaluation import store_path
from engine.monitor.report import print_monitor
from engine.monitor.run import compile_plan, run_monitor
from engine.outputs import output_path
from engine.report.html import report_path, write_html
from engine.store import Store


def compile_sql(composed: Composed) -> Plan:
    return compile_plan(composed.config)


@command("monitor", "Loop 2: drift, online scores, KPIs, ROI and prod-lab parity; exit 1 on a blocking alert",
         compile=compile_sql, sections=("monitor", "source"))
def monitor(composed: Composed) -> Outcome:
    cfg = composed.config
    with Store.open(store_path(cfg, composed.project)) as store, \
            lake.reading(store.con, cfg, composed.project.dir) as sources:
        outcome = run_monitor(store, cfg, composed.project.dir, data_sources=sources)
    print_monitor(outcome.result)
    if report_path(cfg):
        target = write_html(output_path(report_path(cfg), composed.project.dir), outcome.result)
        console.print(f"report written to {target}", markup=False, highlight=False)
    return Outcome(0 if outcome.healthy else 1, outcome.result, "monitor_result")
