"""Which stories may start now: dependencies first, the listed order, no waves.

A story becomes ready as soon as every dependency it has in the run is done. When a story ends
without being done, every story that depends on it (directly or not) is skipped, each saying
which dependency it waited for.
"""

from __future__ import annotations

import graphlib
from collections.abc import Callable, Mapping, Sequence


class Schedule:
    """The stories of one run and their dependencies, handed out in a startable order."""

    def __init__(
        self,
        stories: Sequence[str],
        dependencies: Mapping[str, Sequence[str]],
        *,
        done_outside: Callable[[str], bool],
    ) -> None:
        """`done_outside(dep)` says whether a dependency that is not in the run is Done."""
        self.order = {story: index for index, story in enumerate(stories)}
        inside = {s: [d for d in dependencies.get(s, ()) if d in self.order] for s in stories}
        self.dependants: dict[str, list[str]] = {s: [] for s in stories}
        for story, deps in inside.items():
            for dep in deps:
                self.dependants[dep].append(story)
        self._sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter(inside)
        self._sorter.prepare()
        self._ready: list[str] = []
        self.skipped: dict[str, str] = {}  # story -> why it will not start
        for story in stories:
            for dep in dependencies.get(story, ()):
                if dep not in self.order and not done_outside(dep):
                    self._skip(story, f"depends on {dep}, which is not selected and not Done")

    def next(self) -> str | None:
        """The next story to start (listed order among the ready), or None for now."""
        self._ready += self._sorter.get_ready()
        self._ready.sort(key=self.order.__getitem__)
        while self._ready:
            story = self._ready.pop(0)
            if story not in self.skipped:
                return story
        return None

    def finished(self, story: str, *, done: bool, result: str) -> None:
        """`story` ended: its dependants may start, or are skipped when it is not done."""
        if done:
            self._sorter.done(story)
            return
        for dependant in self.dependants[story]:
            self._skip(dependant, f"depends on {story}, which {result}")

    def _skip(self, story: str, reason: str) -> None:
        if story in self.skipped:
            return
        self.skipped[story] = reason
        for dependant in self.dependants[story]:
            self._skip(dependant, f"depends on {story}, which skipped")
