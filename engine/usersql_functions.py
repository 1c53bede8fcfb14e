"""The functions user SQL may call: the allowlist of engine/usersql.py, by DuckDB's own function names.

A name is on the list because it is pure: its value depends only on its arguments (and on the store's time
zone, which Flywheel pins to UTC). Everything else is refused at validation: functions that read files,
settings, secrets, the catalog or extensions, plan and SQL (de)serialisers, table functions, sequences, and
nondeterministic functions (random numbers, UUIDs, the time of day, row-order dependent aggregates), because a
score must come out the same every time it is computed. `python -m engine.usersql_functions` prints the
README section generated from these lists; a test keeps the two equal.
"""
from __future__ import annotations

# Per-row (scalar) functions, grouped for the README. Aliases are listed under their own names, because the
# check is on the name DuckDB sees.
SCALAR_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "string": (
        "ascii", "bit_length", "char_length", "character_length", "chr", "concat", "concat_ws", "contains",
        "ends_with", "format", "ilike_escape", "instr", "lcase", "left", "left_grapheme", "len", "length",
        "length_grapheme", "like_escape", "lower", "lpad", "ltrim", "nfc_normalize", "not_ilike_escape",
        "not_like_escape", "octet_length", "ord", "overlay", "position", "prefix", "printf", "repeat", "replace",
        "reverse", "right", "right_grapheme", "rpad", "rtrim", "split", "split_part", "starts_with", "str_split",
        "string_split", "string_to_array", "strip_accents", "strlen", "strpos", "substr", "substring",
        "substring_grapheme", "suffix", "translate", "trim", "ucase", "unicode", "upper",
    ),
    "text similarity and hashing": (
        "damerau_levenshtein", "editdist3", "hamming", "hash", "jaccard", "jaro_similarity",
        "jaro_winkler_similarity", "levenshtein", "md5", "md5_number", "mismatches", "sha1", "sha256",
    ),
    "regex": (
        "regexp_escape", "regexp_extract", "regexp_extract_all", "regexp_full_match", "regexp_matches",
        "regexp_replace", "regexp_split_to_array", "str_split_regex", "string_split_regex",
    ),
    "math": (
        "abs", "acos", "add", "asin", "atan", "atan2", "bit_count", "cbrt", "ceil", "ceiling", "cos", "cot",
        "degrees", "divide", "even", "exp", "factorial", "fdiv", "floor", "fmod", "gamma", "gcd", "greatest",
        "isfinite", "isinf", "isnan", "lcm", "least", "lgamma", "ln", "log", "log10", "log2", "mod", "multiply",
        "pi", "pow", "power", "radians", "round", "round_even", "roundbankers", "sign", "sin", "sqrt", "subtract",
        "tan", "trunc", "xor",
    ),
    "date and time": (
        "century", "date_add", "date_diff", "date_part", "date_sub", "date_trunc", "datediff", "datepart",
        "datesub", "datetrunc", "day", "dayname", "dayofmonth", "dayofweek", "dayofyear", "decade", "epoch",
        "epoch_ms", "epoch_ns", "epoch_us", "hour", "isodow", "isoyear", "last_day", "make_date", "make_time",
        "make_timestamp", "microsecond", "millisecond", "minute", "month", "monthname", "quarter", "second",
        "strftime", "strptime", "time_bucket", "to_days", "to_hours", "to_microseconds", "to_milliseconds",
        "to_minutes", "to_months", "to_seconds", "to_timestamp", "to_weeks", "to_years", "try_strptime", "week",
        "weekday", "weekofyear", "year", "yearweek",
    ),
    "list": (
        "apply", "array_append", "array_apply", "array_cat", "array_concat", "array_contains",
        "array_cosine_similarity", "array_distance", "array_distinct", "array_dot_product", "array_extract",
        "array_filter", "array_grade_up", "array_has", "array_has_all", "array_has_any", "array_indexof",
        "array_inner_product", "array_intersect", "array_length", "array_position", "array_prepend",
        "array_push_back", "array_push_front", "array_reduce", "array_resize", "array_reverse",
        "array_reverse_sort", "array_select", "array_slice", "array_sort", "array_to_string", "array_transform",
        "array_unique", "array_value", "array_where", "array_zip", "cardinality", "filter", "flatten", "grade_up",
        "list_append", "list_apply", "list_avg", "list_bool_and", "list_bool_or", "list_cat", "list_concat",
        "list_contains", "list_cosine_distance", "list_cosine_similarity", "list_count", "list_distance",
        "list_distinct", "list_dot_product", "list_element", "list_extract", "list_filter", "list_first",
        "list_grade_up", "list_has", "list_has_all", "list_has_any", "list_indexof", "list_inner_product",
        "list_intersect", "list_last", "list_max", "list_median", "list_min", "list_position", "list_prepend",
        "list_product", "list_reduce", "list_resize", "list_reverse", "list_reverse_sort", "list_select",
        "list_slice", "list_sort", "list_stddev_pop", "list_stddev_samp", "list_sum", "list_transform",
        "list_unique", "list_value", "list_var_pop", "list_var_samp", "list_where", "list_zip", "reduce",
    ),
    "struct and map": (
        "element_at", "map", "map_contains", "map_extract", "map_extract_value", "map_keys", "map_values",
        "struct_extract", "struct_extract_at", "struct_pack",
    ),
    "JSON": (
        "array_to_json", "from_json", "from_json_strict", "json", "json_array", "json_array_length",
        "json_contains", "json_exists", "json_extract", "json_extract_path", "json_extract_path_text",
        "json_extract_string", "json_keys", "json_object", "json_quote", "json_structure", "json_transform",
        "json_transform_strict", "json_type", "json_valid", "json_value", "to_json",
    ),
    "conditional": ("if", "nullif"),
}

# Operators reach DuckDB as functions named by their symbol (`a || b` is `||`, `x ILIKE y` is `~~*`).
OPERATORS: tuple[str, ...] = (
    "!__postfix", "%", "&", "&&", "*", "**", "+", "-", "->>", "/", "//", "<->", "<<", "<=>", "<@", ">>", "@",
    "@>", "^", "^@", "|", "||", "~", "~~", "!~~", "~~*", "!~~*", "~~~",
)

# Aggregates, allowed only where an expression is an aggregate (a KPI's `agg`). Only those whose value does
# not depend on the order rows arrive in: any_value, first, list, string_agg, arg_max (on ties) are not.
AGGREGATE_FUNCTIONS: tuple[str, ...] = (
    "avg", "bool_and", "bool_or", "corr", "count", "count_if", "count_star", "countif", "covar_pop",
    "covar_samp", "entropy", "fsum", "geomean", "geometric_mean", "kahan_sum", "kurtosis", "mad", "max", "mean",
    "median", "min", "product", "quantile", "quantile_cont", "quantile_disc", "skewness", "stddev",
    "stddev_pop", "stddev_samp", "sum", "var_pop", "var_samp", "variance", "wavg", "weighted_avg",
)

# Refused with their own reason: a score computed with them changes from one run to the next.
NONDETERMINISTIC: frozenset[str] = frozenset({
    "random", "setseed", "uuid", "uuidv4", "uuidv7", "gen_random_uuid", "now", "today", "current_date",
    "current_time", "current_timestamp", "current_localtime", "current_localtimestamp", "get_current_time",
    "get_current_timestamp", "localtime", "localtimestamp", "transaction_timestamp", "age", "txid_current",
    "nextval", "currval", "setval", "current_query_id", "current_transaction_id", "current_connection_id",
    "any_value", "arbitrary", "first", "last", "reservoir_quantile", "list", "array_agg", "string_agg",
    "group_concat", "listagg", "arg_max", "arg_min", "argmax", "argmin", "max_by", "min_by", "mode",
    "list_any_value", "approx_quantile",
})

SCALAR_NAMES: frozenset[str] = frozenset(name for names in SCALAR_FUNCTIONS.values() for name in names)
AGGREGATE_NAMES: frozenset[str] = frozenset(AGGREGATE_FUNCTIONS)
OPERATOR_NAMES: frozenset[str] = frozenset(OPERATORS)


def allowlist_markdown() -> str:
    """The README's list of callable functions, generated from the lists above."""
    lines = [f"* **{group}**: {', '.join(f'`{n}`' for n in sorted(names))}"
             for group, names in SCALAR_FUNCTIONS.items()]
    lines.append(f"* **operators**: {', '.join(f'`{o}`' for o in OPERATORS)}, comparisons, `AND`/`OR`/`NOT`, "
                 "`IS [NOT] NULL`, `[NOT] IN (list)`, `BETWEEN`, `LIKE`/`ILIKE`/`GLOB`/`SIMILAR TO`, `CASE`, "
                 "`CAST`/`TRY_CAST`, `COALESCE`, `[i]` and `[a:b]`, lambdas (`lambda x: ...`)")
    lines.append(f"* **aggregates (a KPI's `agg` only)**: {', '.join(f'`{n}`' for n in AGGREGATE_FUNCTIONS)}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(allowlist_markdown())
