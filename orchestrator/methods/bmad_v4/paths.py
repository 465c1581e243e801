"""Where a BMad v4 project keeps its files, from `.bmad-core/core-config.yaml`, and its version."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import ProjectError, YamlFileError
from orchestrator.yamlfile import load_yaml

CONFIG_FILE = Path(".bmad-core") / "core-config.yaml"
MANIFEST_FILE = Path(".bmad-core") / "install-manifest.yaml"
DEFAULT_STORIES = "docs/stories"
DEFAULT_QA = "docs/qa"
DEFAULT_SLASH_PREFIX = "BMad"


class BmadConfigError(ProjectError):
    """The project's core-config.yaml exists but cannot be used."""


@dataclass(frozen=True)
class BmadPaths:
    """The folders a BMad v4 project keeps its stories and QA output in (absolute)."""

    root: Path
    stories: Path
    qa: Path
    slash_prefix: str = DEFAULT_SLASH_PREFIX
    config: Mapping[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def gates(self) -> Path:
        """QA gate files: `{qaLocation}/gates`."""
        return self.qa / "gates"

    @property
    def assessments(self) -> Path:
        """QA (and PO) reports: `{qaLocation}/assessments`."""
        return self.qa / "assessments"

    @property
    def gate_dirs(self) -> tuple[Path, ...]:
        """Where real QA agents put gate files: the configured folder first, then the places
        agents reach by taking `qa.qaLocation/gates` literally or by writing into .bmad-core."""
        return (
            self.gates,
            self.root / "qa" / "qaLocation" / "gates",
            self.root / "qa.qaLocation" / "gates",
            self.root / ".bmad-core" / "qa" / "gates",
        )

    @classmethod
    def load(cls, root: Path) -> BmadPaths:
        """Read `.bmad-core/core-config.yaml` if present; the v4 defaults fill the gaps."""
        root = Path(root).resolve()
        config: dict[str, object] = {}
        config_file = root / CONFIG_FILE
        if config_file.exists():
            try:
                loaded = load_yaml(config_file) or {}
            except (OSError, YamlFileError) as exc:
                raise BmadConfigError(str(exc)) from None
            if not isinstance(loaded, dict):
                raise BmadConfigError(f"{config_file}: expected a mapping at the top level")
            config = loaded
        qa = config.get("qa")
        if qa is not None and not isinstance(qa, dict):
            # `qa: some/dir` would silently send the gate search to docs/qa.
            raise BmadConfigError(
                f"{config_file}: qa must be a mapping with qaLocation, got {qa!r}"
            )
        qa_location = qa.get("qaLocation") if isinstance(qa, dict) else None
        stories = _config_str(config_file, "devStoryLocation", config.get("devStoryLocation"))
        qa_dir = _config_str(config_file, "qa.qaLocation", qa_location)
        return cls(
            root=root,
            stories=_inside(root, config_file, "devStoryLocation", stories or DEFAULT_STORIES),
            qa=_inside(root, config_file, "qa.qaLocation", qa_dir or DEFAULT_QA),
            slash_prefix=_config_str(config_file, "slashPrefix", config.get("slashPrefix"))
            or DEFAULT_SLASH_PREFIX,
            config=config,
        )

    def relative(self, path: Path) -> str:
        """`path` relative to the project root when it is inside it."""
        try:
            return str(Path(path).resolve().relative_to(self.root))
        except ValueError:
            return str(path)


def _inside(root: Path, config_file: Path, key: str, value: str) -> Path:
    """`root / value`, refused when it resolves outside the project (`..`, absolute, links)."""
    folder = root / value
    if not folder.resolve().is_relative_to(root):
        raise BmadConfigError(
            f"{config_file}: {key} {value!r} points outside the project {root}; "
            "agents and the orchestrator only write inside the project"
        )
    return folder


def _config_str(config_file: Path, key: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BmadConfigError(f"{config_file}: {key} must be a non-empty string, got {value!r}")
    return value.strip()


def installed_version(root: Path) -> str | None:
    """The BMad version `install-manifest.yaml` records, if it can be read."""
    try:
        data = load_yaml(Path(root) / MANIFEST_FILE)
    except (OSError, YamlFileError):
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return str(version) if version is not None else None


def version_tuple(version: str) -> tuple[int, ...] | None:
    """`4.44.3` -> (4, 44, 3); None when it is not a dotted version."""
    match = re.match(r"^\s*v?(\d+(?:\.\d+)*)", version)
    return tuple(int(part) for part in match.group(1).split(".")) if match else None
