"""Classic ML: classification over labels and regression over numbers, written as model outputs.

Per-case values go to `scores` like any metric (accuracy is the mean of `classification`, MAE the mean of an
absolute `regression` error). What is not a per-case value -- per-class precision/recall/F1, macro-F1, the
confusion matrix, RMSE -- is a dataset-level report: a compiled statement run after scoring, whose rows land
in the evaluate result under `classification` / `regression`.
"""
from __future__ import annotations

from sqlglot import exp

from engine.metrics.accuracy import NORMALIZERS, first_number, normalize
from engine.metrics.base import MetricSQL, col, metric_kind, params
from engine.sql import Statement, literal, parse, parse_expression

NONE_LABEL = "(none)"  # the predicted label of an errored or empty output; the expected label of a case without one


def _labels(spec: dict) -> tuple[exp.Expression, exp.Expression]:
    """(predicted, expected) label expressions over scoring_input; NULL when there is none."""
    normalizer = params(spec)["normalizer"]
    predicted = exp.func("nullif", normalize(col("output_text"), normalizer), literal(""))
    expected = exp.func("nullif", normalize(parse_expression("expected_answers[1]"), normalizer), literal(""))
    return predicted, expected


_CLASSIFICATION_REPORT = """
WITH labelled AS (SELECT 1),
classes AS (SELECT DISTINCT dataset, unnest(__classes__) AS label FROM labelled WHERE expected <> '(none)'),
class_counts AS (
  SELECT c.dataset, c.label,
         count(*) FILTER (WHERE l.expected = c.label) AS support,
         count(*) FILTER (WHERE l.expected = c.label AND l.predicted = c.label) AS tp,
         count(*) FILTER (WHERE l.expected <> c.label AND l.predicted = c.label) AS fp,
         count(*) FILTER (WHERE l.expected = c.label AND l.predicted <> c.label) AS fn
  FROM classes AS c JOIN labelled AS l ON l.dataset = c.dataset
  GROUP BY c.dataset, c.label),
rated AS (
  SELECT *, coalesce(tp / NULLIF(tp + fp, 0), 0.0) AS p, coalesce(tp / NULLIF(tp + fn, 0), 0.0) AS r
  FROM class_counts),
class_stats AS (
  SELECT dataset,
         avg(CASE WHEN p + r = 0 THEN 0.0 ELSE 2 * p * r / (p + r) END) AS macro_f1,
         list({'label': label, 'support': support, 'tp': tp, 'fp': fp, 'fn': fn, 'precision': p, 'recall': r,
               'f1': CASE WHEN p + r = 0 THEN 0.0 ELSE 2 * p * r / (p + r) END} ORDER BY label) AS per_class
  FROM rated GROUP BY dataset),
cells AS (SELECT dataset, expected, predicted, count(*) AS n FROM labelled GROUP BY dataset, expected, predicted),
matrix AS (
  SELECT dataset, list({'expected': expected, 'predicted': predicted, 'n': n} ORDER BY expected, predicted)
         AS confusion
  FROM cells GROUP BY dataset),
totals AS (
  SELECT dataset, count(*) AS n, avg(CASE WHEN predicted = expected THEN 1.0 ELSE 0.0 END) AS accuracy
  FROM labelled GROUP BY dataset)
SELECT t.dataset, t.n, t.accuracy, s.macro_f1, s.per_class, m.confusion
FROM totals AS t LEFT JOIN class_stats AS s ON s.dataset = t.dataset LEFT JOIN matrix AS m ON m.dataset = t.dataset
ORDER BY t.dataset
"""


def _source(name: str, spec: dict) -> exp.Subquery:
    """The rows the metric scores (its datasets and tag scope), for its dataset-level report."""
    from engine.compiler import in_scope, scoring_source  # the compiler imports the metric package: import late
    return in_scope(name, spec, scoring_source(spec))


def _with_rows(template: str, rows: exp.Select, **subs: exp.Expression) -> exp.Expression:
    """Parse a report template and put `rows` in place of its first CTE (`labelled`/`errors`)."""
    tree = parse_expression(template, **subs) if subs else parse(template)
    tree.find(exp.CTE).set("this", rows)
    return tree


def classification_report(name: str, spec: dict) -> Statement:
    """Per dataset: n, accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix.

    Classes are the declared `labels` (normalised) or else the expected labels seen in the dataset; a
    prediction outside them is wrong for its case's class but is no class of its own (sklearn's `labels=`)."""
    predicted, expected = _labels(spec)
    none = literal(NONE_LABEL)
    rows = exp.select(col("dataset"), exp.alias_(exp.func("coalesce", predicted, none), "predicted"),
                      exp.alias_(exp.func("coalesce", expected, none), "expected")).from_(_source(name, spec))
    if spec.get("labels"):
        classes = exp.func("list_distinct", parse_expression("list_transform(__l__, lambda _label: __n__)",
                           l=literal(list(spec["labels"])),
                           n=normalize(exp.column("_label"), params(spec)["normalizer"])))
    else:
        classes = exp.Array(expressions=[col("expected")])
    return Statement(f"classification:{name}", _with_rows(_CLASSIFICATION_REPORT, rows, classes=classes),
                     ("run_id", "repeats"), f"{name}: per-class precision/recall/F1, macro-F1, confusion matrix")


@metric_kind("classification", {"properties": {
    "normalizer": {"enum": NORMALIZERS, "default": "lower_strip",
                   "description": "how labels are normalised before comparing"},
    "labels": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True,
               "description": "the classes; default: the expected labels seen in each dataset"}}},
    dataset_report=classification_report)
def classification(spec: dict) -> MetricSQL:
    """1 when the predicted label (the normalised output) equals the expected label, else 0 (mean = accuracy).

    The evaluate result adds, per dataset, per-class precision/recall/F1, macro-F1 and the confusion matrix
    under `classification`."""
    predicted, expected = _labels(spec)
    value = exp.cast(exp.func("coalesce", exp.EQ(this=predicted, expression=expected), literal(False)), "DOUBLE")
    detail = parse_expression("CASE WHEN value = 1 THEN NULL ELSE 'predicted ' || coalesce(__p__, '(none)') "
                              "|| ', expected ' || coalesce(__e__, '(none)') END", p=predicted, e=expected)
    return MetricSQL(value=value, detail=detail)


_REGRESSION_REPORT = """
WITH errors AS (SELECT 1)
SELECT dataset, count(*) AS n, count(err) AS n_predicted, avg(abs(err)) AS mae, sqrt(avg(err * err)) AS rmse,
       avg(err) AS bias
FROM errors GROUP BY dataset ORDER BY dataset
"""


def _prediction_error() -> exp.Expression:
    """prediction - expected, NULL when either number is missing."""
    return exp.Sub(this=first_number(col("output_text")),
                   expression=first_number(parse_expression("expected_answers[1]")))


def regression_report(name: str, spec: dict) -> Statement:
    """Per dataset: n, cases with a number, MAE, RMSE = sqrt(mean squared error) and bias (mean signed error)."""
    rows = exp.select(col("dataset"), exp.alias_(_prediction_error(), "err")).from_(_source(name, spec))
    return Statement(f"regression:{name}", _with_rows(_REGRESSION_REPORT, rows), ("run_id", "repeats"),
                     f"{name}: MAE, RMSE and bias per dataset")


@metric_kind("regression", {"properties": {
    "error": {"enum": ["absolute", "squared"], "default": "absolute",
              "description": "per-case error (absolute: mean = MAE)"},
    "max_error": {"type": "number", "minimum": 0, "description": "a case passes when its error <= this"}}},
    higher_is_better=False, dataset_report=regression_report)
def regression(spec: dict) -> MetricSQL:
    """Error between the number in the output and the expected number: absolute (mean = MAE) or squared (MSE).

    RMSE (sqrt of the mean squared error) is in the evaluate result under `regression`. A case passes when
    its error <= max_error; without max_error, when a prediction could be read. An output without a number
    has no value (left out of MAE) and fails."""
    err = _prediction_error()
    value = exp.func("abs", err) if params(spec)["error"] == "absolute" else exp.func("power", err, literal(2))
    if "max_error" in spec:
        passed = exp.LTE(this=col("value"), expression=literal(float(spec["max_error"])))
    else:
        passed = col("value").is_(exp.null()).not_()
    detail = parse_expression("CASE WHEN value IS NULL THEN 'no number in output or expected' END")
    return MetricSQL(value=value, passed=passed, detail=detail)
