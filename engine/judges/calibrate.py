"""`flywheel judges calibrate`: grade every labelled answer with each llm_judge metric's judge (cached) and measure
how well the judge agrees with the people, overall and per capability tag; store the result as a time series.

A labelled answer may carry several labels (several people): its human verdict is their majority, a tie is left
out of the verdict statistics (and counted), its human score is their mean. Per slice (`*` = every labelled
answer, else one tag): n, accuracy, Cohen's kappa with a seeded bootstrap interval, the confusion matrix, and
Spearman's rho between human scores and judge scores where people gave scores.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from engine.config import Project
from engine.errors import UserError
from engine.judges.agreement import Confusion, accuracy, cohen_kappa, kappa_interval, spearman
from engine.judges.judging import Item, judge_items
from engine.judges.spec import JudgesSpec
from engine.provenance import canonical_json, content_hash, git_commit, utc_now
from engine.executor import execute
from engine.sql import statement
from engine.specs import RunSpec
from engine.store import Store

ALL = "*"
DISAGREEMENTS_LISTED = 50

LABELLED = statement("labelled", """
WITH per_item AS (
    SELECT item_kind, dataset_version, item_id, output_hash, any_value(output_text) AS output_text,
           count(*) FILTER (WHERE verdict = 'pass') AS n_pass, count(*) FILTER (WHERE verdict = 'fail') AS n_fail,
           avg(score) AS human_score, count(*) AS n_labels, list(DISTINCT labeller ORDER BY labeller) AS labellers
    FROM judge_labels WHERE metric = $metric
    GROUP BY item_kind, dataset_version, item_id, output_hash)
SELECT p.*, CASE WHEN p.item_kind = 'case' THEN c.input_text ELSE t.input END AS input_text,
       coalesce(c.expected_answers, []::VARCHAR[]) AS expected_answers,
       CASE WHEN p.item_kind = 'case' THEN c.context
            ELSE coalesce(TRY_CAST(json_extract(t.attributes, '$.context') AS VARCHAR[]), []::VARCHAR[]) END AS context,
       CASE WHEN p.item_kind = 'case' THEN c.tags ELSE list_filter([t.topic], lambda x: x IS NOT NULL) END AS tags
FROM per_item AS p
LEFT JOIN cases AS c ON p.item_kind = 'case' AND c.dataset_version = p.dataset_version AND c.case_id = p.item_id
LEFT JOIN (SELECT trace_id, any_value(input) AS input, any_value(topic) AS topic, any_value(attributes) AS attributes
           FROM traces GROUP BY trace_id) AS t ON p.item_kind = 'trace' AND t.trace_id = p.item_id
ORDER BY p.item_kind, p.dataset_version, p.item_id, p.output_hash
""", "each labelled answer of the metric: its labels and the case or trace it is about")


@dataclass(frozen=True)
class Settings:
    resamples: int
    seed: int
    level: float
    batch_size: int
    show_progress: bool

    @classmethod
    def of(cls, cfg: dict) -> "Settings":
        boot = JudgesSpec.of(cfg).bootstrap
        run = RunSpec.of(cfg)
        return cls(boot.resamples, boot.seed, boot.level, run.batch_size, run.progress)


def judge_metrics(cfg: dict) -> dict[str, dict]:
    """The llm_judge metrics to calibrate: `judges.metrics` when given, else every selected one."""
    selected = {n: s for n, s in (cfg.get("metrics") or {}).items() if s.get("kind") == "llm_judge"}
    wanted = JudgesSpec.of(cfg).metrics
    if not wanted:
        return selected
    missing = [m for m in wanted if m not in selected]
    if missing:
        raise UserError(f"judges.metrics: {', '.join(missing)} is not a selected llm_judge metric (selected: "
                        f"{', '.join(selected) or 'none'}; select the suite that defines it, e.g. metrics=[support,judge])")
    return {m: selected[m] for m in wanted}


def _human_verdict(row: dict) -> bool | None:
    if row["n_pass"] == row["n_fail"]:
        return None  # no verdict given, or a tie between people
    return row["n_pass"] > row["n_fail"]


def slice_stats(name: str, rows: list[dict], settings: Settings) -> dict:
    """Agreement of one slice: rows carry `human` (bool|None), `human_score`, `judge_passed`, `judge_value`."""
    with_verdict = [r for r in rows if r["human"] is not None]
    confusion = Confusion.of([r["human"] for r in with_verdict], [r["judge_passed"] for r in with_verdict])
    interval = kappa_interval(confusion, settings.resamples, settings.seed, settings.level)
    scored = [r for r in rows if r["human_score"] is not None]
    return {"slice": name, "n_labels": confusion.n, "n_scored": len(scored),
            "ties": sum(1 for r in rows if r["human"] is None and r["n_pass"] > 0),
            "accuracy": accuracy(confusion), "kappa": cohen_kappa(confusion),
            "kappa_ci": {"low": interval.low, "high": interval.high, "level": interval.level,
                         "resamples": interval.resamples, "seed": interval.seed, "undefined": interval.undefined},
            "confusion": confusion.to_json(),
            "spearman": spearman([r["human_score"] for r in scored], [r["judge_value"] for r in scored]),
            "human_pass_rate": (sum(1 for r in with_verdict if r["human"]) / len(with_verdict)) if with_verdict else None,
            "judge_pass_rate": (sum(1 for r in with_verdict if r["judge_passed"]) / len(with_verdict))
            if with_verdict else None}


def calibrate_metric(store: Store, metric: str, spec: dict, project: Project, run_id: str,
                     settings: Settings) -> dict | None:
    """One judge's calibration (None when the metric has no labels)."""
    rows = execute(store.con, LABELLED, {"metric": metric})
    if not rows:
        return None
    missing = [r for r in rows if r["input_text"] is None]
    rows = [r for r in rows if r["input_text"] is not None]
    if not rows:  # every labelled case or trace is gone from the store: nothing to measure, never a calibration
        return None
    items = [Item(r["item_kind"], f"{r['dataset_version']}/{r['item_id']}" if r["item_kind"] == "case" else r["item_id"],
                  r["output_hash"], r["input_text"], r["output_text"], tuple(r["expected_answers"] or ()),
                  tuple(r["context"] or ())) for r in rows]
    fp, calls, verdicts = judge_items(store, metric, spec, items, project.dir, run_id, settings.batch_size,
                                      settings.show_progress)
    for r, v in zip(rows, verdicts):
        r.update(human=_human_verdict(r), judge_passed=v["passed"], judge_value=v["value"], judge_detail=v["detail"])
    tags = sorted({t for r in rows for t in (r["tags"] or [])})
    slices = [slice_stats(ALL, rows, settings)] + [
        slice_stats(tag, [r for r in rows if tag in (r["tags"] or [])], settings) for tag in tags]
    disagreements = [{"item_kind": r["item_kind"], "item_id": r["item_id"], "dataset_version": r["dataset_version"],
                      "tags": list(r["tags"] or []), "input": r["input_text"], "output": r["output_text"],
                      "human": "pass" if r["human"] else "fail", "labellers": list(r["labellers"]),
                      "judge": "pass" if r["judge_passed"] else "fail", "judge_score": r["judge_value"],
                      "judge_detail": r["judge_detail"]}
                     for r in rows if r["human"] is not None and r["human"] != r["judge_passed"]]
    return {"metric": metric, "judge": {"name": spec["judge"]["name"], **fp.to_json()},
            "calls": {"needed": calls.needed, "cached": calls.cached, "called": calls.called, "errors": calls.errors},
            "answers": len(rows), "labels": sum(r["n_labels"] for r in rows), "missing_items": len(missing),
            "judge_unparseable": sum(1 for r in rows if not str(r["judge_detail"] or "").startswith("judge: ")),
            "slices": slices, "disagreements": disagreements[:DISAGREEMENTS_LISTED],
            "n_disagreements": len(disagreements)}


CALIBRATION_RUN = statement("calibration:run", "INSERT INTO judge_calibration_runs VALUES ($calibration_id, $at, "
                            "$config_hash, $git_commit, $result)", "the calibration, its whole result")
CALIBRATION_ROW = statement("calibration:slice", "INSERT INTO judge_calibrations VALUES ($calibration_id, $metric, "
                            "$fingerprint, $model_fingerprint, $rubric_hash, $params, $slice, $n_labels, $n_scored, "
                            "$accuracy, $kappa, $kappa_low, $kappa_high, $spearman, $confusion, $at)",
                            "each judge's agreement per slice: the time series")
HISTORY = statement("calibration:history", """
    SELECT calibration_id, calibrated_at, metric, judge_fingerprint AS fingerprint,
           judge_model_fingerprint AS model_fingerprint, rubric_hash, slice, n_labels, accuracy, kappa, kappa_low,
           kappa_high, spearman
    FROM judge_calibrations
    WHERE ($metric IS NULL OR metric = $metric)
      AND calibration_id IN (SELECT calibration_id FROM judge_calibration_runs ORDER BY calibrated_at DESC LIMIT $limit)
    ORDER BY calibrated_at DESC, metric, slice = '*' DESC, slice""", "the stored calibrations, newest first")
LABEL_COUNTS = statement("labels:counts", "SELECT metric, count(*) AS n FROM judge_labels GROUP BY 1",
                         "labels stored per metric")


def _store(store: Store, result: dict) -> None:
    at = result["calibrated_at"]
    with store.transaction() as con:
        execute(con, CALIBRATION_RUN, {"calibration_id": result["calibration_id"], "at": at,
                                       "config_hash": result["config_hash"], "git_commit": result["git_commit"],
                                       "result": canonical_json(result)})
        for judge in result["judges"]:
            j = judge["judge"]
            for s in judge["slices"]:
                execute(con, CALIBRATION_ROW, {
                    "calibration_id": result["calibration_id"], "metric": judge["metric"],
                    "fingerprint": j["fingerprint"], "model_fingerprint": j["model_fingerprint"],
                    "rubric_hash": j["rubric_hash"], "params": canonical_json(j["params"]), "slice": s["slice"],
                    "n_labels": s["n_labels"], "n_scored": s["n_scored"], "accuracy": s["accuracy"],
                    "kappa": s["kappa"], "kappa_low": s["kappa_ci"]["low"], "kappa_high": s["kappa_ci"]["high"],
                    "spearman": s["spearman"], "confusion": canonical_json(s["confusion"]), "at": at})


def history(store: Store, metric: str | None = None, limit: int = 20) -> list[dict]:
    """The calibration time series (newest first): one row per calibration, metric and slice."""
    return [{**r, "calibrated_at": r["calibrated_at"].isoformat()}
            for r in execute(store.con, HISTORY, {"metric": metric, "limit": limit})]


def run_calibration(store: Store, cfg: dict, project: Project, imports: list[dict]) -> dict:
    metrics = judge_metrics(cfg)
    if not metrics:
        raise UserError("no llm_judge metric is selected: select the suite that defines your judge, "
                        "e.g. `flywheel judges calibrate metrics=[support,judge]`")
    settings = Settings.of(cfg)
    calibrated_at = utc_now()
    calibration_id = f"calibrate-{calibrated_at.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    judges, unlabelled = [], []
    for name, spec in metrics.items():
        judged = calibrate_metric(store, name, spec, project, calibration_id, settings)
        if judged is None:
            unlabelled.append(name)
        else:
            judges.append(judged)
    stored = {r["metric"]: r["n"] for r in execute(store.con, LABEL_COUNTS, {})}
    if not judges:
        raise UserError(f"no labels for {', '.join(unlabelled)}: import some first "
                        f"(`flywheel judges import FILE`, or judges.labels=[FILE]); labels stored for: "
                        f"{', '.join(f'{m} ({n})' for m, n in sorted(stored.items())) or 'nothing'}")
    result = {"command": "judges_calibrate", "calibration_id": calibration_id,
              "calibrated_at": calibrated_at.isoformat(), "git_commit": git_commit(project.dir),
              "config_hash": content_hash({"judges": cfg.get("judges"), "metrics": metrics}),
              "bootstrap": {"resamples": settings.resamples, "seed": settings.seed, "level": settings.level},
              "imports": imports, "judges": judges, "unlabelled_metrics": unlabelled,
              "labels_for_other_metrics": {m: n for m, n in sorted(stored.items()) if m not in metrics},
              "store": str(store.path)}
    _store(store, result)
    result["history"] = history(store, None)
    return result
