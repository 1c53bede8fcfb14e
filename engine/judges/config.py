"""Config check of the `judges` section: its schema, and the metrics it names."""
from __future__ import annotations

from datetime import datetime

from engine.errors import did_you_mean
from engine.schemas import all_errors, dotted, validator
from engine.config_checks import checker


@checker(section="judges")
def check_judges(composed, add) -> None:
    judges = composed.config.get("judges")
    if judges is None:
        return
    for path, message in all_errors(validator("judges"), judges):
        add(dotted(path, "judges"), message)
    metrics = composed.config.get("metrics") or {}
    llm_judges = sorted(n for n, s in metrics.items() if isinstance(s, dict) and s.get("kind") == "llm_judge")
    traces = judges.get("traces") if isinstance(judges, dict) else None
    for bound in ("start", "end"):
        value = (traces or {}).get(bound) if isinstance(traces, dict) else None
        if value is not None:
            try:
                datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                add(f"judges.traces.{bound}", f"{value!r} is not an ISO date or date-time")
    for i, name in enumerate((judges.get("metrics") or []) if isinstance(judges, dict) else []):
        if name not in llm_judges:
            add(f"judges.metrics[{i}]", f"'{name}' is not a selected llm_judge metric; {did_you_mean(str(name), llm_judges)}"
                                        " (select the suite that defines it, e.g. metrics=[support,judge])")
