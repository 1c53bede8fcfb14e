"""Privacy for what the quarantine keeps: the same hashing and redaction as for stored records.

With `ingest.privacy.salt` (hash_fields) or `ingest.privacy.redact` set, a quarantined record is kept (and
exported) as the JSON object with every hash field replaced by `fw-sha256:<sha256(salt || value)>` and every
redacted field by the redaction text. A record whose text is not a JSON object (broken JSON, a ragged CSV row,
bytes that are not UTF-8) cannot be treated field by field: its text is withheld (raw NULL) and only its
location and reasons are kept. `ingest.quarantine.keep_raw: true` keeps the raw text instead: a privacy
trade-off the user opts into.

The `fw-sha256:` prefix marks a value that is already hashed: when an exported record is fixed and ingested
again, such a value is stored as the hash it carries (hashing it again would break every join on the id).
Only a prefix followed by exactly 64 lowercase hex digits counts, so no plain id passes unhashed.
"""
from __future__ import annotations

import json

from sqlglot import exp

from engine.ingest.schema_sql import _e, json_path
from engine.sql import literal

HASHED_PREFIX = "fw-sha256:"
HASHED_PATTERN = "^fw-sha256:[0-9a-f]{64}$"


def active(options) -> bool:
    """Whether privacy treatment applies to what the quarantine keeps."""
    return bool((options.salt and options.hash_fields) or options.redact) and not options.keep_raw


def hash_value(value: exp.Expression) -> exp.Expression:
    """A field's text hashed as stored records hold it; a value exported already hashed passes as its hash."""
    return _e("CASE WHEN __x__ IS NULL THEN NULL WHEN starts_with(__x__, __pre__) AND regexp_full_match(__x__, __pat__) "
              "THEN __x__[__n__:] ELSE sha256($salt || __x__) END", x=value, pre=literal(HASHED_PREFIX),
              pat=literal(HASHED_PATTERN), n=literal(len(HASHED_PREFIX) + 1))


def _present(raw: exp.Expression, path: tuple[str, ...]) -> exp.Expression:
    return _e("coalesce(json_type(__r__, __p__) <> 'NULL', false)", r=raw, p=literal(json_path(path)))


def _member(name: str, value: exp.Expression) -> exp.Expression:
    """`"name":value` as JSON text (value: JSON text)."""
    return _e("__k__ || ':' || __v__", k=literal(json.dumps(name, ensure_ascii=False)), v=value)


def _patch(raw: exp.Expression, options) -> exp.Expression:
    """The JSON merge patch (text) replacing the present hash and redact fields of the record `raw`."""
    members: list[exp.Expression] = []
    redaction = literal(json.dumps(options.redaction, ensure_ascii=False))
    nested: dict[str, list[str]] = {}
    for dotted in options.redact:
        top, _, child = dotted.partition(".")
        if child:
            nested.setdefault(top, []).append(child)
        else:
            members.append(_e("CASE WHEN __p__ THEN __m__ END", p=_present(raw, (top,)), m=_member(top, redaction)))
    if options.salt:
        for name in options.hash_fields:
            if name in options.redact:
                continue
            value = _e("json_extract_string(__r__, __p__)", r=raw, p=literal(json_path((name,))))
            hashed = _e("to_json(CASE WHEN regexp_full_match(__x__, __pat__) THEN __x__ "
                        "ELSE __pre__ || sha256($salt || __x__) END)",
                        x=value, pat=literal(HASHED_PATTERN), pre=literal(HASHED_PREFIX))
            members.append(_e("CASE WHEN __p__ THEN __m__ END", p=_present(raw, (name,)), m=_member(name, hashed)))
    for top, children in nested.items():
        inner = [_e("CASE WHEN __p__ THEN __m__ END", p=_present(raw, (top, c)), m=_member(c, redaction))
                 for c in children]
        body = _e("'{' || array_to_string(list_filter(__l__, lambda x: x IS NOT NULL), ',') || '}'",
                  l=exp.Array(expressions=inner))
        members.append(_e("CASE WHEN json_type(__r__, __p__) = 'OBJECT' THEN __m__ END", r=raw,
                          p=literal(json_path((top,))), m=_member(top, body)))
    if not members:
        return literal("{}")
    return _e("'{' || array_to_string(list_filter(__l__, lambda x: x IS NOT NULL), ',') || '}'",
              l=exp.Array(expressions=members))


def kept_raw(raw: exp.Expression, raw_bytes: exp.Expression, options) -> exp.Expression:
    """What `quarantine.raw` keeps of a record's text (line breaks at the end trimmed)."""
    trimmed = _e("rtrim(__r__, chr(10) || chr(13))", r=raw)
    if not active(options):
        return trimmed
    return _e("CASE WHEN __b__ IS NULL AND json_valid(__r__) AND starts_with(ltrim(__r__), '{') "
              "THEN CAST(json_merge_patch(__r__, __patch__) AS VARCHAR) END",
              b=raw_bytes, r=trimmed, patch=_patch(trimmed, options))


def kept_bytes(raw_bytes: exp.Expression, options) -> exp.Expression:
    """The bytes of a line that is not UTF-8, kept exactly as read unless privacy withholds them."""
    return exp.Null() if active(options) else raw_bytes


def content_hash(kept: exp.Expression, kept_b: exp.Expression, raw: exp.Expression, options) -> exp.Expression:
    """A quarantined record's identity: the hash of what the quarantine keeps (the same line read again, from
    its source or from a re-ingested export, is the same record); of the raw text, salted, when withheld."""
    withheld = _e("sha256($salt || __r__)", r=raw) if options.salt and options.hash_fields else \
        _e("md5(__r__)", r=raw)
    return _e("CASE WHEN __b__ IS NOT NULL THEN md5(__b__) WHEN __k__ IS NOT NULL THEN md5(__k__) "
              "WHEN __r__ IS NOT NULL THEN __w__ END", b=kept_b, k=kept, r=raw, w=withheld)
