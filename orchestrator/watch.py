"""Waiting for a stage's output: fast, cheap, and never fooled.

A wait subscribes to the folders that can complete it on the event loop's shared watcher
(`filewatch`) and re-evaluates its predicate when something there changes, and on the
watcher's periodic tick.

`wait_for_output` ends with one typed reason: done (a valid output, and the agent's turn is
over), agent_gone, timeout, stalled, cancelled or needs_input. It knows the agent only through a
small probe (`AgentProbe`), never the tmux runtime itself.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

from orchestrator.blocking import FILES
from orchestrator.filewatch import FileWatcher, shared_watcher

T = TypeVar("T")
WaitReason = Literal[
    "done", "agent_gone", "timeout", "stalled", "cancelled", "needs_input", "invalid_output"
]
TurnEnd = Literal["signal", "exit", "quiet", "immediate"]
NudgeReason = Literal["turn_end", "attention"]


def filesystem_now(folder: Path) -> int:
    """The file system's own clock, as a watermark for outputs written after this call.

    Kernel file times use a coarse clock that can lag `time.time()` by a few milliseconds, so a
    file written just after a `time.time()` watermark may look older than it. Touching a marker
    and reading its mtime puts the watermark on the same clock as the outputs it is compared to.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd, marker = tempfile.mkstemp(dir=folder, prefix=".watermark-")
    try:
        return os.fstat(fd).st_mtime_ns
    finally:
        os.close(fd)
        os.unlink(marker)


@dataclass(frozen=True)
class WaitResult(Generic[T]):
    """How a wait ended. `value` is the predicate's result when `reason == "done"`.

    `turn` says how a done wait knew the agent's turn was over: `signal` (the turn-end file was
    written after the output), `exit`, `quiet` (nothing moved for `settle`), or `immediate`
    (settle 0, or no session to watch).
    """

    reason: WaitReason
    value: T | None = None
    elapsed: float = 0.0
    exit_status: int | None = None
    last_screen: list[str] = field(default_factory=list)
    detail: str = ""
    turn: TurnEnd | None = None

    @property
    def done(self) -> bool:
        """Whether the wait ended with a valid output (and the turn over)."""
        return self.reason == "done"


class AgentProbe(Protocol):
    """What a wait needs to know about the agent session it waits on (see `tmux.sessions`)."""

    watched: list[Path]  # folders holding the session's own files (log, exit status)
    activity: list[Path]  # files whose changes mean the agent is doing something

    def exited(self) -> int | None:
        """The agent's exit status once it exited, else None."""
        ...

    async def vanished(self) -> bool:
        """Whether the session is gone (asked cheaply: it may answer from a recent look)."""
        ...

    async def screen(self) -> list[str]:
        """The last lines on the agent's screen (for the recovery log)."""
        ...


class _Signal:
    """A file the agent (or its CLI's hook) writes to say something: each write is one signal."""

    def __init__(self, path: Path | None, since_ns: int) -> None:
        self.path = path
        self.seen_ns = since_ns - 1  # a write at or after `since_ns` is new

    def written_ns(self) -> int | None:
        """When the file was last written, if it was written at all."""
        if self.path is None:
            return None
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return None

    def take(self) -> bool:
        """True once per new write (consumed: the next call needs a later write)."""
        written = self.written_ns()
        if written is None or written <= self.seen_ns:
            return False
        self.seen_ns = written
        return True


async def wait_for_output(
    check: Callable[[], T | None] | Callable[[], Awaitable[T | None]],
    *,
    watch: Iterable[Path],
    probe: AgentProbe | None = None,
    timeout: float | None = None,
    stall_timeout: float | None = None,
    cancel: asyncio.Event | None = None,
    watcher: FileWatcher | None = None,
    settle: float = 0.0,
    turn_end_file: Path | None = None,
    attention_file: Path | None = None,
    signals_since_ns: int = 0,
    nudge: Callable[[NudgeReason], Awaitable[bool]] | None = None,
) -> WaitResult[T]:
    """Wait until `check()` returns something other than None and the agent's turn is over.

    `check` runs in a worker thread (it reads files) after every change in `watch`, and on ticks.
    Without a `probe` of the agent's session (or with `settle` 0) the first valid output ends the
    wait. With one, a valid output ends it once the turn is over: the turn-end file is written at
    or after the output's own time (`value.written_ns`, when it has one), the agent exits, or
    nothing moves (its log, the watched folders) for `settle` seconds. Signals count from
    `signals_since_ns`.

    When the turn ends (or the attention file is written) with no valid output, `nudge` is
    awaited with the reason; it returns False when it may not nudge any more, which ends the wait
    as `needs_input`. The agent exiting (or its session vanishing) without output ends the wait
    at once with its exit status and last screen; its log counts as activity for
    `stall_timeout`. Task cancellation propagates after the subscription is dropped; `cancel`
    (an event) ends the wait with reason "cancelled" instead.
    """
    watcher = watcher or shared_watcher()
    started = last_activity = time.monotonic()
    turn_end = _Signal(turn_end_file if probe else None, signals_since_ns)
    attention = _Signal(attention_file if probe else None, signals_since_ns)
    outputs = {Path(d).resolve() for d in watch}
    dirs = list(outputs)
    activity_files: set[Path] = set()
    signal_files = {p.resolve() for p in (turn_end_file, attention_file) if p is not None}
    if probe is not None:
        dirs += [*probe.watched, *(p.parent for p in signal_files)]
        activity_files = {p.resolve() for p in probe.activity}
    quiet_wait = settle if probe is not None else 0.0

    def is_activity(path: Path) -> bool:
        return path.parent in outputs or path in outputs or path in activity_files

    ancestors = {parent for d in outputs for parent in d.parents}

    def concerns_us(path: Path) -> bool:
        # Other sessions' logs share our folders: their output must not re-run our check.
        # Ancestors of a watched folder count, so a folder created late is noticed.
        if path in activity_files or path in signal_files or path in outputs:
            return True
        return path in ancestors or not outputs.isdisjoint(path.parents)

    async def evaluate() -> T | None:
        if asyncio.iscoroutinefunction(check):
            return await check()
        return await FILES.run(check)  # type: ignore[arg-type]

    def result(reason: WaitReason, **kwargs: object) -> WaitResult[T]:
        return WaitResult(reason, elapsed=time.monotonic() - started, **kwargs)  # type: ignore[arg-type]

    def turn_signalled(value: T) -> bool:
        written = getattr(value, "written_ns", None)
        signalled = turn_end.written_ns()
        return (
            written is not None
            and signalled is not None
            and signalled >= max(written, signals_since_ns)
        )

    with watcher.subscribe(dirs) as sub:
        cancel_task = asyncio.ensure_future(cancel.wait()) if cancel else None
        try:
            recheck = True
            while True:
                wake_in: float | None = None
                value = await evaluate() if recheck else None
                status = probe.exited() if probe is not None and recheck else None
                if value is not None:
                    if quiet_wait <= 0:
                        return result("done", value=value, turn="immediate")
                    if turn_signalled(value):
                        return result("done", value=value, turn="signal")
                    if status is not None:
                        return result("done", value=value, turn="exit", exit_status=status)
                    quiet_for = time.monotonic() - last_activity
                    if quiet_for >= quiet_wait:
                        return result("done", value=value, turn="quiet")
                    wake_in = quiet_wait - quiet_for
                elif probe is not None and recheck:
                    gone = status is None and await probe.vanished()
                    if status is not None or gone:
                        value = await evaluate()  # output written just before exiting still counts
                        if value is not None:
                            return result("done", value=value, turn="exit", exit_status=status)
                        return result(
                            "agent_gone",
                            exit_status=status,
                            last_screen=await probe.screen() if not gone else [],
                            detail="session vanished" if gone else f"agent exited with {status}",
                        )
                    reason: NudgeReason | None = (
                        "turn_end" if turn_end.take() else "attention" if attention.take() else None
                    )
                    if reason is not None and await evaluate() is not None:
                        continue  # the output landed between the check and the signal: look again
                    if reason is not None and nudge is not None:
                        if not await nudge(reason):
                            return result(
                                "needs_input",
                                last_screen=await probe.screen(),
                                detail=f"the agent stopped ({reason.replace('_', ' ')}) "
                                "without its output, after every nudge",
                            )
                        last_activity = time.monotonic()  # it has work again
                        attention.take()  # what it asked is answered by the nudge
                now = time.monotonic()
                if timeout is not None and now - started >= timeout:
                    screen = await probe.screen() if probe is not None else []
                    return result(
                        "timeout", detail=f"no output after {timeout:g}s", last_screen=screen
                    )
                if stall_timeout is not None and now - last_activity >= stall_timeout:
                    screen = await probe.screen() if probe is not None else []
                    return result(
                        "stalled", detail=f"no activity for {stall_timeout:g}s", last_screen=screen
                    )
                if cancel is not None and cancel.is_set():
                    return result("cancelled")
                changes = asyncio.ensure_future(sub.wait())
                waits: list[asyncio.Future[Any]] = [changes]
                if cancel_task is not None:
                    waits.append(cancel_task)
                limits = [wake_in] if wake_in is not None else []
                if timeout is not None:
                    limits.append(max(0.0, timeout - (now - started)))
                try:
                    await asyncio.wait(
                        waits,
                        timeout=min(limits) if limits else None,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    changes.cancel()
                recheck = True
                if changes.done() and not changes.cancelled():
                    changed = changes.result()
                    if any(is_activity(p) for p in changed):
                        last_activity = time.monotonic()
                    # An empty batch is the periodic tick: always look then.
                    recheck = not changed or any(concerns_us(p) for p in changed)
        finally:
            if cancel_task is not None:
                cancel_task.cancel()
