"""One file watcher per event loop, shared by every waiter.

Each watchfiles `awatch` holds an anyio worker thread and anyio allows 40, so 50 stories each
with their own watcher would queue. Waiters subscribe to directories and are woken when
something there changes, and on a periodic tick that also covers the race of a file written
before the watch was registered.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Iterable
from pathlib import Path

STEP_MS = 10  # watchfiles' default 50 ms step means ~100 ms latency; 10 ms gives ~11 ms
TICK_MS = 500  # empty batches this often: liveness checks and missed-event insurance
IDLE_STOP = 10.0  # seconds the watch stays registered with no waiter


class Subscription:
    """A waiter's interest in some directories; `wait()` returns at the next relevant batch."""

    def __init__(self, watcher: FileWatcher, dirs: Iterable[Path]) -> None:
        self.watcher = watcher
        self.dirs = frozenset(Path(d).resolve() for d in dirs)
        self.changed: set[Path] = set()
        self._event = asyncio.Event()

    def notify(self, paths: set[Path]) -> None:
        """Wake the waiter: `paths` changed (an empty set is the periodic tick)."""
        self.changed |= paths
        self._event.set()

    async def wait(self) -> set[Path]:
        """Wait for a change or a tick; returns (and clears) the changed paths."""
        await self._event.wait()
        self._event.clear()
        changed, self.changed = self.changed, set()
        return changed

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.watcher.unsubscribe(self)


class FileWatcher:
    """One watchfiles watcher shared by all waiters of an event loop.

    Directories that do not exist yet are watched through their nearest existing ancestor; when
    one appears (or a watched one is deleted and recreated, which silences inotify) the watcher
    restarts with the new set. It outlives its last waiter by `idle_stop` seconds, so stages
    that follow each other reuse one registration instead of paying a restart each.
    """

    def __init__(
        self, *, step_ms: int = STEP_MS, tick_ms: int = TICK_MS, idle_stop: float = IDLE_STOP
    ) -> None:
        self.step_ms = step_ms
        self.tick_ms = tick_ms
        self.idle_stop = idle_stop
        self._subs: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._restart = asyncio.Event()
        self._registered: frozenset[Path] = frozenset()  # what the running watch covers
        self._idle_since = time.monotonic()
        self.registrations = 0  # how often a watch was (re-)registered

    def subscribe(self, dirs: Iterable[Path]) -> Subscription:
        """Watch `dirs` for a waiter; the watcher starts (or widens) as needed."""
        sub = Subscription(self, dirs)
        self._subs.add(sub)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="bmad-watcher")
        elif not sub.dirs <= self._registered:
            self._restart.set()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """The waiter is done; the watch stays registered a while for the next one."""
        self._subs.discard(sub)
        if not self._subs:
            self._idle_since = time.monotonic()

    def _roots(self) -> tuple[frozenset[Path], frozenset[Path]]:
        wanted = frozenset(d for sub in self._subs for d in sub.dirs)
        roots = frozenset(_nearest_existing(d) for d in wanted)
        return wanted, roots

    def _idle_expired(self) -> bool:
        return not self._subs and time.monotonic() - self._idle_since >= self.idle_stop

    async def _run(self) -> None:
        from watchfiles import awatch

        while self._subs:
            # Folders of waiters gone since the last registration are dropped here.
            wanted, roots = self._roots()
            self._registered = wanted
            self.registrations += 1
            self._restart = asyncio.Event()
            # Anything may have happened while no watch was registered: let everyone look.
            self._dispatch(set(), tick=True)
            try:
                async for batch in awatch(
                    *roots,
                    watch_filter=None,
                    recursive=False,
                    step=self.step_ms,
                    rust_timeout=self.tick_ms,
                    yield_on_timeout=True,
                    stop_event=self._restart,
                ):
                    paths = {Path(p) for _, p in batch}
                    self._dispatch(paths, tick=not batch)
                    if self._idle_expired():
                        return
                    if any(p in roots or p in wanted for p in paths) or self._moved(roots):
                        break  # a watched folder appeared, vanished or was replaced: re-register
            except FileNotFoundError:
                continue  # a root vanished between choosing it and watching it

    def _moved(self, roots: frozenset[Path]) -> bool:
        """Whether the nearest existing folders of what is registered changed."""
        return frozenset(_nearest_existing(d) for d in self._registered) != roots

    def _dispatch(self, paths: set[Path], *, tick: bool) -> None:
        if tick:
            for sub in list(self._subs):
                sub.notify(set())
            return
        by_dir: dict[Path, list[Subscription]] = {}
        for sub in self._subs:
            for folder in sub.dirs:
                by_dir.setdefault(folder, []).append(sub)
        found: dict[Subscription, set[Path]] = {}
        for path in paths:
            for folder in (path.parent, path):
                for sub in by_dir.get(folder, ()):
                    found.setdefault(sub, set()).add(path)
        for sub, relevant in found.items():
            sub.notify(relevant)


def _nearest_existing(path: Path) -> Path:
    while not path.is_dir() and path.parent != path:
        path = path.parent
    return path


_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FileWatcher] = (
    weakref.WeakKeyDictionary()
)


def shared_watcher() -> FileWatcher:
    """The watcher of the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    watcher = _shared.get(loop)
    if watcher is None:
        watcher = _shared[loop] = FileWatcher()
    return watcher
