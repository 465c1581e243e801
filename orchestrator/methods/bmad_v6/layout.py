"""Where a BMad v6 project keeps its files, which v6 it is, and how its skills are called.

v6 installs under `_bmad/`: `_config/manifest.yaml` (always present since 6.0, with
`installation.version`), `bmm/config.yaml` (paths stored with a literal `{project-root}/`
prefix) and, since 6.4, `config.toml` whose `[modules.bmm]` table and the pinned overrides in
`custom/config.toml` win over the YAML. The story cycle is a set of skills (6.1+) or commands
(6.0.x) installed per agent CLI.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from orchestrator.errors import ProjectError, YamlFileError
from orchestrator.yamlfile import load_yaml

INSTALL_DIR = Path("_bmad")
MANIFEST_FILE = INSTALL_DIR / "_config" / "manifest.yaml"
BMM_CONFIG = INSTALL_DIR / "bmm" / "config.yaml"
CONFIG_TOML = INSTALL_DIR / "config.toml"
CUSTOM_TOML = INSTALL_DIR / "custom" / "config.toml"
PROJECT_ROOT = "{project-root}"
DEFAULT_OUTPUT = "_bmad-output"
CLASSIC_SKILLS = ("bmad-create-story", "bmad-dev-story", "bmad-code-review")
BUILD_SKILL = "bmad-build-auto"
INSTALL_HINT = "npx bmad-method install --modules bmm --tools claude-code"
# Where each agent CLI finds v6 skills (6.1+); 6.0.x installed Claude commands instead.
SKILL_DIRS: Mapping[str, tuple[str, ...]] = {
    "claude": (".claude/skills",),
    "codex": (".agents/skills",),
    "gemini": (".agents/skills", ".gemini/skills"),
}
COMMANDS_DIR = ".claude/commands"  # 6.0.x: /bmad-bmm-create-story and the like
SUPPORTED = ((6, 0, 0), (7, 0, 0))  # from 6.0.0 up to (not including) 7
BUILD_SINCE = (6, 11, 0)
Flavour = Literal["classic", "build"]


class V6ConfigError(ProjectError):
    """The project's v6 configuration exists but cannot be used."""


def version_tuple(version: str) -> tuple[int, int, int] | None:
    """`6.10.0` (or `6.10.0-beta.2`) as numbers; None when it is no version."""
    match = re.match(r"^\s*v?(\d+)\.(\d+)\.(\d+)", version)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def installed_version(root: Path) -> str | None:
    """`installation.version` from the manifest, if it can be read."""
    try:
        data = load_yaml(root / MANIFEST_FILE)
    except (OSError, YamlFileError):
        return None
    install = data.get("installation") if isinstance(data, dict) else None
    version = install.get("version") if isinstance(install, dict) else None
    return str(version) if version is not None else None


def is_v6(root: Path) -> bool:
    """Whether `root` holds a v6 install (`_bmad/`)."""
    return (root / INSTALL_DIR).is_dir()


def skill_installed(root: Path, skill: str) -> bool:
    """Whether any agent CLI of the project has `skill` (or its 6.0.x command)."""
    dirs = {folder for folders in SKILL_DIRS.values() for folder in folders}
    if any((root / folder / skill / "SKILL.md").is_file() for folder in dirs):
        return True
    command = skill.replace("bmad-", "bmad-bmm-", 1)
    return (root / COMMANDS_DIR / f"{command}.md").is_file()


def detect_flavour(root: Path) -> Flavour:
    """`classic` when the create-story, dev-story and code-review skills are installed, `build`
    when only `bmad-build-auto` is; classic otherwise (preflight then names what is missing)."""
    if all(skill_installed(root, skill) for skill in CLASSIC_SKILLS):
        return "classic"
    return "build" if skill_installed(root, BUILD_SKILL) else "classic"


def _resolve(root: Path, value: object, field: str) -> Path:
    """A configured folder: `{project-root}/x` or a relative `x`, inside the project."""
    if not isinstance(value, str) or not value.strip():
        raise V6ConfigError(f"{BMM_CONFIG}: {field} must be a folder path, not {value!r}")
    text = value.strip()
    if text.startswith(PROJECT_ROOT):
        text = text[len(PROJECT_ROOT) :].lstrip("/")
    path = (root / text).resolve()
    if path != root and root not in path.parents:
        raise V6ConfigError(
            f"{BMM_CONFIG}: {field} {value!r} is outside the project {root}; the orchestrator "
            "writes sprint-status.yaml there and will not write outside the project"
        )
    return path


def _toml_bmm(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise V6ConfigError(f"{path.name}: cannot be read ({exc})") from None
    found: dict[str, Any] = {}
    for table in (data.get("core"), (data.get("modules") or {}).get("bmm")):
        if isinstance(table, dict):
            found.update(table)
    return found


@dataclass(frozen=True)
class V6Layout:
    """A v6 project's folders (absolute) and its installed version."""

    root: Path
    version: str | None
    output: Path
    implementation: Path
    planning: Path

    @property
    def sprint_status(self) -> Path:
        """`{implementation_artifacts}/sprint-status.yaml`, written by sprint-planning."""
        return self.implementation / "sprint-status.yaml"

    @property
    def deferred_work(self) -> Path:
        """Where code-review also lists deferred findings."""
        return self.implementation / "deferred-work.md"

    def relative(self, path: Path) -> str:
        """`path` relative to the project root, for prompts and reports."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    @classmethod
    def load(cls, root: Path) -> V6Layout:
        """Read `bmm/config.yaml`, then `config.toml` and the pinned `custom/config.toml`."""
        root = Path(root).resolve()
        config: dict[str, Any] = {}
        try:
            loaded = load_yaml(root / BMM_CONFIG)
        except FileNotFoundError:
            loaded = {}
        except (OSError, YamlFileError) as exc:
            raise V6ConfigError(f"{BMM_CONFIG}: cannot be read ({exc})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise V6ConfigError(f"{BMM_CONFIG}: expected a mapping of settings")
        config.update(loaded or {})
        config.update(_toml_bmm(root / CONFIG_TOML))
        config.update(_toml_bmm(root / CUSTOM_TOML))
        output = _resolve(root, config.get("output_folder", DEFAULT_OUTPUT), "output_folder")
        out = f"{PROJECT_ROOT}/{output.relative_to(root)}"
        for key in ("implementation_artifacts", "planning_artifacts"):
            if isinstance(config.get(key), str):  # module.yaml's own default form
                config[key] = config[key].replace("{output_folder}", out)
        default_impl = f"{out}/implementation-artifacts"
        default_plan = f"{out}/planning-artifacts"
        return cls(
            root=root,
            version=installed_version(root),
            output=output,
            implementation=_resolve(
                root,
                config.get("implementation_artifacts", default_impl),
                "implementation_artifacts",
            ),
            planning=_resolve(
                root, config.get("planning_artifacts", default_plan), "planning_artifacts"
            ),
        )
