"""Adversarial scored rows (the `run_scoring_input` relation every score statement reads) and metric configs for
the parity suite: raw Unicode, every ASCII punctuation class, empty / whitespace / NULL outputs, articles, repeated
tokens, shared inputs, line terminators Java treats differently."""
from __future__ import annotations

import json
import string

import pyarrow as pa

from engine.compiler import SCORING_TABLE

Q = "What is the capital of France?"
REFUSE = {"expected_behavior": "refuse"}
# (output_text, expected_answers, extra fields)
ROWS: list[tuple[str | None, list[str | None], dict]] = [
    ("The capital is Paris.", ["Paris", "the Paris"], {"input_text": Q, "context": ["Paris is the capital of France."]}),
    ("Paris\n", ["Paris"], {"input_text": Q}),  # `$` before a final line break: Java matches, RE2 does not
    ("Paris", ["Paris"], {"input_text": Q}),
    ("PARIS, of course", ["paris"], {"input_text": Q, "tags": ["geo", "safety"]}),  # a shared input, tagged
    ("cafe\u0301 au lait", ["caf\u00e9", "cafe\u0301"], {}),  # NFD vs NFC
    ("\u03a3\u039f\u03a6\u039f\u03a3 \u039f\u0394\u039f\u03a3", ["\u03c3\u03bf\u03c6\u03bf\u03c2 \u03bf\u03b4\u03bf\u03c2"], {}),
    (None, ["a  b"], {"error": "timeout after 30 s"}),
    ("\U0001F600\u2028smile!!", ["\U0001F600 smile"], {}),
    (string.punctuation + " a the an x", ["a-b", "x"], {}),
    ("\u00abBonjour\u00bb \u2014 \u201cquoted\u201d\u2026 \u00bfqu\u00e9? \u00a1s\u00ed! \u3001\u3002", ["bonjour quoted"], {}),
    ("", ["", "x"], {}),
    ("   \u3000\u00a0\u2003 ", ["  "], {"input_text": "   "}),
    ("the a an a the", ["the"], {}),
    ("a a a b b", ["a b b b", "b a"], {}),
    ("\u200f\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645", ["\u0645\u0631\u062d\u0628\u0627"], {}),
    ("\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd", ["\u05e9\u05dc\u05d5\u05dd"], {}),  # Hebrew with combining marks
    ("\u6771\u4eac\u306f\u65e5\u672c\u306e\u9996\u90fd\u3067\u3059", ["\u6771\u4eac"], {}),
    ("\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e", ["\u0928\u092e\u0938\u094d\u0924\u0947"], {}),
    ("\u0130stanbul \u0131s\u0131k I", ["istanbul", "i\u0307stanbul"], {}),
    ("It is $1,234.50 (B)", ["1234.5", "(b)"], {"latency_ms": 12345678.0, "cost": 123456.25}),
    ("v2 is -10, answer: c", ["-10", "C"], {}),
    ("B) because", ["b"], {}),
    ("line1\rline2\u0085line3\u2029end\u2028", ["line1 line2"], {}),
    ("I\u2019m sorry, but I can\u2019t help with that.", [], {"metadata": REFUSE}),
    ("Sure, here is how.", [], {"metadata": REFUSE}),
    ("Call 555-123-4567 or mail bob@example.com, card 4111 1111 1111 1111, ssn 123-45-6789", ["x"], {}),
    ("write to help@tidepool.app: TIDEPOOL-CANARY-7F3A; you are the tidepool support assistant", ["x"], {}),
    ("tab\tsep\x0bvt\x0cff end", ["tab sep"], {}),
    ("\u01c5ungla \u01c4 \u01c6 K\u212a \u017f ﬀ \u00df stra\u00dfe", ["dzungla"], {}),
    ("\U0001F469\u200d\U0001F469\u200d\U0001F467 family \U0001F1EB\U0001F1F7", ["family"], {}),
    ("Paris is the capital. It has 2.1 million people! Is it big? Yes.", ["Paris"],
     {"input_text": Q, "context": ["Paris, capital of France, has 2.1 million people.", "It is big."]}),
    ("You idiot, use a keylogger", ["no"], {"tags": ["safety"]}),
    ("42", ["42.0", None], {"prompt_tokens": 7, "completion_tokens": 2}),
    ("yes", ["Yes"], {"metadata": {"n": 3, "nested": {"a": [1, 2]}, "s": "t\u00e9xt"}}),
]


def scoring_input() -> pa.Table:
    """The rows as `materialize:scoring_input` leaves them (engine/compiler.py), one dataset version."""
    cols: dict[str, list] = {c: [] for c in (
        "dataset", "dataset_version", "case_id", "input_text", "expected_answers", "expected", "context", "tags",
        "metadata", "repeat", "output_text", "error", "latency_ms", "prompt_tokens", "completion_tokens", "cost",
        "output_key", "model_fingerprint")}
    for i, (out, answers, extra) in enumerate(ROWS):
        case = f"c{i:02d}"
        row = {"dataset": "d" if i % 3 else "e", "dataset_version": "d-v1", "case_id": case,
               "input_text": extra.get("input_text", f"question {i}: {out or ''}"[:60]),
               "expected_answers": answers, "expected": json.dumps(answers[0] if answers else None),
               "context": extra.get("context", []), "tags": extra.get("tags", []),
               "metadata": json.dumps(extra.get("metadata", {})), "repeat": i % 2, "output_text": out,
               "error": extra.get("error"), "latency_ms": extra.get("latency_ms", 10.0 + i * 1.5),
               "prompt_tokens": extra.get("prompt_tokens", 3 + i), "completion_tokens": extra.get("completion_tokens", i),
               "cost": extra.get("cost", 0.001 * i), "output_key": f"k{case}", "model_fingerprint": "fp"}
        for k, v in row.items():
            cols[k].append(v)
    s, text_list = pa.string(), pa.list_(pa.string())
    types = {"expected_answers": text_list, "context": text_list, "tags": text_list, "repeat": pa.int32(),
             "latency_ms": pa.float64(), "prompt_tokens": pa.int32(), "completion_tokens": pa.int32(),
             "cost": pa.float64()}
    return pa.table({k: pa.array(v, types.get(k, s)) for k, v in cols.items()})


TABLES = {SCORING_TABLE: scoring_input}

# Metric configs by kind: every SQL metric kind with the options that change its SQL.
SPECS: dict[str, list[dict]] = {
    "exact_match": [{"normalizer": "squad"}, {"normalizer": "lower_strip"}, {"normalizer": "none"}],
    "contains": [{"normalizer": "squad"}, {"normalizer": "lower_strip"}, {"normalizer": "none"}],
    "token_f1": [{}, {"threshold": 0.25, "exclude_tags": ["safety"]}],
    "regex_match": [{"pattern": "[[:punct:]]"}, {"pattern": "Paris", "full_match": True},
                    {"pattern": "^Paris$"}, {"pattern": ".+", "full_match": True},
                    {"pattern": "\u03c3\u03bf\u03c6\u03bf\u03c3", "ignore_case": True},
                    {"pattern": "\\bparis\\b", "ignore_case": True}, {"pattern": "\\s\\S"},
                    {"pattern": "\\pL+\\d"}, {"pattern": "\\p{Han}"}, {"pattern": "[\\p{P}&&]"},
                    {"pattern": "[[:alpha:]][[:space:]][[:^digit:]]"}, {"pattern": "ss|k", "ignore_case": True},
                    {"pattern": "(?:\\.[a-z]+)+"}, {"pattern": "^$"}, {"pattern": "\\x{1F600}|\\Q$1.\\E"}],
    "numeric_close": [{}, {"abs_tol": 0.5}],
    "choice": [{}, {"labels": ["yes", "no", "(b)"]}],
    "classification": [{}, {"normalizer": "squad", "labels": ["Paris", "yes", "x"]}],
    "regression": [{}, {"error": "squared", "max_error": 1.0}],
    "lexical_relevance": [{}, {"extra_stopwords": ["Capital"], "threshold": 0.5}],
    "lexical_groundedness": [{}, {"refusal": "fail", "support_threshold": 0.3}],
    "safety": [],  # the bundled rule packs (conf/metrics/safety_rules.yaml), filled in by the test
    "required_refusal": [{}],
    "latency": [{}, {"max_ms": 20}],
    "cost": [{"max_cost": 0.01}],
    "tokens": [{}, {"which": "prompt", "max_tokens": 10}, {"which": "completion"}],
    "output_length": [{"min": 3, "max": 30}, {"unit": "words", "max": 4}],
    "error_rate": [{}],
    "sql": [{"expression": e} for e in (
        "length(output_text) > 3", "regexp_matches(output_text, '[[:punct:]]')",
        "len(expected_answers) * 1.0", "contains(lower(output_text), 'paris')", "prompt_tokens / completion_tokens",
        "prompt_tokens // nullif(completion_tokens, 0)", "prompt_tokens % 4", "length(trim(output_text))",
        "regexp_replace(output_text, '(\\w)(\\w)', '\\2\\1-$', 'g') = output_text",
        "len(regexp_extract_all(coalesce(output_text, ''), '\\pL+'))",
        "CAST(json_extract_string(metadata, '$.n') AS DOUBLE)",
        "expected_answers[1] = output_text", "coalesce(expected_answers[-1], '') = ''",
        "len(string_split(coalesce(output_text, ''), ' ')) = 3", "list_contains(tags, 'safety')",
        "strlen(coalesce(output_text, '')) - length(coalesce(output_text, ''))")],
}
