"""YAML that a user or a repository controls, read with limits: epic.yaml and every YAML file
a method reads from a project.

PyYAML alone builds an alias bomb cheaply (aliases share objects) but whatever walks the result
afterwards pays for every expanded value; it silently keeps the last of two equal keys; and a
file of bytes that are not UTF-8 or nested a thousand deep ends in an internal error. Here each
of these is a `YamlFileError` that names the file and says what is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from orchestrator.errors import YamlFileError

MAX_BYTES = 16 << 20
MAX_VALUES = 100_000  # values once aliases are expanded: far more than any real file holds


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader refusing a mapping that repeats a key."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
        try:
            repeated = key in seen
        except TypeError:  # an unhashable key: PyYAML says so itself
            repeated = False
        if repeated:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is given twice", key_node.start_mark
            )
        if not isinstance(key, list | dict):
            seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(path: Path, *, what: str = "") -> Any:
    """The YAML document in `path` (OSError when it cannot be read at all)."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise YamlFileError(f"{path}: larger than {MAX_BYTES >> 20} MiB{what}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise YamlFileError(f"{path}: not UTF-8 text (byte {exc.start}){what}") from None
    return load_text(text, source=str(path), what=what)


def load_text(text: str, *, source: str, what: str = "") -> Any:
    """The YAML document in `text`; `source` names it in errors."""
    try:
        value = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise YamlFileError(f"{source}: not valid YAML ({exc}){what}") from None
    except RecursionError:
        raise YamlFileError(f"{source}: not valid YAML (nested too deeply){what}") from None
    if expanded_size(value, MAX_VALUES) > MAX_VALUES:
        raise YamlFileError(
            f"{source}: more than {MAX_VALUES} values once YAML aliases are expanded{what}"
        )
    return value


def expanded_size(value: Any, limit: int) -> int:
    """How many values `value` holds with aliases expanded, counting no further than `limit`."""
    count, stack = 0, [value]
    while stack and count <= limit:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count
