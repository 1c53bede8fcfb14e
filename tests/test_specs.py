"""Config sections as frozen specs with their defaults in their JSON Schemas (engine/specs.py).

`with_defaults` fills what a section leaves out from the schema's `default`s; a section read as a spec
(engine/bridge/spec.py) has no `.get(key, default)` left. The ratchet below counts `.get("key", default)` calls
per file (most of them on raw config dicts; some on rows): the number only goes down as sections become specs."""
from __future__ import annotations

import ast

import pytest

from engine.bridge.spec import BridgeSpec
from engine.schemas import load_schema
from engine.specs import schema_defaults, with_defaults
from tests.ratchet import ENGINE, assert_only_goes_down

# `.get("key", default)` calls per file when the ratchet was set (wave 2, session 4): 268 in 76 files; 254 once
# simulate read its defaults from its schema; 244 once the `run` section was a spec (engine/specs.RunSpec); 199 once
# ingest, judges, models (and their params) were specs and each metric kind read its params filled from its schema;
# 124 once the gate and monitor sections were specs (engine/gate/spec.py, engine/monitor/spec.py); 109 once
# registry lookups (registry.get(family, name)) were no longer counted as defaults.
# Lower a number when a section becomes a spec; never raise one.
BASELINE = {
    "engine/agents/cases.py": 6,
    "engine/agents/otel_steps.py": 8,
    "engine/agents/tool_loop.py": 1,
    "engine/agents/trajectory.py": 1,
    "engine/bridge/sampling.py": 2,
    "engine/cli.py": 1,
    "engine/commands/datasets.py": 1,
    "engine/commands/demo.py": 5,
    "engine/commands/store.py": 1,
    "engine/dataset_carry.py": 1,
    "engine/datasets.py": 5,
    "engine/demo_models/support.py": 1,
    "engine/gate/leaderboard.py": 1,
    "engine/gate/sweep.py": 2,
    "engine/ingest/batch.py": 4,
    "engine/ingest/genai_layouts.py": 22,
    "engine/ingest/otel.py": 6,
    "engine/ingest/records.py": 1,
    "engine/ingest/schema_sql.py": 3,
    "engine/ingest/strict.py": 2,
    "engine/metrics/base.py": 2,
    "engine/models/python_callable.py": 2,
    "engine/monitor/binning.py": 1,
    "engine/monitor/drift.py": 1,
    "engine/report/gate_html.py": 6,
    "engine/report/metric_catalog.py": 2,
    "engine/report/monitor_format.py": 1,
    "engine/report/monitor_html.py": 4,
    "engine/report/monitor_parity.py": 1,
    "engine/report/summary.py": 1,
    "engine/report/sweep_html.py": 1,
    "engine/report/terminal.py": 2,
    "engine/schemas.py": 1,
    "engine/simulate.py": 1,
    "engine/usersql.py": 6,
    "engine/whatif/compare.py": 1,
    "engine/whatif/monitor.py": 2,
}


def _registry_lookup(func: ast.Attribute) -> bool:
    """registry.get("metric", name): a lookup by family and name (engine/registry.py), not a default."""
    return isinstance(func.value, ast.Name) and func.value.id == "registry"


def get_with_default_sites(source: str) -> int:
    return sum(1 for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
               and len(node.args) == 2 and isinstance(node.args[0], ast.Constant)
               and isinstance(node.args[0].value, str)
               and not (isinstance(node.args[1], ast.Constant) and node.args[1].value is None)
               and not _registry_lookup(node.func))


def test_the_detector_counts_a_default_and_not_a_plain_get():
    assert get_with_default_sites("cfg.get('a', 1)\ncfg.get('b')\ncfg.get('c', None)\nd.get(k, 2)\n"
                                  "registry.get('metric', name)") == 1


def test_get_with_default_only_goes_down():
    assert_only_goes_down(get_with_default_sites, BASELINE, "new .get(key, default) on config: declare the default "
                          "in the schema and read a spec", ".get(key, default) calls")
    bridge = (ENGINE / "bridge" / "run.py").read_text(encoding="utf-8")
    assert 'bridge.get(' not in bridge and '["bridge"].get(' not in bridge  # the bridge section is read as a spec


def test_with_defaults_fills_nested_objects_and_keeps_what_is_given():
    schema = load_schema("bridge")
    filled = with_defaults(schema, {"salt": "s", "export": {"format": "parquet", "redact": None}, "golden": None})
    assert filled["salt"] == "s" and filled["out_dir"] == "data/bridge"
    assert filled["export"] == {"format": "parquet", "layout": "chat", "redact": {"pii": [], "fields": []}}
    assert filled["golden"] == {"dataset": None, "from_policies": [], "label_queue": True}


def test_a_spec_of_an_empty_section_is_the_schema_defaults():
    spec = BridgeSpec.of({})
    defaults = schema_defaults(load_schema("bridge"))
    assert (spec.out_dir, spec.salt, spec.start, spec.end) == (defaults["out_dir"], defaults["salt"], None, None)
    assert (spec.export.format, spec.export.layout) == (defaults["export.format"], defaults["export.layout"])
    assert spec.golden.label_queue is defaults["golden.label_queue"] is True
    with pytest.raises(Exception):
        spec.salt = "changed"  # frozen


@pytest.mark.parametrize("key", ["out_dir", "salt", "export.format", "export.layout", "golden.label_queue"])
def test_the_bundled_bridge_config_agrees_with_the_schema_defaults(key):
    """conf/bridge/default.yaml (the documented starting point) sets each of these as the schema's default, so a
    project that leaves a key out gets what the bundled config shows."""
    import yaml

    bundled = yaml.safe_load((ENGINE.parent / "conf" / "bridge" / "default.yaml").read_text(encoding="utf-8"))
    value = bundled
    for part in key.split("."):
        value = value[part]
    assert value == schema_defaults(load_schema("bridge"))[key]


def _bundled(section: str) -> dict:
    import yaml

    return yaml.safe_load((ENGINE.parent / "conf" / section / "default.yaml").read_text(encoding="utf-8"))


def _leaves(block: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in block.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


@pytest.mark.parametrize("section", ["ingest", "judges"])
def test_the_bundled_config_restates_exactly_the_schema_defaults(section):
    """conf/<section>/default.yaml sets every option of the section, each to its schema default: a project whose
    own config leaves an option out gets what the bundled file shows."""
    options = {k: v for k, v in schema_defaults(load_schema(section)).items() if not isinstance(v, dict)}
    assert _leaves(_bundled(section)) == options


def test_the_ingest_spec_of_an_empty_section_is_the_schema_defaults():
    from engine.ingest.options import IngestSpec, Options

    spec = IngestSpec.of({})
    defaults = schema_defaults(load_schema("ingest"))
    assert spec.options == Options()  # built directly or from an empty section: the same defaults
    assert (spec.options.chunk_bytes, spec.options.memory_mb, spec.options.hash_fields) == \
        (defaults["chunk_bytes"], defaults["memory_mb"], tuple(defaults["privacy.hash_fields"]))
    assert (spec.paths, spec.show_reasons, spec.max_quarantine_share) == ((), 5, defaults["max_quarantine_share"])
    assert spec.export.include_resolved is False and spec.export.batch is None


def test_the_ingest_spec_keeps_what_is_given_and_the_top_level_shortcuts_win():
    from engine.ingest.options import IngestSpec

    spec = IngestSpec.of({"path": "a.jsonl", "kind": "traces",
                          "ingest": {"path": ["b", "c"], "kind": "events", "chunk_rows": 10,
                                     "privacy": {"salt": "", "redact": ["input"]}, "export": {"kind": "feedback"}}})
    assert (spec.paths, spec.options.kind, spec.options.chunk_rows) == (("a.jsonl",), "traces", 10)
    assert spec.options.salt is None and spec.options.redact == ("input",)  # an empty salt is no salt
    assert spec.options.hash_fields == ("user_id",) and spec.export.kind == "feedback"
    assert IngestSpec.of({"ingest": {"path": ["b", "c"]}}).paths == ("b", "c")
    assert IngestSpec.of({"path": "", "ingest": {"path": None}}).paths == ()


def test_the_judges_spec_of_an_empty_section_is_the_schema_defaults():
    from engine.judges.calibrate import Settings
    from engine.judges.spec import JudgesSpec

    spec = JudgesSpec.of({})
    defaults = schema_defaults(load_schema("judges"))
    assert (spec.metrics, spec.labels) == (None, ())
    assert (spec.bootstrap.resamples, spec.bootstrap.seed, spec.bootstrap.level) == \
        (defaults["bootstrap.resamples"], defaults["bootstrap.seed"], defaults["bootstrap.level"])
    assert (spec.traces.rate, spec.traces.salt) == (defaults["traces.rate"], defaults["traces.salt"])
    settings = Settings.of({"judges": {"bootstrap": {"seed": 7}}})
    assert (settings.seed, settings.resamples, settings.batch_size) == (7, 2000, 32)


def test_model_specs_fill_each_adapters_params_from_the_schema():
    from engine.errors import UserError
    from engine.models.spec import ChatCompletionsParams, ModelSpec, ReplayParams, params_schema

    model = ModelSpec.of({"name": "m", "adapter": "python", "_target_": "x.Y"})
    assert (model.repeats, model.version, model.params, model.batch_size) == (1, None, {}, None)
    assert ReplayParams.of({"path": "p.jsonl"}) == ReplayParams("p.jsonl", "id", "output")
    chat = ChatCompletionsParams.of({"base_url": "http://h/v1", "model": "x", "timeout_s": 5})
    defaults = schema_defaults(params_schema("chat_completions"))
    assert chat.timeout_s == 5 and (chat.max_retries, chat.backoff_s, chat.max_concurrency, chat.max_steps) == \
        (defaults["max_retries"], defaults["backoff_s"], defaults["max_concurrency"], defaults["max_steps"])
    with pytest.raises(UserError, match="unknown chat_completions param.*temprature"):
        ChatCompletionsParams.of({"base_url": "http://h/v1", "model": "x", "temprature": 0})


def test_an_unknown_adapter_param_is_a_config_error_naming_it():
    """The adapters' params are closed schemas: a typo is named at validation (it used to reach the adapter's
    constructor as an unexpected keyword)."""
    from engine.schemas import all_errors, validator

    errors = all_errors(validator("model"), {"name": "m", "adapter": "replay", "params": {"path": "p", "id_feld": "k"}})
    assert [(path, "did you mean 'id_field'" in message) for path, message in errors] == [(["params", "id_feld"], True)]
