"""Merge drivers: programs a method gives git to merge files of its own that parallel stories
all edit (a shared status file), instead of leaving git's line conflicts to an agent.

Passed to each git command that merges (`-c core.attributesFile=... -c merge.NAME.driver=...`)
so the user's git configuration and `.gitattributes` are never changed.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from orchestrator.files import StateDir, write_private


class MergeDrivers:
    """File names and the program that merges each (called as `PROGRAM BASE OURS THEIRS`); no
    program is git's own union merge (both sides' lines kept), for files only ever appended to."""

    def __init__(self, drivers: Mapping[str, Sequence[str]], attributes: Path) -> None:
        # `%` is git's placeholder mark in a driver command, and a name is matched as a plain
        # file name: anything else is left to git's own merge.
        named = {name: argv for name, argv in drivers.items() if re.fullmatch(r"[\w.-]+", name)}
        self.union = [name for name, argv in named.items() if not argv]
        self.commands = {
            name: shlex.join(argv)
            for name, argv in named.items()
            if argv and "%" not in shlex.join(argv)
        }
        self.attributes = attributes

    def config(self) -> list[tuple[str, str]]:
        """The `-c` settings that put the drivers in force for one git command."""
        if not self.commands and not self.union:
            return []
        config = [("core.attributesFile", str(self.attributes))]
        for index, command in enumerate(self.commands.values()):
            config.append((f"merge.bmad-{index}.name", "bmad-orchestrator"))
            config.append((f"merge.bmad-{index}.driver", f"{command} %O %A %B"))
        return config

    def write(self, state: StateDir) -> None:
        """The attributes file naming which driver merges which file."""
        if self.commands or self.union:
            lines = [f"{name} merge=bmad-{i}" for i, name in enumerate(self.commands)]
            lines += [f"{name} merge=union" for name in self.union]
            write_private(state.file(self.attributes), "\n".join(lines) + "\n")
