"""The stored gate decisions a replay selects, the runs they compared, and whether what they were decided on
(runs, dataset versions and their cases) is still in the store."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from engine.errors import UserError
from engine.executor import execute
from engine.provenance import content_hash
from engine.sql import statement

DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class Selection:
    since: datetime | None = None
    limit: int | None = DEFAULT_LIMIT  # None: every stored decision
    challenger: str | None = None  # the challenger's model name

    def to_json(self) -> dict:
        return {"since": self.since.isoformat() if self.since else None, "limit": self.limit,
                "challenger": self.challenger}


def parse_since(text: str) -> datetime:
    """An ISO date (`2025-03-01`, midnight UTC) or date-time (UTC unless it names an offset)."""
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"since={text!r}: expected an ISO date or date-time, e.g. since=2025-03-01 or "
                        f"since=2025-03-01T12:00:00") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def parse_limit(text: str) -> int | None:
    if text.lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UserError(f"limit={text!r}: expected a positive number of decisions, or limit=all")
    return value


@dataclass
class StoredRun:
    run_id: str
    model_name: str
    fingerprint: str
    status: str
    dataset_versions: dict[str, str]
    metric_specs: dict[str, dict]  # the metric definitions it was scored with (from its stored config)
    started_at: datetime
    _hashes: dict = field(default_factory=dict, repr=False)

    def metric_hash(self, metric: str) -> str | None:
        if metric not in self._hashes:
            spec = self.metric_specs.get(metric)
            self._hashes[metric] = content_hash(spec) if spec is not None else None
        return self._hashes[metric]


@dataclass
class StoredDecision:
    decision_id: str
    decided_at: datetime
    baseline_run: str
    challenger_run: str
    baseline_model: str
    challenger_model: str
    verdict: str
    gate_config: dict
    result: dict = field(repr=False)

    @property
    def rules(self) -> list[dict]:
        return self.result.get("rules") or []


DECISIONS = statement("decisions", """
SELECT decision_id, decided_at, baseline_run, challenger_run, baseline_model, challenger_model, verdict,
       gate_config, result
FROM gate_decisions
WHERE ($since IS NULL OR decided_at >= $since) AND ($challenger IS NULL OR challenger_model = $challenger)
ORDER BY decided_at DESC, decision_id DESC
LIMIT $limit""", "the latest stored gate decisions matching since=, challenger=, limit= (NULL: no bound)")


def select_decisions(con, selection: Selection) -> list[StoredDecision]:
    """The latest `limit` decisions matching the selection, oldest first."""
    rows = execute(con, DECISIONS, {"since": selection.since, "challenger": selection.challenger,
                                    "limit": selection.limit})
    out = [StoredDecision(r["decision_id"], r["decided_at"], r["baseline_run"], r["challenger_run"],
                          r["baseline_model"], r["challenger_model"], r["verdict"], json.loads(r["gate_config"]),
                          json.loads(r["result"])) for r in rows]
    return out[::-1]


RUNS = statement("runs", """
SELECT r.run_id, r.model_name, r.model_fingerprint, r.status, r.dataset_versions, r.config, r.started_at
FROM runs AS r WHERE list_contains($runs, r.run_id)""", "the runs those decisions compared")


def load_runs(con, run_ids: set[str]) -> dict[str, StoredRun]:
    out = {}
    for r in execute(con, RUNS, {"runs": sorted(run_ids)}):
        metrics = (json.loads(r["config"]) or {}).get("metrics") or {}
        out[r["run_id"]] = StoredRun(r["run_id"], r["model_name"], r["model_fingerprint"], r["status"],
                                     json.loads(r["dataset_versions"]), metrics, r["started_at"])
    return out


@dataclass(frozen=True)
class StoredVersion:
    name: str
    n_cases: int  # as recorded when the version was stored
    n_stored: int  # cases of it still in the store


VERSIONS = statement("versions", """
SELECT v.dataset_version, v.name, v.n_cases, count(c.case_id) AS n_stored
FROM dataset_versions AS v LEFT JOIN cases AS c ON c.dataset_version = v.dataset_version
GROUP BY ALL""", "dataset versions and how many of their cases are still stored")
HISTORY = (DECISIONS, RUNS, VERSIONS)


def stored_versions(con) -> dict[str, StoredVersion]:
    return {r["dataset_version"]: StoredVersion(r["name"], r["n_cases"], r["n_stored"])
            for r in execute(con, VERSIONS, {})}


def refusal(decision: StoredDecision, runs: dict[str, StoredRun], versions: dict[str, StoredVersion]) -> str | None:
    """Why this decision cannot be replayed faithfully (fail closed), or None."""
    for side, run_id in (("baseline", decision.baseline_run), ("challenger", decision.challenger_run)):
        run = runs.get(run_id)
        if run is None:
            return f"the {side} run {run_id} is no longer stored"
        if run.status != "ok":
            return f"the {side} run {run_id} did not finish (status {run.status})"
    wanted: dict[str, str] = dict(decision.result.get("dataset_versions") or {})
    for run_id in (decision.baseline_run, decision.challenger_run):
        wanted.update(runs[run_id].dataset_versions)
    problems = []
    for name, version in sorted(wanted.items()):
        stored = versions.get(version)
        if stored is None:
            problems.append(f"dataset '{name}' version {version} is no longer stored")
        elif stored.n_stored < stored.n_cases:
            problems.append(f"dataset '{name}' version {version}: only {stored.n_stored} of its {stored.n_cases} "
                            f"cases are still stored")
    return "; ".join(problems) or None


def dataset_versions_of(decision: StoredDecision, runs: dict[str, StoredRun]) -> dict[str, str]:
    """The dataset versions the decision's runs were scored on (the challenger's; the baseline's where it
    names a dataset the challenger does not)."""
    versions = dict(runs[decision.baseline_run].dataset_versions)
    versions.update(runs[decision.challenger_run].dataset_versions)
    return versions
