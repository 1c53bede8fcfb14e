"""A small project whose stored gate decisions have known deltas and known outputs, built through the real CLI.

Twenty questions; the baseline answers q01-q10. Challenger cK answers q01-q(10+K), so its accuracy delta is
K/20 (c0 answers q01-q08: -0.10). c0, c2 and c4 mention an e-mail address in the answers they do not know, which
no rule of the stored policy catches. After the six gates the golden file grows by one case (a new dataset
version) and c5 is gated again.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from tests.conftest import FIXTURE_PROJECT, run_cli

N = 20
BASE_CORRECT = 10
CHALLENGERS = {"c0": -2, "c1": 1, "c2": 2, "c3": 3, "c4": 4, "c5": 5}  # extra cases answered vs the baseline
LEAKERS = {"c0", "c2", "c4"}
EMAIL = "write to help.desk@example.com"

GATE = {"reducer": "all", "rules": {
    "found_improves": {"kind": "improvement", "metric": "found", "min_delta": 0.0},
    "safety_suite": {"kind": "all_pass", "metric": "safety"},
}}
METRICS = {
    "found": {"kind": "contains", "normalizer": "lower_strip"},
    "safety": {"kind": "safety", "packs": {"canary": [
        {"name": "token", "category": "prompt_injection", "pattern": "CANARY-42"}]}},
}
EMAIL_RULE = {"name": "email", "category": "pii",
              "pattern": r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"}


def answers(correct: int, leak: bool) -> dict:
    wrong = f"I don't know, {EMAIL}" if leak else "I don't know"
    return {f"q{i:02d}": (f"answer {i}" if i <= correct else wrong) for i in range(1, N + 1)}


def model_yaml(name: str, correct: int, leak: bool, calls_file: Path) -> str:
    return yaml.safe_dump({"name": name, "adapter": "python", "_target_": "lookup_model.LookupModel",
                           "params": {"answers": answers(correct, leak), "calls_file": str(calls_file)}})


def write_project(dest: Path) -> Path:
    shutil.copytree(FIXTURE_PROJECT, dest, ignore=shutil.ignore_patterns(".flywheel", "__pycache__"))
    calls = dest / "model_calls.jsonl"
    (dest / "data" / "qa.jsonl").write_text("".join(
        json.dumps({"id": f"q{i:02d}", "input": f"question {i}?", "expected": f"answer {i}"}) + "\n"
        for i in range(1, N + 1)))
    conf = dest / "conf"
    (conf / "dataset" / "qa.yaml").write_text("qa: {path: data/qa.jsonl}\n")
    (conf / "metrics" / "wi.yaml").write_text(yaml.safe_dump(METRICS))
    (conf / "gate" / "wi.yaml").write_text(yaml.safe_dump(GATE))
    (conf / "model" / "base.yaml").write_text(model_yaml("base", BASE_CORRECT, False, calls))
    for name, extra in CHALLENGERS.items():
        (conf / "model" / f"{name}.yaml").write_text(model_yaml(name, BASE_CORRECT + extra, name in LEAKERS, calls))
    (conf / "config.yaml").write_text(
        "defaults:\n  - base\n  - override dataset: [qa]\n  - override model: base\n  - override model@baseline: base\n"
        "  - override model@challenger: c1\n  - override metrics: [wi]\n  - override gate: wi\n  - _self_\n")
    return dest


def build_history(dest: Path) -> dict:
    """Gate every challenger against the baseline; then a new dataset version and c5 once more."""
    project = write_project(dest)
    gates = {}
    for name in CHALLENGERS:
        r = run_cli("gate", f"challenger={name}", f"out=gates/{name}.json", cwd=project)
        assert r.code in (0, 1), r
        gates[name] = r.json
    data = project / "data" / "qa.jsonl"
    data.write_text(data.read_text() + json.dumps({"id": "q21", "input": "question 21?", "expected": "answer 21"}) + "\n")
    r = run_cli("gate", "challenger=c5", "out=gates/c5_v2.json", cwd=project)
    assert r.code == 0, r
    gates["c5_v2"] = r.json
    return gates


def copy_project(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest
