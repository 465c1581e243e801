"""epic.yaml's git branch names and Postgres URLs, checked at load the way git and libpq (and
our redaction) will read them later, with messages that quote no password."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from orchestrator.app.config import EpicConfig, load_epic
from orchestrator.app.urls import check_postgres_url
from orchestrator.errors import ConfigError
from orchestrator.redaction import redact_url

SECRET = "Sekrit99"

BRANCHES = [
    "main",
    "bmad/epic-1",
    "feature/x.y",
    "head",
    "x/HEAD",
    "HEAD/x",
    "a@b",
    "é",
    "HEAD",
    "@",
    "-x",
    ".x",
    "x.",
    "x.lock",
    "a/b.lock/c",
    "x/",
    "/x",
    "x/.y",
    "a..b",
    "a//b",
    "a@{b",
    "a b",
    "a\tb",
    "a~b",
    "a^b",
    "a:b",
    "a?b",
    "a*b",
    "a[b",
    "a\\b",
    "a\x7fb",
]


def epic(**settings: Any) -> EpicConfig:
    return EpicConfig.model_validate({"stories": ["1.1"], **settings})


def load(folder: Path, **settings: Any) -> EpicConfig:
    """epic.yaml with `settings` written and loaded as the CLI does (its messages are the CLI's)."""
    path = folder / "epic.yaml"
    path.write_text(yaml.safe_dump({"method": "bmad-v4", "stories": ["1.1"], **settings}))
    return load_epic(path)


def git_accepts(name: str, cwd: Path) -> bool:
    """`git branch NAME` would take it: `check-ref-format --branch`, except that `@` there is
    shorthand for the current branch, which `git branch @` refuses."""
    done = subprocess.run(
        ["git", "check-ref-format", "--branch", name], cwd=cwd, capture_output=True, check=False
    )
    return done.returncode == 0 and name != "@"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("field", ["branch", "merge_into"])
@pytest.mark.parametrize("name", BRANCHES)
def test_branch_names_are_refused_exactly_when_git_refuses_them(
    tmp_path: Path, field: str, name: str
) -> None:
    if git_accepts(name, tmp_path):
        assert getattr(epic(git={field: name}).git, field) == name
    else:
        with pytest.raises(ValidationError, match="not a valid git branch name"):
            epic(git={field: name})


@pytest.mark.parametrize("field", ["branch", "merge_into"])
def test_head_is_refused_naming_the_field(tmp_path: Path, field: str) -> None:
    with pytest.raises(ConfigError) as invalid:
        load(tmp_path, git={field: "HEAD"})
    assert f"git.{field}: 'HEAD' is not a valid git branch name" in str(invalid.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"postgresql://u:{SECRET}@host:99999/db", "port '99999' is not a number from 1 to"),
        (f"postgresql://u:{SECRET}@host:abc/db", "port 'abc' is not a number"),
        (f"postgresql://u:{SECRET}@host:0/db", "port '0' is not a number"),
        (f"postgresql://u:{SECRET}@host:{'9' * 5000}/db", "is not a number"),
        (f"postgresql://u:{SECRET}@[::1/db", "'[' has no closing ']'"),
        (f"postgresql://u:{SECRET}@[zz]/db", "[zz] is not an IPv6 address"),
        (f"postgresql://u:{SECRET}@[::1]x/db", "text after the host's ']'"),
        (f"postgresql://u:{SECRET}@h]st/db", "outside an IPv6 host"),
        (f"postgresql://u:{SECRET[:3]}/{SECRET[3:]}@host/db", "holds a raw '/', '?' or '#'"),
        (f"postgresql://u:{SECRET[:3]}#{SECRET[3:]}@host/db", "holds a raw '/', '?' or '#'"),
        (f"postgresql://u:{SECRET[:3]}?{SECRET[3:]}@host/db", "holds a raw '/', '?' or '#'"),
        (f"postgresql://u:{SECRET[:3]}@{SECRET[3:]}@host/db", "more than one '@'"),
        (f"postgresql://u:{SECRET}%zz@host/db", "'%' is not followed by two hex digits"),
        (f"postgresql://u:{SECRET}@host/db#x", "no fragment"),
        (f"postgresql://u:{SECRET}@host/d\nb", "control character"),
        (f"postgresql://u:{SECRET}@h1:5432,h2:5433/db", "several hosts with ports"),
        (f"postgresql://u:{SECRET}@ho\uff03st/db", "characters a URL may not"),
        ("mysql://u@host/db", "expected `sqlite`"),
    ],
)
def test_a_malformed_postgres_url_is_refused_without_its_password(
    tmp_path: Path, url: str, expected: str
) -> None:
    with pytest.raises(ValueError) as raised:
        check_postgres_url(url)
    assert expected in str(raised.value)
    with pytest.raises(ConfigError) as invalid:
        load(tmp_path, checkpointer=url)
    message = str(invalid.value)  # what the CLI prints
    line = next(line for line in message.splitlines() if "checkpointer: " in line)
    assert expected in line
    for piece in (SECRET, SECRET[:3], SECRET[3:]):
        assert piece not in message


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{SECRET}@host:5432/db",
        f"postgres://u:{SECRET}@host/db?sslmode=require",
        f"postgresql://u:{SECRET[:3]}%2F%23%3F%40%25{SECRET[3:]}@host/db",
        f"postgresql://u:{SECRET}@[::1]:5432/db",
        f"postgresql://u:{SECRET}@h1,h2:5433/db",
        "postgresql://%2Fvar%2Frun%2Fpostgresql/db",
        "postgresql:///db",
        "postgresql://host:/db",
        "postgresql://user@host/db?user=me%40corp",
    ],
)
def test_a_well_formed_postgres_url_is_kept_and_shown_redacted(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = epic(checkpointer=f"  {url} ")
    assert config.checkpointer == url
    assert config.checkpointer_url() == url
    shown = config.model_dump(mode="json")["checkpointer"]
    assert shown == redact_url(url) and SECRET not in shown


def test_a_malformed_url_in_the_named_variable_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BMAD_TEST_BAD_PG", f"postgresql://u:{SECRET[:3]}/{SECRET[3:]}@host/db")
    config = epic(checkpointer="$BMAD_TEST_BAD_PG")
    with pytest.raises(ConfigError, match="checkpointer: BMAD_TEST_BAD_PG: the user") as raised:
        config.checkpointer_url()
    assert SECRET[:3] not in str(raised.value) and SECRET[3:] not in str(raised.value)


@pytest.mark.parametrize(
    "url",
    [
        f"https://u:{SECRET[:3]}/{SECRET[3:]}@hooks.example:99999/x",
        f"https://u:{SECRET}@hooks.example:99999/x",
        f"https://u:{SECRET}@hooks.example:abc/x",
        f"https://u:{SECRET}@[::1/x",
        f"https://u:{SECRET}@hooks.example/x\n",
    ],
)
def test_a_webhook_url_that_cannot_be_read_is_refused_without_its_password(
    tmp_path: Path, url: str
) -> None:
    """It once passed `validate`, then `--dry-run` crashed quoting a piece of the password."""
    with pytest.raises(ConfigError) as invalid:
        load(tmp_path, notify={"webhook": url})
    message = str(invalid.value)
    assert "notify.webhook" in message
    for piece in (SECRET, SECRET[:3], SECRET[3:]):
        assert piece not in message
