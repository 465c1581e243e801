"""What a story graph's nodes need from outside the state: the runtime context.

Handed in through LangGraph's `context_schema` (never globals), so a parent graph or a test
passes its own project, tmux socket and agent. The same pydantic models are the `agent:` and
`stages:` sections of epic.yaml, so the runner hands them on as they are, and a context arriving
as JSON (LangGraph Studio, the HTTP API) is validated like epic.yaml. The tmux manager and the
method's project are built from these fields on first use.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, field_validator

from orchestrator.agents.clis.base import Activation
from orchestrator.agents.prices import ModelPrice, price_table
from orchestrator.agents.profiles import AgentProfile, ProfileName, PromptVia, make_profile
from orchestrator.agents.usage import RunLedger
from orchestrator.defaults import (
    DEFAULT_LOG_MAX_BYTES,
    DEFAULT_NUDGES,
    DEFAULT_PREFIX,
    DEFAULT_SETTLE,
    DEFAULT_SETUP_TIMEOUT,
    DEFAULT_SOCKET,
    DEFAULT_STALL_TIMEOUT,
    DEFAULT_TIMEOUTS,
    STATE_DIR_NAME,
)
from orchestrator.methods import DEFAULT_METHOD, MethodName, Project, get_method
from orchestrator.stages import StageName
from orchestrator.state.story import Budget
from orchestrator.units import Duration, QuietTime

if TYPE_CHECKING:
    from orchestrator.git import Worktrees
    from orchestrator.tmux import TmuxAgentManager

Isolation = Literal["worktree", "shared"]
DEFAULT_INTEGRATION_BRANCH = "bmad/integration"  # the runner names it after the epic file


class Settings(BaseModel):
    """Settings as epic.yaml spells them: unknown keys are errors, values do not change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentSettings(Settings):
    """Which agent CLI runs a stage, and how its turns are read."""

    profile: ProfileName = "claude"
    command: str | list[str] | None = None
    flags: list[str] = Field(default_factory=list)
    ready_timeout: Duration | None = None
    prompt_via: PromptVia = "argv"
    settle: QuietTime = DEFAULT_SETTLE
    nudges: int = Field(default=DEFAULT_NUDGES, ge=0)
    # How the CLI calls up a BMad agent; None: the profile's own way (slash for claude, ...).
    activation: Activation | None = None

    def build(self) -> AgentProfile:
        """The runtime profile of this agent."""
        return make_profile(
            self.profile,
            self.command,
            flags=self.flags,
            ready_timeout=self.ready_timeout,
            prompt_via=self.prompt_via,
            activation=self.activation,
        )

    def simulated(self) -> AgentSettings:
        """The same agent rehearsed by the simulated agent (its flags kept if it is one)."""
        flags = self.flags if self.profile == "simulated" else []
        return self.model_copy(
            update={"profile": "simulated", "command": None, "flags": flags, "ready_timeout": None}
        )


class StageSettings(Settings):
    """One stage's budget and overrides; a missing value means the default."""

    timeout: Duration | None = None
    stall_timeout: Duration | None = DEFAULT_STALL_TIMEOUT  # null: no stall timer
    max_attempts: int | None = Field(default=None, ge=1)
    prompt: str | None = None
    agent: AgentSettings | None = None  # replaces the epic's agent for this stage


def _commands(value: Any) -> Any:
    """`git.setup` as one command (`["npm", "ci"]`) or several (`[["npm", "ci"], [...]]`)."""
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return [value]
    return value


def check_branch_name(value: Any) -> Any:
    """A branch name git accepts (the rules of `git check-ref-format --branch`)."""
    if not isinstance(value, str):
        return value
    bad = (
        not value
        or len(value) > 200
        or value.startswith(("-", "/", "."))
        or value.endswith(("/", ".", ".lock"))
        or any(part.startswith(".") or part.endswith(".lock") for part in value.split("/"))
        or any(token in value for token in ("..", "//", "@{", "\\"))
        or value in ("@", "HEAD")  # HEAD: git's name for the checked-out commit
        or any(ord(c) < 0x21 or c in "~^:?*[\x7f" for c in value)
    )
    if bad:
        raise ValueError(f"{value!r} is not a valid git branch name")
    return value


BranchName = Annotated[str, BeforeValidator(check_branch_name)]


class GitSettings(Settings):
    """Branches and merges when stories run in worktrees of their own."""

    branch: BranchName | None = None
    setup: Annotated[list[list[str]], BeforeValidator(_commands)] = Field(default_factory=list)
    setup_timeout: Duration = DEFAULT_SETUP_TIMEOUT
    merge_into: BranchName | None = None

    @field_validator("setup")
    @classmethod
    def _no_empty_command(cls, value: list[list[str]]) -> list[list[str]]:
        if any(not command or not command[0] for command in value):
            raise ValueError("a setup command needs at least a program name")
        return value


class StoryContext(Settings):
    """Runtime settings for the story graph's nodes."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    project: Path = Path(".")
    method: MethodName = DEFAULT_METHOD
    socket: str = DEFAULT_SOCKET
    session_prefix: str = DEFAULT_PREFIX
    state_dir: Path | None = None
    run_id: str | None = None
    agent: AgentSettings = Field(default_factory=AgentSettings)
    stages: dict[StageName, StageSettings] = Field(default_factory=dict)
    # Resume: a live session of the same stage is adopted, not killed and restarted.
    adopt_live_sessions: bool = False
    log_max_bytes: int = DEFAULT_LOG_MAX_BYTES
    # worktree: each story in a git worktree and branch of its own, merged by `integrate`.
    isolation: Isolation = "shared"
    git: GitSettings = Field(default_factory=GitSettings)
    # USD per million tokens by model id, over the shipped table (`orchestrator.agents.prices`).
    pricing: dict[str, ModelPrice] = Field(default_factory=dict)
    run_budget: Budget | None = None  # past it, no new stage starts in this run
    _built: dict[str, Any] = PrivateAttr(default_factory=dict)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def stage(self, stage: str) -> StageSettings:
        """The stage's settings (defaults when the context names none)."""
        return self.stages.get(stage) or StageSettings()  # type: ignore[call-overload]

    def timeout(self, stage: str) -> float:
        """The stage's time budget in seconds."""
        return self.stage(stage).timeout or DEFAULT_TIMEOUTS[stage]

    def agent_for(self, stage: str) -> AgentSettings:
        """The agent that runs `stage`: the stage's own, or the epic's."""
        return self.stage(stage).agent or self.agent

    def profile(self, stage: str) -> AgentProfile:
        """The runtime profile of the agent that runs `stage`."""
        return self.agent_for(stage).build()

    def manager(self) -> TmuxAgentManager:
        """The tmux manager, built once (blocking: call it from a worker thread)."""
        from orchestrator.tmux import TmuxAgentManager

        with self._lock:
            if "manager" not in self._built:
                self._built["manager"] = TmuxAgentManager(
                    self.project,
                    socket=self.socket,
                    prefix=self.session_prefix,
                    state_dir=self.state_dir,
                    run_id=self.run_id,
                    log_max_bytes=self.log_max_bytes,
                )
            manager: TmuxAgentManager = self._built["manager"]
            return manager

    def method_project(self, root: Path | None = None) -> Project:
        """The method bound to the project (or to its copy at `root`, a story's worktree), built
        once per folder (blocking: reads its config)."""
        folder = (root or self.project).resolve()
        with self._lock:
            key = f"project:{folder}"
            if key not in self._built:
                self._built[key] = get_method(self.method).open(folder)
            project: Project = self._built[key]
            return project

    def prices(self) -> dict[str, ModelPrice]:
        """The price table: the shipped one with this context's prices over it."""
        return price_table(self.pricing)

    def ledger(self) -> RunLedger:
        """The run's usage so far, shared by every story of the run (built once)."""
        with self._lock:
            if "ledger" not in self._built:
                self._built["ledger"] = RunLedger()
            ledger: RunLedger = self._built["ledger"]
            return ledger

    def worktrees(self) -> Worktrees | None:
        """The run's worktrees under `isolation: worktree`, built once; None when shared."""
        if self.isolation != "worktree":
            return None
        from orchestrator.agents.clis import SESSION_FILES
        from orchestrator.git import Worktrees

        with self._lock:
            if "worktrees" not in self._built:
                project = get_method(self.method).open(self.project.resolve())
                self._built["worktrees"] = Worktrees(
                    self.project,
                    self.state_dir or self.project / STATE_DIR_NAME,
                    branch=self.git.branch or DEFAULT_INTEGRATION_BRANCH,
                    install=project.install_paths(),
                    setup=self.git.setup,
                    setup_timeout=self.git.setup_timeout,
                    merge_drivers=project.merge_drivers(),
                    session_files=SESSION_FILES,
                )
            worktrees: Worktrees = self._built["worktrees"]
            return worktrees
