"""`flywheel bridge`: production logs into training data; production failures into a new golden dataset version."""
from __future__ import annotations

from rich.table import Table

from engine.bridge.run import compile_plan, run_bridge
from engine.commands.registry import Outcome, command
from engine.config import Composed
from engine.sql import Plan
from engine import lake
from engine.console import console
from engine.evaluation import store_path
from engine.report.layout import fit
from engine.store import Store


def compile_sql(composed: Composed) -> Plan:
    return compile_plan(composed.config)


@command("bridge", "the Bridge: sampled production traces into training data, failures into golden cases",
         compile=compile_sql, sections=("bridge", "monitor", "source"))
def bridge(composed: Composed) -> Outcome:
    cfg = composed.config
    with Store.open(store_path(cfg, composed.project)) as store, \
            lake.reading(store.con, cfg, composed.project.dir) as sources:
        result = run_bridge(store, cfg, composed.project.dir, cfg.get("import_labels"))
    result["data_sources"] = sources
    print_bridge(result)
    return Outcome(0, result, "bridge_result")


def print_bridge(result: dict) -> None:
    if result["policies"]:
        t = Table(title="Sampling policies", title_justify="left")
        t.add_column("policy")
        t.add_column("selected", justify="right")
        for name, p in result["policies"].items():
            t.add_row(name, str(p["selected"]))
        console.print(fit(t))
    training = result.get("training")
    if training:
        console.print(f"training export: {training['records']} records ({training['format']}, {training['layout']} "
                      f"layout) -> {training['path']}; {training['excluded_golden_matches']} selected traces were "
                      f"golden cases and stayed out (leakage guard)")
    golden = result.get("golden")
    if golden:
        if "imported" in golden:
            console.print(f"label import: {golden['imported']} case(s) imported, {golden['rejected']} rejected, "
                          f"{golden['still_unlabelled']} still unlabelled")
        else:
            console.print(f"golden: {golden['candidates']} failure(s) selected; {golden['added']} with a correction "
                          f"added as cases")
            if golden["label_queue"]:
                console.print(f"label queue: {golden['label_queue']['records']} failure(s) without a correction -> "
                              f"{golden['label_queue']['path']} (fill in `expected`, then "
                              f"`flywheel bridge import_labels=PATH`)")
        if golden["version"] != golden["parent_version"]:
            console.print(f"[bold magenta]{golden['dataset']}[/]: new version {golden['version']} "
                          f"(parent {golden['parent_version']}) -> {golden['path']}; the next gate includes it")
