"""A gate sweep job works on a private store seeded from the main one: an agent dataset version's task rows must
come along with its cases (else the trajectory metrics of the job would see no task at all)."""
from __future__ import annotations

import json

from engine import datasets as ds
from engine.gate.sweep import AGENT_TABLES, EXPORTED, _seed_private_store
from engine.store import Store


def test_a_sweep_job_store_gets_the_agent_tasks_and_exports_them_with_the_steps(tmp_path):
    path = tmp_path / "agent.jsonl"
    path.write_text(json.dumps({"id": "c1", "input": "refund A-1", "agent": {
        "tool_calls": [{"name": "lookup_order", "arguments": [{"path": "$.order_id", "equals": "A-1"}]}],
        "forbidden_tools": ["refund_order"]}}) + "\n", encoding="utf-8")
    main = tmp_path / "main.duckdb"
    with Store.open(main) as store:
        ds.store_version(store, ds.load_file("agents", path, "agent.jsonl"))
    with Store.open(tmp_path / "job.duckdb") as job:
        _seed_private_store(job, main)
        counts = {t: job.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in AGENT_TABLES}
    assert counts == {"agent_cases": 1, "agent_expected_calls": 1, "agent_argument_checks": 1}
    # and a job exports them, with the trajectory steps of its outputs, for the merge into the main store
    assert set(AGENT_TABLES) | {"trajectory_steps"} <= set(EXPORTED)
    assert EXPORTED.index("trajectory_steps") > EXPORTED.index("outputs")
