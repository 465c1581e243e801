"""epic.yaml: what to run, validated before anything starts.

Every error names the field and the problem (`stories[1].depends_on: unknown story '9.9'`), so a
typo costs a second, not a night of agent time. The `agent:` and `stages:` sections are the
runtime context's own models (`state.context`), handed to the story graph as they are.
"""

from __future__ import annotations

import graphlib
import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from orchestrator.agents.prices import ModelPrice
from orchestrator.app.ids import CONTROL, check_story_id
from orchestrator.app.notify import NotifySettings
from orchestrator.app.urls import EXPECTED, check_postgres_url, is_postgres_url
from orchestrator.defaults import (
    DEFAULT_LOG_MAX_BYTES,
    DEFAULT_PREFIX,
    DEFAULT_SOCKET,
    STATE_DIR_NAME,
)
from orchestrator.errors import ConfigError, YamlFileError
from orchestrator.methods import DEFAULT_METHOD, MethodName, detect_method, get_method
from orchestrator.redaction import redact_url
from orchestrator.stages import GateName, StageName
from orchestrator.state.context import (
    AgentSettings,
    GitSettings,
    Isolation,
    Settings,
    StageSettings,
    StoryContext,
)
from orchestrator.state.story import Budget, StoryPolicy
from orchestrator.tmux.names import sanitise
from orchestrator.units import ByteSize
from orchestrator.yamlfile import load_text

NESTED = "nested too deeply to be an epic configuration"


StoryId = Annotated[str, BeforeValidator(check_story_id)]


HostName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][\w.-]{0,62}$")]


class StoryEntry(Settings):
    """One story of the epic, the stories it waits for, and (on Temporal) the host it runs on."""

    id: StoryId
    depends_on: list[StoryId] = Field(default_factory=list)
    host: HostName | None = None


class TemporalSettings(Settings):
    """Where the Temporal server is, and the hosts stories are spread over (round-robin)."""

    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    hosts: list[HostName] = Field(default_factory=list)


def _story_entry(value: Any) -> Any:
    return value if isinstance(value, dict) else {"id": value}


class TmuxSettings(Settings):
    """The tmux server the agents run on, and their session names."""

    socket: str = Field(default=DEFAULT_SOCKET, pattern=r"^[A-Za-z0-9_.-]+$")
    session_prefix: str = Field(default=DEFAULT_PREFIX, pattern=r"^[A-Za-z0-9_-]+$")

    @field_validator("socket")
    @classmethod
    def _a_name(cls, value: str) -> str:
        if set(value) == {"."}:
            raise ValueError(f"{value!r} is a folder, not a socket name")
        return value


class LogSettings(Settings):
    """The pane logs."""

    max_size: ByteSize = DEFAULT_LOG_MAX_BYTES


_ENV_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


class EpicConfig(Settings):
    """The validated epic.yaml; `project` and `state_dir` are absolute after `load_epic`."""

    project: Path = Path(".")
    method: MethodName = DEFAULT_METHOD
    stories: list[Annotated[StoryEntry, BeforeValidator(_story_entry)]] = Field(min_length=1)
    parallel: int = Field(default=1, ge=1)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    stages: dict[StageName, StageSettings] = Field(default_factory=dict)
    max_revisions: int = Field(default=StoryPolicy().max_revisions, ge=0)
    max_fix_rounds: int = Field(default=StoryPolicy().max_fix_rounds, ge=0)
    concerns: Literal["pass", "fail"] = "pass"
    po_conditional: Literal["approve", "reject"] = "approve"
    # None: `worktree` when parallel > 1 and the project is in a git repository, else `shared`.
    isolation: Isolation | None = None
    git: GitSettings = Field(default_factory=GitSettings)
    max_merge_rounds: int = Field(default=StoryPolicy().max_merge_rounds, ge=0)
    budget: Budget | None = None  # per story: past it the story stops after its stage
    run_budget: Budget | None = None  # per run: past it no new stage starts
    pricing: dict[str, ModelPrice] = Field(default_factory=dict)  # USD per MTok, by model id
    gates: list[GateName] = Field(default_factory=list)  # where stories wait for a person
    notify: NotifySettings = Field(default_factory=NotifySettings)
    tmux: TmuxSettings = Field(default_factory=TmuxSettings)
    logs: LogSettings = Field(default_factory=LogSettings)
    state_dir: Path = Path(STATE_DIR_NAME)
    # `sqlite` (a file in the state dir) or a Postgres URL, or `$VAR` / `${VAR}` naming the
    # environment variable that holds it (so its password need not be in epic.yaml).
    checkpointer: str = "sqlite"
    # `local`: this process runs the stories; `temporal`: a worker per host does (docs/guide.md).
    executor: Literal["local", "temporal"] = "local"
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    # The epic's name where runs share a database: its stories' locks are named by it.
    name: str | None = Field(default=None, min_length=1, max_length=200)
    source: Path | None = Field(default=None, exclude=True)
    sha256: str = Field(default="", exclude=True)

    @field_validator("state_dir", "project")
    @classmethod
    def _printable(cls, value: Path) -> Path:
        # A newline would write a second pattern into .git/info/exclude (and more).
        if CONTROL.search(str(value)):
            raise ValueError(f"{str(value)!r} holds a control character (a newline, a tab...)")
        return value

    @model_validator(mode="after")
    def _check(self) -> EpicConfig:
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
        try:
            graphlib.TopologicalSorter(self.dependencies()).prepare()
        except graphlib.CycleError as exc:
            cycle = list(reversed(exc.args[1]))
            raise ValueError(f"stories: dependency cycle {' -> '.join(cycle)}") from None
        method = get_method(self.method)
        for stage, settings in self.stages.items():
            if settings.prompt is not None:
                try:
                    method.check_prompt(settings.prompt)
                except ValueError as exc:
                    raise ValueError(f"stages.{stage}.prompt: {exc}") from None
        return self

    @property
    def story_ids(self) -> list[str]:
        """The story ids in the listed order."""
        return [s.id for s in self.stories]

    def selected(self, only: Iterable[str]) -> list[str]:
        """The stories a run covers, in the epic's order (`--only` narrows them)."""
        chosen = set(only)
        unknown = chosen - set(self.story_ids)
        if unknown:
            raise ConfigError(f"--only: unknown story {sorted(unknown)[0]!r}")
        return [s for s in self.story_ids if not chosen or s in chosen]

    @field_validator("checkpointer")
    @classmethod
    def _checkpointer(cls, value: str) -> str:
        text = value.strip()
        if text == "sqlite" or _ENV_REF.fullmatch(text):
            return text
        if is_postgres_url(text):
            return check_postgres_url(text)
        raise ValueError(EXPECTED)

    @field_serializer("checkpointer")
    def _checkpointer_shown(self, value: str) -> str:
        return value if value == "sqlite" or value.startswith("$") else redact_url(value)

    def checkpointer_url(self) -> str | None:
        """The Postgres URL (from the environment if named there), or None for SQLite."""
        text = self.checkpointer
        if text == "sqlite":
            return None
        found = _ENV_REF.fullmatch(text)
        if found is None:
            return text
        variable = found.group(1) or found.group(2)
        url = os.environ.get(variable, "").strip()
        if not url:
            raise ConfigError(f"checkpointer: environment variable {variable} is not set")
        if not is_postgres_url(url):
            raise ConfigError(f"checkpointer: {variable} does not hold a postgresql:// URL")
        try:
            return check_postgres_url(url)
        except ValueError as exc:
            raise ConfigError(f"checkpointer: {variable}: {exc}") from None

    def epic_name(self) -> str:
        """The epic's name: `name:`, else its project folder and file name."""
        if self.name:
            return self.name
        stem = self.source.stem if self.source is not None else "epic"
        return f"{self.project.name}/{stem}"

    def dependencies(self) -> dict[str, list[str]]:
        """Each story's dependencies, in the listed order."""
        return {s.id: list(s.depends_on) for s in self.stories}

    @property
    def branch(self) -> str:
        """The integration branch: `git.branch`, or `bmad/{epic file stem}`."""
        from orchestrator.git.checks import default_branch

        stem = self.source.stem if self.source is not None else "epic"
        return self.git.branch or default_branch(stem)

    def story_context(
        self,
        run_id: str,
        *,
        simulate: bool = False,
        adopt: bool = False,
        isolation: Isolation = "shared",
    ) -> StoryContext:
        """The story graph's runtime context for a run of this epic."""
        agent, stages = self.agent, self.stages
        if simulate:  # every agent becomes the simulated agent, with the same turn settings
            agent = agent.simulated()
            stages = {
                name: settings.model_copy(
                    update={"agent": settings.agent.simulated() if settings.agent else None}
                )
                for name, settings in stages.items()
            }
        return StoryContext(
            project=self.project,
            method=self.method,
            socket=self.tmux.socket,
            session_prefix=self.tmux.session_prefix,
            state_dir=self.state_dir,
            run_id=run_id,
            agent=agent,
            stages=stages,
            adopt_live_sessions=adopt,
            log_max_bytes=self.logs.max_size,
            isolation=isolation,
            git=self.git.model_copy(update={"branch": self.branch}),
            pricing=self.pricing,
            run_budget=self.run_budget,
        )

    def story_policy(self) -> StoryPolicy:
        """The bounds the story graph's routing obeys."""
        return StoryPolicy(
            max_attempts={
                stage: settings.max_attempts
                for stage, settings in self.stages.items()
                if settings.max_attempts is not None
            },
            max_revisions=self.max_revisions,
            max_fix_rounds=self.max_fix_rounds,
            concerns=self.concerns,
            po_conditional=self.po_conditional,
            max_merge_rounds=self.max_merge_rounds,
            budget=self.budget,
            gates=list(dict.fromkeys(self.gates)),
            stages=list(get_method(self.method).stages),
        )


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
    path = Path(path)
    try:
        text = path.read_text()
        raw = load_text(text, source=str(path))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from None
    except YamlFileError as exc:
        raise ConfigError(str(exc).replace("nested too deeply", NESTED)) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with at least 'stories'")
    for internal in ("source", "sha256"):
        if internal in raw:
            raise ConfigError(f"{path}: invalid epic configuration\n  unknown key {internal!r}")
    if "method" not in raw and isinstance(raw.get("project", "."), str):
        folder = (path.resolve().parent / str(raw.get("project", "."))).resolve()
        if folder.is_dir():
            raw = {**raw, "method": detect_method(folder)}
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
