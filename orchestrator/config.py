"""epic.yaml: what to run, validated before anything starts.

Every error names the field and the problem (`stories[1].depends_on: unknown story '9.9'`), so a
typo costs a second, not a night of agent time.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.defaults import (
    DEFAULT_LOG_MAX_BYTES,
    DEFAULT_NUDGES,
    DEFAULT_PREFIX,
    DEFAULT_SETTLE,
    DEFAULT_SOCKET,
    STATE_DIR_NAME,
)
from orchestrator.errors import ConfigError
from orchestrator.profiles import ProfileName, PromptVia

StageKey = Literal["sm", "po", "dev", "qa"]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*$", re.I)
_SIZE_UNITS = {
    **{"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9},
    **{"kib": 2**10, "mib": 2**20, "gib": 2**30},
}
# Story ids become file names and tmux session names: letters, digits and single separators.
_STORY_ID = re.compile(r"^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$")
MAX_STORY_ID = 64
MAX_VALUES = 100_000


def parse_duration(value: Any) -> Any:
    """Seconds as a number, or a string such as `90s`, `10m`, `1.5h`."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 600, 90s or 10m")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"expected a duration such as 600, 90s or 10m, got {value!r}")


def parse_size(value: Any) -> Any:
    """Bytes as a number, or a string such as `500KB`, `64MiB`, `1GB`."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 64MB")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and (match := _SIZE.match(value)):
        unit = (match.group(2) or "B").lower()
        return int(float(match.group(1)) * _SIZE_UNITS[unit])
    raise ValueError(f"expected a size such as 1048576, 500KB or 64MiB, got {value!r}")


def check_story_id(value: Any) -> str:
    """A story id as a string, or ValueError saying what is wrong with it."""
    if isinstance(value, bool):
        raise ValueError('a story id must be a string such as "1.1"')
    if isinstance(value, float):
        # YAML reads 1.10 as the number 1.1: refuse rather than run the wrong story.
        raise ValueError(
            f'story id {value!r} must be quoted, e.g. "{value}" (YAML made it a number)'
        )
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f'a story id must be a string such as "1.1", got {value!r}')
    if len(value) > MAX_STORY_ID:
        raise ValueError(f"story id {value[:20]!r}... is longer than {MAX_STORY_ID} characters")
    if not _STORY_ID.match(value):
        raise ValueError(
            f"story id {value!r} may only hold letters, digits and single '.', '_' or '-' "
            "between them (it names files and tmux sessions)"
        )
    return value


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
ByteSize = Annotated[int, BeforeValidator(parse_size), Field(ge=1024)]
StoryId = Annotated[str, BeforeValidator(check_story_id)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentConfig(_Strict):
    command: str | list[str] | None = None
    profile: ProfileName = "claude"
    flags: list[str] = Field(default_factory=list)
    ready_timeout: Duration | None = None
    prompt_via: PromptVia = "argv"
    settle: Annotated[float, BeforeValidator(parse_duration), Field(ge=0)] = DEFAULT_SETTLE
    nudges: int = Field(default=DEFAULT_NUDGES, ge=0)


class StageConfig(_Strict):
    timeout: Duration | None = None
    stall_timeout: Duration | None = None
    max_attempts: int | None = Field(default=None, ge=1)
    prompt: str | None = None
    agent: AgentConfig | None = None

    @field_validator("prompt")
    @classmethod
    def _known_placeholders(cls, value: str | None) -> str | None:
        if value is not None:
            from orchestrator.stages import check_template

            check_template(value)
        return value


class StoryEntry(_Strict):
    id: StoryId
    depends_on: list[StoryId] = Field(default_factory=list)


def _story_entry(value: Any) -> Any:
    return value if isinstance(value, dict) else {"id": value}


class TmuxConfig(_Strict):
    socket: str = Field(default=DEFAULT_SOCKET, pattern=r"^[A-Za-z0-9_.-]+$")
    session_prefix: str = Field(default=DEFAULT_PREFIX, pattern=r"^[A-Za-z0-9_-]+$")


class LogsConfig(_Strict):
    max_size: ByteSize = DEFAULT_LOG_MAX_BYTES


class EpicConfig(_Strict):
    """The validated epic.yaml; `project` and `state_dir` are absolute after `load_epic`."""

    project: Path = Path(".")
    stories: list[Annotated[StoryEntry, BeforeValidator(_story_entry)]] = Field(min_length=1)
    parallel: int = Field(default=1, ge=1)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    stages: dict[StageKey, StageConfig] = Field(default_factory=dict)
    max_revisions: int = Field(default=1, ge=0)
    max_fix_rounds: int = Field(default=2, ge=0)
    concerns: Literal["pass", "fail"] = "pass"
    po_conditional: Literal["approve", "reject"] = "approve"
    tmux: TmuxConfig = Field(default_factory=TmuxConfig)
    logs: LogsConfig = Field(default_factory=LogsConfig)
    state_dir: Path = Path(STATE_DIR_NAME)
    source: Path | None = Field(default=None, exclude=True)
    sha256: str = Field(default="", exclude=True)

    @model_validator(mode="after")
    def _check_stories(self) -> EpicConfig:
        from orchestrator.sessions import sanitise

        seen: dict[str, str] = {}
        for index, story in enumerate(self.stories):
            key = sanitise(story.id)
            if key in seen:
                raise ValueError(
                    f"stories[{index}]: story {story.id!r} repeats {seen[key]!r} "
                    "(ids must be unique, also after '.' becomes '-' in session names)"
                )
            seen[key] = story.id
        ids = {s.id for s in self.stories}
        for index, story in enumerate(self.stories):
            for dep in story.depends_on:
                if dep not in ids:
                    raise ValueError(f"stories[{index}].depends_on: unknown story {dep!r}")
                if dep == story.id:
                    raise ValueError(
                        f"stories[{index}].depends_on: story {dep!r} depends on itself"
                    )
        cycle = _find_cycle({s.id: s.depends_on for s in self.stories})
        if cycle:
            raise ValueError(f"stories: dependency cycle {' -> '.join(cycle)}")
        return self

    @property
    def story_ids(self) -> list[str]:
        return [s.id for s in self.stories]

    def dependencies(self) -> dict[str, list[str]]:
        return {s.id: list(s.depends_on) for s in self.stories}


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in graph[node]:
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return None


def _expanded_size(value: Any, limit: int) -> int:
    """How many values `value` holds with aliases expanded, counting no further than `limit`.

    YAML aliases share objects, so a small file can stand for 10**9 values ("billion laughs");
    validating them would take hours.
    """
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


def _describe(error: ValidationError, source: Path) -> str:
    lines = [f"{source}: invalid epic configuration"]
    for item in error.errors():
        parts: list[str] = []
        for piece in item["loc"]:
            if isinstance(piece, int):
                parts.append(f"[{piece}]")
            elif piece.startswith("function-") or piece in ("str", "list[str]", "dict[str,any]"):
                continue
            else:
                parts.append(f".{piece}" if parts else piece)
        where = "".join(parts)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = f"unknown key {str(item['loc'][-1])!r}"
        lines.append(f"  {where}: {message}" if where else f"  {message}")
    return "\n".join(lines)


def load_epic(path: Path) -> EpicConfig:
    """Read, validate and resolve an epic.yaml; raises ConfigError naming field and problem."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
        raw = yaml.safe_load(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be an epic configuration") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with at least 'stories'")
    if _expanded_size(raw, MAX_VALUES) > MAX_VALUES:
        raise ConfigError(
            f"{path}: more than {MAX_VALUES} values once YAML aliases are expanded; "
            "an epic configuration is far smaller"
        )
    for internal in ("source", "sha256"):
        if internal in raw:
            raise ConfigError(f"{path}: invalid epic configuration\n  unknown key {internal!r}")
    try:
        config = EpicConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    base = path.resolve().parent
    project = (base / config.project).resolve()
    if not project.is_dir():
        raise ConfigError(f"{path}: project: folder {project} does not exist")
    state_dir = config.state_dir if config.state_dir.is_absolute() else project / config.state_dir
    return config.model_copy(
        update={
            "project": project,
            "state_dir": Path(os.path.abspath(state_dir)),
            "source": path.resolve(),
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
        }
    )
