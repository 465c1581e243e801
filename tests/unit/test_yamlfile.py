"""YAML a user or a repository controls: an alias bomb, bytes that are not UTF-8, a repeated
key or a file nested too deep is a sentence naming the file, fast, never an internal error."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InputError, YamlFileError
from orchestrator.methods.bmad_v6.sprint import SprintStatusError, read_sprint
from orchestrator.yamlfile import load_yaml

BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("data", "said"),
    [
        ((BOMB + "development_status: *i\n").encode(), "values once YAML aliases are expanded"),
        (b"development_status:\n  1-1-a: \xff\xfe done\n", "not UTF-8 text"),
        (b"development_status:\n  1-1-a: done\n  1-1-a: backlog\n", "given twice"),
        (b"x: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    ],
)
def test_a_hostile_sprint_status_is_a_sentence(tmp_path: Path, data: bytes, said: str) -> None:
    path = tmp_path / "sprint-status.yaml"
    path.write_bytes(data)
    with pytest.raises(YamlFileError, match=said) as caught:
        load_yaml(path)
    assert str(path) in str(caught.value) and isinstance(caught.value, InputError)
    with pytest.raises(SprintStatusError, match=said):  # what the v6 method sees
        read_sprint(path)


def test_an_ordinary_file_reads_as_before(tmp_path: Path) -> None:
    path = tmp_path / "sprint-status.yaml"
    path.write_text("# generated\ndevelopment_status:\n  epic-1: in-progress\n  1-1-a: done\n")
    assert load_yaml(path) == {"development_status": {"epic-1": "in-progress", "1-1-a": "done"}}
