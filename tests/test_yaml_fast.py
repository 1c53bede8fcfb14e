"""engine/yaml_fast.py: libyaml parses the config files to the same values as the pure-Python parser, with
OmegaConf's own rules (YAML 1.2 floats, no timestamps, duplicate keys refused), and a file that does not parse
fails with the pure-Python parser's error (file, line and column, as engine/exit_codes.py prints them)."""
from __future__ import annotations

import pytest
import yaml
from omegaconf import OmegaConf, _utils

from engine import yaml_fast
from engine.paths import bundled_conf_dir

DOC = """a: 1e3
b: 1.5e-3
c: 2024-01-02
d: [x, 'y', "z", null, ~, true, no, 0x1f, 010]
e: {f: .inf, g: -.nan, h: '1e3'}
i: |
  text ${oc.env:HOME}
  more
j: !!str 12
"""


def pure_omegaconf(text: str):
    return yaml.load(text, Loader=_utils.get_yaml_loader())


def test_omegaconf_values_are_the_pure_parser_values():
    with yaml_fast.omegaconf_parsing():
        assert _utils.get_yaml_loader().__mro__[1] is yaml.CSafeLoader
        fast = OmegaConf.to_container(OmegaConf.create(DOC))
    assert _utils.get_yaml_loader().__mro__[1] is yaml.SafeLoader  # restored
    pure = OmegaConf.to_container(OmegaConf.create(DOC))
    assert repr(fast) == repr(pure)  # repr: nan != nan
    assert fast["a"] == 1000.0 and fast["c"] == "2024-01-02"  # OmegaConf's float and (no) timestamp rules


def test_every_bundled_config_file_parses_to_the_same_values():
    files = sorted(bundled_conf_dir().rglob("*.yaml"))
    assert len(files) > 20
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert yaml_fast.safe_load(text) == yaml.safe_load(text), path
        with yaml_fast.omegaconf_parsing():
            fast = yaml.load(text, Loader=_utils.get_yaml_loader())
        assert fast == pure_omegaconf(text), path


def test_duplicate_keys_are_refused_as_omegaconf_refuses_them():
    with yaml_fast.omegaconf_parsing(), pytest.raises(yaml.constructor.ConstructorError, match="duplicate key a"):
        OmegaConf.create("a: 1\nb: 2\na: 3\n")


def test_a_syntax_error_is_the_pure_parser_error_with_the_file_name(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("exact:\n  kind: exact_match\n  normalizer: [lower_strip\nfound:\n  kind: contains\n")
    with open(path, encoding="utf-8") as f, pytest.raises(yaml.YAMLError) as pure:
        yaml.load(f, Loader=_utils.get_yaml_loader())
    with yaml_fast.omegaconf_parsing(), pytest.raises(yaml.YAMLError) as fast:
        OmegaConf.load(path)
    assert str(fast.value) == str(pure.value) and fast.value.problem_mark.name == str(path)
    assert "expected ',' or ']', but got ':'" in str(fast.value)
    with pytest.raises(yaml.YAMLError) as plain:
        yaml_fast.safe_load("a:\n\tb: 1\n")
    assert "found character '\\t'" in str(plain.value)
