"""Config-time checks of metric values that JSON Schema cannot express: user SQL, RE2 patterns, rubrics.

Each problem names its key path (metrics.<name>.<key>), so a bad pattern is reported by `flywheel evaluate`
before any model is called, together with every other config problem.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

from engine.config import Composed
from engine.agents.cases import RE2_CHECK
from engine.config_checks import checker
from engine.executor import execute


def _patterns(spec: dict) -> Iterator[tuple[str, str]]:
    """(key path under the metric, RE2 pattern) for every pattern a metric declares."""
    from engine.metrics.safety import rule_pattern

    kind = spec.get("kind")
    if kind == "regex_match" and isinstance(spec.get("pattern"), str):
        yield "pattern", spec["pattern"]
    for key in ("patterns", "refusal_patterns"):
        if kind in ("required_refusal", "lexical_groundedness") and isinstance(spec.get(key), list):
            for i, p in enumerate(spec[key]):
                if isinstance(p, str):
                    yield f"{key}[{i}]", p
    if kind == "safety" and isinstance(spec.get("packs"), dict):
        for pack, rules in spec["packs"].items():
            for i, rule in enumerate(rules if isinstance(rules, list) else []):
                if not isinstance(rule, dict):
                    continue
                if isinstance(rule.get("pattern"), str) or isinstance(rule.get("terms"), list):
                    yield f"packs.{pack}[{i}].{'pattern' if 'pattern' in rule else 'terms'}", rule_pattern(rule)
                if isinstance(rule.get("allow"), str):
                    yield f"packs.{pack}[{i}].allow", rule["allow"]


def re2_problem(con, pattern: str, spark: bool = False) -> str | None:
    """Why `pattern` cannot be a metric's regex: RE2 rejects it, or (`spark`: the command runs on Spark) Spark's
    Java engine would read it differently or could backtrack exponentially on it (engine/dialects/regex.py). On
    DuckDB alone RE2 runs it, in linear time, so those are not refused there."""
    import duckdb

    from engine.dialects import regex

    try:
        execute(con, RE2_CHECK, {"pattern": pattern})
    except duckdb.Error as e:
        return f"not a valid RE2 pattern {pattern!r}: {str(e).splitlines()[0]}"
    refused = regex.problems(pattern) if spark else []
    if refused:
        return f"pattern {pattern!r} would not mean the same on Spark: {refused[0]}"
    return None


def sql_regex_patterns(tree) -> Iterator[tuple[str | None, str]]:
    """(pattern or None when it is not a string literal, function name) of every regex call in user SQL."""
    from sqlglot import exp

    names = {"regexp_matches", "regexp_full_match", "regexp_replace", "regexp_extract", "regexp_extract_all",
             "regexp_split_to_array", "string_split_regex", "str_split_regex"}
    kinds = {exp.RegexpLike: "regexp_matches", exp.RegexpReplace: "regexp_replace",
             exp.RegexpExtract: "regexp_extract", exp.RegexpExtractAll: "regexp_extract_all",
             exp.RegexpSplit: "regexp_split_to_array", exp.RegexpFullMatch: "regexp_full_match"}
    for node in tree.walk():
        if type(node) in kinds:
            pattern, name = node.expression, kinds[type(node)]
        elif isinstance(node, exp.Anonymous) and node.name.lower() in names and len(node.expressions) > 1:
            pattern, name = node.expressions[1], node.name.lower()
        else:
            continue
        yield (pattern.this if isinstance(pattern, exp.Literal) and pattern.is_string else None), name


@checker
def check_metric_values(composed: Composed, add: Callable[[str, str], None]) -> None:
    import duckdb

    from engine.metrics.custom import bind_problems, parse_user_expression
    from engine.metrics.judge import rubric_problems

    metrics = composed.config.get("metrics")
    if not isinstance(metrics, dict):
        return
    spark = (composed.config.get("backend") or {}).get("name") == "spark"
    con = None
    try:
        for name, spec in metrics.items():
            if not isinstance(spec, dict):
                continue
            where = f"metrics.{name}"
            if spec.get("kind") == "sql" and isinstance(spec.get("expression"), str):
                tree, problems = parse_user_expression(spec["expression"])
                for problem in problems or bind_problems(tree):
                    add(f"{where}.expression", problem)
                for pattern, fn in sql_regex_patterns(tree) if tree is not None and not problems and spark else ():
                    con = con or duckdb.connect(":memory:")
                    problem = (f"{fn}(): the pattern must be a string literal on Spark (checked to mean the same "
                               "on DuckDB and Spark)") if pattern is None else re2_problem(con, pattern, spark)
                    if problem:
                        add(f"{where}.expression", problem)
            if spec.get("kind") == "llm_judge" and isinstance(spec.get("rubric"), str):
                for problem in rubric_problems(spec["rubric"]):
                    add(f"{where}.rubric", problem)
            for path, pattern in _patterns(spec):
                con = con or duckdb.connect(":memory:")
                problem = re2_problem(con, pattern, spark)
                if problem:
                    add(f"{where}.{path}", problem)
    finally:
        if con is not None:
            con.close()
