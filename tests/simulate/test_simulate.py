"""`flywheel simulate`: deterministic for a seed, drift from the declared day, the failure mode in feedback."""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from engine.paths import bundled_conf_dir
from engine.simulate import Simulator

MODEL = yaml.safe_load((bundled_conf_dir() / "model" / "keyword_baseline.yaml").read_text())


def scenario(**over) -> dict:
    spec = yaml.safe_load((bundled_conf_dir() / "simulate" / "default.yaml").read_text())
    spec.update(days=10, sessions_per_day=60, users=200, otlp_fraction=0.1,
                drift={**spec["drift"], "start_day": 5}, failure={**spec["failure"], "start_day": 6},
                feedback={**spec["feedback"], "thumbs_rate": 0.6})
    spec.update(over)
    return spec


def run(tmp: Path, **over) -> tuple[Simulator, dict[str, Path]]:
    sim = Simulator(scenario(**over), MODEL, tmp)
    files = sim.run(tmp / "out")
    return sim, {k: Path(v) for k, v in files.items()}


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    return run(tmp_path_factory.mktemp("sim"))


def test_same_seed_same_files_other_seed_other_files(simulated, tmp_path):
    sim, files = simulated
    again_sim, again = run(tmp_path / "a")
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert {k: digest(p) for k, p in files.items()} == {k: digest(p) for k, p in again.items()}
    _, other = run(tmp_path / "b", seed=8)
    assert digest(other["traces"]) != digest(files["traces"])
    # the model is called once per distinct input, not per trace
    assert sim.model_calls == len(sim.cache) < sim.counts.traces


def test_traffic_is_realistic(simulated):
    sim, files = simulated
    traces = read(files["traces"])
    assert len(traces) + sim.counts.otlp_spans == sim.counts.traces > 1000
    assert sim.counts.otlp_spans > 0 and files["traces_otlp"].stat().st_size > 0
    assert {t["attributes"]["topic"] for t in traces} >= {"billing", "account", "integrations", "scheduling"}
    assert all(t["latency_ms"] > 0 and t["prompt_tokens"] > 0 and t["cost"] > 0 for t in traces if t["output"])
    kinds = Counter(f["kind"] for f in read(files["feedback"]))
    assert set(kinds) >= {"thumbs", "rating", "correction", "behavior"}
    types = Counter(e["type"] for e in read(files["events"]))
    assert set(types) >= {"signup", "conversion", "revenue"}
    new_topics = {t["attributes"]["intent"] for t in traces} & {"offline_mode", "gift_cards", "dark_mode"}
    assert new_topics  # questions the golden set does not cover


def test_drift_starts_on_the_declared_day(simulated):
    _, files = simulated
    traces = read(files["traces"])
    day = lambda t: int(t["timestamp"][8:10]) - 1  # noqa: E731  (the scenario starts on the 1st)
    before = [t for t in traces if day(t) < 5]
    after = [t for t in traces if day(t) >= 5]
    share = lambda ts, topic: sum(t["attributes"]["topic"] == topic for t in ts) / len(ts)  # noqa: E731
    assert share(after, "integrations") > 1.4 * share(before, "integrations")  # weight x3, then renormalised
    assert not any(t["attributes"].get("feature") for t in before)
    assert share(after, "product") > 0.05  # the new feature's questions
    mean_len = lambda ts: sum(len(t["input"]) for t in ts) / len(ts)  # noqa: E731
    assert mean_len(after) > mean_len(before) + 40


def test_failure_mode_shows_in_feedback_with_corrections(simulated):
    _, files = simulated
    traces = {t["trace_id"]: t for t in read(files["traces"])}
    feedback = [f for f in read(files["feedback"]) if f["trace_id"] in traces]

    def down_rate(billing: bool, failing: bool) -> float:
        picked = [f for f in feedback if f["kind"] == "thumbs"
                  and (traces[f["trace_id"]]["attributes"]["topic"] == "billing") == billing
                  and (int(traces[f["trace_id"]]["timestamp"][8:10]) - 1 >= 6) == failing]
        return sum(f["thumbs"] == "down" for f in picked) / len(picked)

    assert down_rate(True, True) > 0.85
    assert down_rate(True, True) > down_rate(True, False) + 0.3
    wrong = scenario()["failure"]["wrong_answer"]
    failing = [t for t in traces.values() if t["attributes"]["topic"] == "billing" and t["timestamp"] >= "2025-03-07"]
    assert failing and all(t["output"] in (wrong, None) for t in failing)
    golden = {json.loads(x)["expected"] for x in open(Path(__file__).resolve().parents[2] / "datasets" / "support"
                                                      / "golden_qa.jsonl", encoding="utf-8")}
    corrections = [f for f in feedback if f["kind"] == "correction" and f["trace_id"] in {t["trace_id"] for t in failing}]
    assert corrections and all(c["correction"] in golden for c in corrections)


def test_cli_simulate_then_ingest_everything(project, cli):
    r = cli("simulate", "model=keyword_baseline", "simulate.days=3", "simulate.sessions_per_day=20",
            "simulate.out_dir=prod", "out=sim.json", cwd=project)
    assert r.code == 0, r
    counts = r.json["counts"]
    assert r.json["model"]["model_calls"] == r.json["model"]["distinct_inputs"]
    ing = cli("ingest", "path=prod", "out=ing.json", cwd=project)
    assert ing.code == 0, ing
    t = ing.json["totals"]
    assert t["quarantined"] == 0
    assert ing.json["by_kind"]["traces"]["inserted"] == counts["traces"]
    assert ing.json["by_kind"]["events"]["inserted"] == counts["events"]
    assert ing.json["by_kind"]["feedback"]["inserted"] == counts["feedback"]
