"""YAML parsed by libyaml (PyYAML's C parser) where available: the config files are parsed on every command, and
the pure-Python parser is a fifth of composing a config.

The values are the same (the same Python resolvers and constructors decide every tag); only the parser differs.
A file that does not parse is parsed again by the pure-Python parser, so an error names the file, line and
column in the words it always used (engine/exit_codes.py prints them).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import yaml

_C_PARSER = getattr(yaml, "CSafeLoader", None)


def _fast_variant(pure: type) -> type:
    """`pure` (a SafeLoader subclass) with libyaml's parser; errors are raised by `pure` itself."""
    if _C_PARSER is None:
        return pure

    class Fast(_C_PARSER):
        yaml_implicit_resolvers = pure.yaml_implicit_resolvers
        yaml_constructors = pure.yaml_constructors
        yaml_multi_constructors = pure.yaml_multi_constructors

        def __init__(self, stream):
            self._stream = stream
            super().__init__(stream)

        # OmegaConf's loader refuses duplicate keys in its construct_mapping (a zero-argument super(): bound
        # to its own class, so it is called unbound here with this loader)
        construct_mapping = pure.construct_mapping if pure is yaml.SafeLoader else (
            lambda self, node, deep=False: _checked_mapping(self, node, deep))

        def get_single_data(self):
            try:
                return super().get_single_data()
            except yaml.YAMLError:
                stream = self._stream
                if hasattr(stream, "seek"):
                    stream.seek(0)
                return pure(stream).get_single_data()  # raises the pure parser's error (or, if none, parses)

    return Fast


def _checked_mapping(loader, node, deep: bool) -> Any:
    keys = set()
    for key_node, _ in node.value:
        if key_node.tag != yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG:
            continue
        if key_node.value in keys:
            raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                    f"found duplicate key {key_node.value}", key_node.start_mark)
        keys.add(key_node.value)
    return yaml.constructor.SafeConstructor.construct_mapping(loader, node, deep=deep)


_SAFE = _fast_variant(yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """yaml.safe_load, through libyaml when available."""
    loader = _SAFE(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


@contextmanager
def omegaconf_parsing() -> Iterator[None]:
    """While the block runs, OmegaConf (and so Hydra) parses YAML through libyaml, with its own resolvers,
    constructors and duplicate-key check."""
    from omegaconf import _utils

    original = _utils.get_yaml_loader
    fast = _fast_variant(original())
    _utils.get_yaml_loader = lambda: fast
    try:
        yield
    finally:
        _utils.get_yaml_loader = original
