"""Bounded worker threads per kind of blocking work; every call ends at a whole-operation deadline.

asyncio's default pool is shared by everything and `asyncio.run` waits for it at exit: one call
that never returns (a hung git, a stopped tmux server, a FIFO read) would hold a worker every
other kind queues behind and keep the process alive after SIGTERM. Here each kind has its own
few daemon threads, so a stuck call holds only its own kind and never delays exit, and an await
that passes its deadline raises `DeadlineExceeded` (the thread is abandoned, the caller goes on).
The standard library's and anyio's pools both join their threads at exit, hence this small one.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from orchestrator.errors import DeadlineExceeded

T = TypeVar("T")

_Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class Pool:
    """A few daemon threads for one kind of work; `run` awaits a call within its deadline."""

    def __init__(self, kind: str, *, workers: int, deadline: float) -> None:
        self.kind = kind
        self.workers = workers
        self.deadline = deadline
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Pool({self.kind!r}, workers={self.workers}, deadline={self.deadline})"

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Queue `fn(*args, **kwargs)`; a thread is started while fewer than `workers` exist."""
        future: Future[T] = Future()
        with self._lock:
            self._jobs.put((future, fn, args, kwargs))
            if self._idle == 0 and len(self._threads) < self.workers:
                thread = threading.Thread(
                    target=self._work, name=f"bmad-{self.kind}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= min(self._idle, 1)
        return future

    async def run(
        self, fn: Callable[..., T], /, *args: Any, deadline: float | None = None, **kwargs: Any
    ) -> T:
        """`fn(*args, **kwargs)` on this pool's threads; DeadlineExceeded after `deadline` s."""
        seconds = self.deadline if deadline is None else deadline
        future = self.submit(fn, *args, **kwargs)
        try:
            # Not `wait_for`: on 3.11 it drops a cancellation that meets a finished call.
            async with asyncio.timeout(seconds):
                return await asyncio.wrap_future(future)
        except TimeoutError:
            future.cancel()  # still queued: it never runs; running: its result is dropped
            name = getattr(fn, "__qualname__", repr(fn))
            raise DeadlineExceeded(
                f"{self.kind}: {name} did not return within {seconds:g} s"
            ) from None

    def _work(self) -> None:
        while True:
            future, fn, args, kwargs = self._jobs.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # handed to the awaiting caller
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1


# tmux commands: spawning, listing, capturing, typing and killing sessions.
TMUX = Pool("tmux", workers=8, deadline=60.0)
# git, and `git.setup` in a new worktree (minutes, beside other stories' commits): each command
# also carries its own deadline that stops it (see `commands`).
GIT = Pool("git", workers=4, deadline=3600.0)
# Files: the state dir, run records, output checks, usage records, signal files, pane logs.
FILES = Pool("files", workers=8, deadline=60.0)
