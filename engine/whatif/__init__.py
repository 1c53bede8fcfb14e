"""Policy what-if: replay the stored history under edited gate and monitor policies, with no model calls.

* `policy.py`   which policy a replay judges under: the project's config now, or as it is in a git revision
* `history.py`  the stored gate decisions, their runs and whether their dataset versions are still stored
* `rescore.py`  scores under a metric definition the runs were not scored with, from stored outputs only
* `replay.py`   the gate's own rule queries, compiled once per policy, run per stored decision
  (`prepared.py`: a statement rendered once, run with different bound values)
* `compare.py`  what changed between two outcomes of one decision: verdict, rule outcomes, margins
* `gate.py`     `flywheel whatif gate`: the decisions' replay as a plain result
* `monitor.py`  `flywheel whatif monitor`: stored drift statistics, KPIs and parity under edited bounds
* `report.py`   terminal and Markdown renderings; `html.py` the HTML pages (engine/report/html.py helpers)

`flywheel rescore` (engine/commands/rescore.py) is `rescore.py` applied to one stored run, kept as a new run.
"""
