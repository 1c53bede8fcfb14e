"""The README's option tables (ingest, judges, the replay and chat_completions params, the gate and its rule kinds,
the monitor and its drift tests) are the ones generated from the schemas that declare the defaults, and the
defaults the README states in prose are the schemas' too."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.report.option_tables import TABLES, readme_block, rows, table
from engine.schemas import load_schema
from engine.specs import schema_defaults

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(TABLES))
def test_readme_table_matches_the_schema(name):
    block = readme_block(README, name)
    assert block is not None, f"README.md lost the options:{name} markers"
    assert block == table(name), ("README.md's options table is out of date: run "
                                  "`python -m engine.report.option_tables --write README.md`")


def test_a_table_shows_defaults_required_options_and_nested_keys():
    schema = {"required": ["a"], "properties": {"a": {"type": "string"}, "b": {"enum": ["x", "y"], "default": "x"},
                                                "c": {"type": "object", "properties": {"d": {"default": [1]}}}}}
    assert rows(schema, "s.") == [("`s.a`", "required", ""), ("`s.b`", "`x`", "one of x, y"), ("`s.c.d`", "`[1]`", "")]


def test_a_table_shows_a_maps_entries_references_and_an_objects_default():
    schema = {"$defs": {"sev": {"enum": ["hi", "lo"]}},
              "properties": {"ref": {"type": "object", "default": {"kind": "k1"}, "required": ["kind"],
                                     "properties": {"kind": {"enum": ["k1", "k2"]}, "n": {"default": 7}}},
                             "rules": {"type": "object", "default": {}, "description": "rules by name",
                                       "additionalProperties": {"required": ["x"], "properties": {
                                           "x": {"type": "string"}, "sev": {"$ref": "#/$defs/sev", "default": "lo"}}}}}}
    assert rows(schema, "m.") == [("`m.ref.kind`", "`k1`", "one of k1, k2"), ("`m.ref.n`", "`7`", ""),
                                  ("`m.rules`", "`{}`", "rules by name"), ("`m.rules.<name>.x`", "required", ""),
                                  ("`m.rules.<name>.sev`", "`lo`", "one of hi, lo")]


# (what the README says in its prose, the option it states the default of, that default read from the match)
PROSE = [(r"chunks of `ingest\.chunk_bytes`\s+\(default (\d+) MiB\)", "chunk_bytes", lambda m: int(m[1]) << 20),
         (r"`ingest\.memory_mb` \(default (\d+);", "memory_mb", lambda m: int(m[1])),
         (r"`ingest\.max_quarantine_share` \(default \*\*([\d.]+)\*\*", "max_quarantine_share", lambda m: float(m[1])),
         (r"Unknown top-level fields are kept in `extra` by\s+default", "unknown_fields", lambda m: "keep")]


@pytest.mark.parametrize("pattern, key, read", PROSE, ids=[p[1] for p in PROSE])
def test_defaults_stated_in_the_readme_prose_are_the_schemas(pattern, key, read):
    found = re.search(pattern, README)
    assert found, f"README.md no longer states the default of ingest.{key} as /{pattern}/"
    assert read(found) == schema_defaults(load_schema("ingest"))[key]


def test_the_adapters_table_lists_each_adapters_params_as_the_schema_does():
    from engine.models.spec import params_schema

    chat = re.search(r"^\| `chat_completions` \| `params: \{([^}]*)\}`", README, re.M)
    assert chat and chat[1].split(", ") == list(params_schema("chat_completions")["properties"])
    replay = re.search(r"^\| `replay` \| `params: \{([^}]*)\}`", README, re.M)
    shown = dict(item.split(": ") for item in replay[1].split(", "))
    defaults = schema_defaults(params_schema("replay"))
    assert list(shown) == ["path", "id_field", "output_field"]
    assert (shown["id_field"], shown["output_field"]) == (defaults["id_field"], defaults["output_field"])
