"""`flywheel simulate`: realistic production traffic for the bundled support domain, as files to ingest.

    flywheel simulate [model=NAME] [simulate.days=28] [simulate.seed=7] [simulate.out_dir=data/production]
    flywheel ingest path=data/production        # then load it
"""
from __future__ import annotations

import time
from pathlib import Path

from engine.commands.registry import Outcome, command
from engine.config import Composed
from engine.console import console
from engine.progress import progress_bar
from engine.schemas import all_errors, dotted, validator
from engine.simulate import Simulator
from engine.specs import RunSpec
from engine.config_checks import checker


@checker(section="simulate")
def _check_simulate(composed: Composed, add) -> None:
    block = composed.config.get("simulate")
    if isinstance(block, dict):
        for path, message in all_errors(validator("simulate"), block):
            add(dotted(path, "simulate"), message)


@command("simulate", "write realistic production traffic (traces, feedback, events) for the demo domain", sections=("simulate",))
def simulate(composed: Composed) -> Outcome:
    cfg = composed.config
    spec = cfg["simulate"]
    out = Path(spec.get("out_dir") or "data/production").expanduser()
    out = out if out.is_absolute() else composed.project.dir / out
    clock = time.perf_counter()
    days = int(spec["days"])
    show = RunSpec.of(cfg).progress and console.is_terminal
    with progress_bar("simulate: days", total=days, enabled=show) as advance:
        sim = Simulator(spec, cfg["model"], composed.project.dir, on_day=lambda day, counts: advance(1))
        files = sim.run(out)
    c = sim.counts
    counts = {"sessions": c.sessions, "traces": c.traces, "otlp_spans": c.otlp_spans, "feedback": c.feedback,
              "events": c.events, "users": c.users}
    console.print(f"simulated {days} day(s) from {sim.start.isoformat()} (seed {spec['seed']}): "
                  f"{c.traces:,} traces ({c.otlp_spans:,} as OTLP spans), {c.feedback:,} feedback, {c.events:,} events, "
                  f"{c.users:,} users; {sim.model_calls:,} model calls for {len(sim.cache):,} distinct inputs "
                  f"({cfg['model']['name']})", highlight=False)
    console.print(f"files in {out}; load them with `flywheel ingest path={spec.get('out_dir')}`", highlight=False)
    result = {"command": "simulate", "seed": int(spec["seed"]), "days": days, "start_date": sim.start.isoformat(),
              "files": files, "counts": counts,
              "model": {"name": cfg["model"]["name"], "fingerprint": sim.model_fingerprint,
                        "distinct_inputs": len(sim.cache), "model_calls": sim.model_calls},
              "scenario": {"drift": spec.get("drift"), "failure": spec.get("failure")},
              "seconds": round(time.perf_counter() - clock, 3)}
    return Outcome(0, result, "simulate_result")
