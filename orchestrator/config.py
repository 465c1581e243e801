"""epic.yaml: what to run, validated before anything starts.

Every error names the field and the problem (`stories[1].depends_on: unknown story '9.9'`), so a
typo costs a second, not a night of agent time.
"""

from __future__ import annotations

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

from orchestrator.profiles import ProfileName

StageKey = Literal["sm", "po", "dev", "qa"]
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ConfigError(ValueError):
    """epic.yaml is missing, unreadable or invalid; the message says where and why."""


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


def _story_id(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError('a story id must be a string such as "1.1"')
    if isinstance(value, float):
        # YAML reads 1.10 as the number 1.1: refuse rather than run the wrong story.
        raise ValueError(
            f'story id {value!r} must be quoted, e.g. "{value}" (YAML made it a number)'
        )
    if isinstance(value, int):
        return str(value)
    return value


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
StoryId = Annotated[str, BeforeValidator(_story_id), Field(min_length=1, pattern=r"^\S+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentConfig(_Strict):
    command: str | list[str] | None = None
    profile: ProfileName = "claude"
    flags: list[str] = Field(default_factory=list)
    ready_timeout: Duration | None = None


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
    socket: str = Field(default="bmad", pattern=r"^[A-Za-z0-9_.-]+$")
    session_prefix: str = Field(default="bmad", pattern=r"^[A-Za-z0-9_-]+$")


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
    tmux: TmuxConfig = Field(default_factory=TmuxConfig)
    state_dir: Path = Path(".bmad-orchestrator")
    source: Path | None = Field(default=None, exclude=True)

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
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with at least 'stories'")
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
        update={"project": project, "state_dir": state_dir.resolve(), "source": path.resolve()}
    )
