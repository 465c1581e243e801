"""What the runtime knows about an agent session: the session it started, and what tmux says."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.tmux.processes import owner_alive


@dataclass(frozen=True)
class AgentSession:
    """A spawned (or adopted) agent session of one stage, and the files that belong to it."""

    name: str
    pane_id: str
    stage: str
    story_id: str
    run_id: str
    attempt: int
    log_path: Path
    exit_file: Path
    started_at: datetime
    meta: dict[str, Any] = field(default_factory=dict)
    adopted: bool = False

    @property
    def screen_path(self) -> Path:
        """The last screen, saved beside the log when the session is killed."""
        return self.log_path.with_suffix(".screen.txt")

    @property
    def turn_end_file(self) -> Path:
        """Written by the agent (or its CLI's hook) at the end of each turn."""
        return self.exit_file.with_name(f"{self.name}.turn")

    @property
    def attention_file(self) -> Path:
        """Written by the agent (or its CLI's hook) when it needs a person."""
        return self.exit_file.with_name(f"{self.name}.attention")

    @property
    def submit_file(self) -> Path:
        """Written by the CLI's hook when a typed prompt was submitted (typed input's evidence)."""
        return self.exit_file.with_name(f"{self.name}.submitted")


@dataclass(frozen=True)
class SessionInfo:
    """What tmux knows about one session, read fresh from the server."""

    name: str
    stage: str
    story_id: str
    run_id: str
    attempt: int
    started_at: datetime
    running_seconds: float
    pane_id: str
    pane_pid: int | None
    alive: bool
    exit_status: int | None
    log_path: Path | None
    exit_file: Path | None
    meta: dict[str, Any] = field(default_factory=dict)
    owner: str = ""  # "pid:start" of the orchestrator process that spawned it

    @property
    def owner_alive(self) -> bool:
        """True while the process that spawned the session still runs (it is not an orphan)."""
        return owner_alive(self.owner)

    def as_session(self, *, adopted: bool = False) -> AgentSession:
        """The session as if just spawned, for whoever adopts it."""
        return AgentSession(
            name=self.name,
            pane_id=self.pane_id,
            stage=self.stage,
            story_id=self.story_id,
            run_id=self.run_id,
            attempt=self.attempt,
            log_path=self.log_path or Path(os.devnull),
            exit_file=self.exit_file or Path(os.devnull),
            started_at=self.started_at,
            meta=self.meta,
            adopted=adopted,
        )
