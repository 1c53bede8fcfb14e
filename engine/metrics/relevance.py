"""Relevance: does the answer address the question (or resemble the expected answer)?"""
from __future__ import annotations

from sqlglot import exp

from engine.metrics import encoders
from engine.metrics.base import MetricSQL, PrepareContext, col, metric_kind, output, params
from engine.metrics.lexical import STOPWORDS, content_tokens, share_in
from engine.provenance import utc_now
from engine.executor import execute
from engine.sql import literal, parse_expression, statement

_THRESHOLD = {"type": "number", "minimum": 0, "maximum": 1}


@metric_kind("lexical_relevance", {"properties": {
    "threshold": {**_THRESHOLD, "default": 0.3, "description": "passes at >= this share"},
    "extra_stopwords": {"type": "array", "items": {"type": "string"}, "default": [],
                        "description": "words to ignore besides the built-in English stopwords"}}})
def lexical_relevance(spec: dict) -> MetricSQL:
    """Share of the question's content words that also appear in the answer (0..1); passes at >= threshold (0.3).

    Words are lowercase runs of Unicode letters/digits (apostrophes dropped), minus a small English stopword
    list. An empty answer scores 0; a question with no content word scores 1 for any non-empty answer."""
    p = params(spec)
    stop = STOPWORDS + tuple(w.lower() for w in p["extra_stopwords"])
    # Each side is tokenised once per row, as a column of the row (`bindings`): written inline in the value, the
    # answer was tokenised again for every question word inside the lambda, and the detail repeated it all.
    bindings = (("fw_question_words", content_tokens(col("input_text"), stop)),
                ("fw_answer_words", content_tokens(output(), stop)))
    question, answer = col("fw_question_words"), col("fw_answer_words")
    value = parse_expression("CASE WHEN trim(__o__) = '' THEN 0.0 ELSE coalesce(__share__, 1.0) END",
                             o=output(), share=share_in(question, answer))
    passed = exp.GTE(this=col("value"), expression=literal(float(p["threshold"])))
    detail = parse_expression(
        "CASE WHEN __passed__ THEN NULL ELSE 'question words not in the answer: ' || "
        "array_to_string(list_sort(list_filter(__q__, lambda _m: NOT list_contains(__a__, _m))), ', ') END",
        passed=passed, q=question, a=answer)
    return MetricSQL(value=value, passed=passed, detail=detail, bindings=bindings)


def _targets(spec: dict) -> exp.Expression:
    """The texts the output is compared with: the question, or every expected answer."""
    if params(spec)["against"] == "input":
        return exp.Array(expressions=[col("input_text")])
    return col("expected_answers")


_HAVE_VECTORS = statement("embeddings:have", "SELECT w.text_hash FROM wanted_texts AS w JOIN embeddings AS e "
                          "ON e.text_hash = w.text_hash AND e.encoder = $encoder", "vectors already computed")


def _prepare_embeddings(ctx: PrepareContext, name: str, spec: dict) -> None:
    """Encode the run's distinct texts that the cache lacks, in batches, and store the vectors."""
    import pyarrow as pa

    key = encoders.encoder_key(spec)
    p = params(spec)
    texts: dict[str, str] = {}
    for row in ctx.rows(name, spec, ("input_text", "expected_answers", "output_text")):
        targets = [row["input_text"]] if p["against"] == "input" else row["expected_answers"]
        for text in [row["output_text"] or "", *targets]:
            texts[encoders.text_hash(text)] = text
    with ctx.cached() as store:  # a short read of the vectors already computed
        con = store.con
        con.register("wanted_texts", pa.table({"text_hash": pa.array(list(texts), pa.string())}))
        have = {r["text_hash"] for r in execute(con, _HAVE_VECTORS, {"encoder": key})}
        con.unregister("wanted_texts")
    missing = [h for h in texts if h not in have]
    if not missing:
        return
    encoder = encoders.build_encoder(encoders.encoder_config(spec), ctx.project.dir if ctx.project else None)
    size = int(p["batch_size"])
    vectors: list[list[float]] = []
    for start in range(0, len(missing), size):
        batch = missing[start:start + size]
        vectors.extend([float(x) for x in v] for v in encoder.encode([texts[h] for h in batch]))
    frame = pa.table({"encoder": pa.array([key] * len(missing), pa.string()),
                      "text_hash": pa.array(missing, pa.string()),
                      "vector": pa.array(vectors, pa.list_(pa.float32()))})
    ctx.write("flywheel_new_vectors", frame,
              "INSERT OR REPLACE INTO embeddings SELECT encoder, text_hash, vector, $now FROM flywheel_new_vectors",
              {"now": utc_now()})


@metric_kind("embedding_similarity", {"properties": {
    "against": {"enum": ["input", "expected"], "default": "input",
                "description": "compare the output with the question (input) or the best expected answer"},
    "encoder": {"type": "object", "required": ["_target_"], "properties": {"_target_": {"type": "string"}},
                "default": encoders.DEFAULT_ENCODER,
                "description": "the encoder: {_target_: dotted.path, **kwargs} (the bundled HashingEncoder)"},
    "batch_size": {"type": "integer", "minimum": 1, "default": 256, "description": "texts per encoder call"},
    "threshold": {"type": "number", "minimum": -1, "maximum": 1, "default": 0.3,
                  "description": "passes at cosine >= this"}}},
    prepare=_prepare_embeddings)
def embedding_similarity(spec: dict) -> MetricSQL:
    """Cosine similarity of the output's and the question's (or best expected answer's) embeddings.

    Vectors come from a pluggable encoder (default: HashingEncoder, word uni+bigrams hashed into 512 dims),
    computed in batches before scoring and cached in the store; the cosine is SQL. A zero vector (an empty
    text) or a missing vector scores 0. Passes at >= threshold (0.3)."""
    # The row's columns stay unqualified inside the subquery: `embeddings` has none of the same names.
    similarity = parse_expression(
        "(SELECT coalesce(max(CASE WHEN isnan(_cos) THEN 0.0 ELSE _cos END), 0.0) FROM ("
        "  SELECT list_cosine_similarity(o.vector, t.vector) AS _cos FROM embeddings AS o, embeddings AS t"
        "  WHERE o.encoder = __key__ AND t.encoder = __key__ AND o.text_hash = sha256(__out__)"
        "  AND list_contains(list_transform(__targets__, lambda _x: sha256(_x)), t.text_hash)))",
        key=literal(encoders.encoder_key(spec)),
        out=output(), targets=_targets(spec))
    return MetricSQL(value=similarity, passed=exp.GTE(this=col("value"),
                                                      expression=literal(float(params(spec)["threshold"]))))
