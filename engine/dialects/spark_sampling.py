"""Rewrites of DuckDB-dialect trees for Spark SQL met by the bridge's samplers: the sampling hash
(engine/sampling_hash.py) and CTE names repeated in nested scopes. One function per difference; run on both
engines by tests/parity/test_sampling_parity.py."""
from __future__ import annotations

from sqlglot import exp

from engine.dialects.rewrites import NotPortable, rewrite

_MAX_MODULUS = 10 ** 9  # (w mod N) * (2^32k mod N) summed over 4 words stays below 2^63


def _byte(hexdigest: exp.Expression, i: int) -> exp.Expression:
    return exp.Substring(this=hexdigest.copy(), start=exp.Literal.number(2 * i + 1), length=exp.Literal.number(2))


def _word(hexdigest: exp.Expression, k: int) -> exp.Expression:
    """The k-th 32-bit word of the little-endian digest (bytes 4k..4k+3, 4k least significant), as a BIGINT."""
    digits = exp.Concat(expressions=[_byte(hexdigest, 4 * k + j) for j in (3, 2, 1, 0)])
    return exp.cast(exp.Anonymous(this="conv", expressions=[digits, exp.Literal.number(16), exp.Literal.number(10)]),
                    "BIGINT")


def md5_buckets(hexdigest: exp.Expression, modulus: int) -> exp.Expression:
    """md5_number(x) % modulus from md5(x)'s 32 hex digits, in 64-bit integer arithmetic: the 128-bit value is
    sum_k w_k * 2^(32k) (w_k the little-endian 32-bit words), so mod N it is sum_k (w_k mod N) * (2^(32k) mod N)
    mod N."""
    terms = [exp.Mul(this=exp.paren(exp.Mod(this=_word(hexdigest, k), expression=exp.Literal.number(modulus))),
                     expression=exp.Literal.number(pow(2, 32 * k, modulus))) for k in range(4)]
    total = terms[0]
    for t in terms[1:]:
        total = exp.Add(this=total, expression=t)
    return exp.Mod(this=exp.paren(total), expression=exp.Literal.number(modulus))


@rewrite("spark")
def md5_number_buckets(tree: exp.Expression) -> exp.Expression:
    """`md5_number(x) % N` (the sampling hash, engine/sampling_hash.py): DuckDB reads md5's 16 bytes as an unsigned
    128-bit integer, first byte least significant; Spark has neither md5_number nor 128-bit integers. The bucket
    is computed from Spark's `md5(x)` (the same digest of the same UTF-8 bytes, in hex) word by word
    (`md5_buckets`), equal to DuckDB's for every x (NULL stays NULL). md5_number used any other way cannot be
    reproduced on Spark: NotPortable."""
    def swap(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Mod) and _is_md5_number(node.this):
            modulus = node.expression
            if not (isinstance(modulus, exp.Literal) and not modulus.is_string and modulus.this.isdigit()
                    and 0 < int(modulus.this) <= _MAX_MODULUS):
                raise NotPortable(f"md5_number(...) % {modulus.sql()}: the modulus must be an integer literal "
                                  f"in [1, {_MAX_MODULUS}] on Spark")
            digest = exp.func("md5", node.this.expressions[0].copy())
            return exp.paren(md5_buckets(digest, int(modulus.this)))
        return node

    out = tree.transform(swap)
    if any(_is_md5_number(n) for n in out.find_all(exp.Anonymous)):
        raise NotPortable("md5_number outside `md5_number(x) % N`: Spark has no 128-bit integers")
    return out


def _is_md5_number(node: exp.Expression) -> bool:
    return isinstance(node, exp.Anonymous) and str(node.this).lower() == "md5_number" and len(node.expressions) == 1


@rewrite("spark")
def unique_cte_names(tree: exp.Expression) -> exp.Expression:
    """A CTE name defined again in a nested query (each `resolved('feedback')` subquery brings its own `fw_refs`):
    DuckDB scopes each definition to its query; sqlglot moves every CTE to the top of the statement for Spark,
    where two definitions of one name are an error. Each repeated definition, innermost first, gets a name of its
    own (`fw_refs_2`, ...) and the references in its scope follow."""
    withs = sorted(tree.find_all(exp.With), key=lambda w: -w.depth)
    counts: dict[str, int] = {}
    for w in withs:
        for cte in w.expressions:
            counts[cte.alias_or_name] = counts.get(cte.alias_or_name, 0) + 1
    repeated = {name for name, n in counts.items() if n > 1}
    if not repeated:
        return tree
    used = set(counts)
    for w in withs:
        scope = w.parent
        for cte in w.expressions:
            old = cte.alias_or_name
            if old not in repeated or counts[old] == 1:
                continue
            counts[old] -= 1
            k = 2
            while f"{old}_{k}" in used:
                k += 1
            new = f"{old}_{k}"
            used.add(new)
            for table in scope.find_all(exp.Table):
                if table.name == old and not table.args.get("db"):
                    table.set("this", exp.to_identifier(new))
            cte.set("alias", exp.TableAlias(this=exp.to_identifier(new)))
    return tree
