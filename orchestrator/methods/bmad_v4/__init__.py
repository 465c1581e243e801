"""The BMad Method v4 (`.bmad-core/`): its files, conventions and checks.

The readers and writers are public too, for tools that want BMad v4's files as real agents
write them (`read_story_status`, `find_gate`, `read_po_decisions`...).
"""

from orchestrator.methods.bmad_v4.conventions import (
    SAMPLE_FIELDS,
    StageBaseline,
    check_stage_output,
    default_prompt,
    nudge_prompt,
    prompt_fields,
    render_prompt,
    take_baseline,
    watch_dirs,
)
from orchestrator.methods.bmad_v4.gates import (
    Gate,
    find_gate,
    gate_files,
    newest_gate,
    read_gate_file,
    read_gate_text,
    read_story_gates,
    resolve_gate_path,
)
from orchestrator.methods.bmad_v4.names import find_story_file, slugify, story_name_matches
from orchestrator.methods.bmad_v4.paths import (
    CONFIG_FILE,
    MANIFEST_FILE,
    BmadConfigError,
    BmadPaths,
    installed_version,
)
from orchestrator.methods.bmad_v4.po import (
    add_change_log_row,
    po_report_files,
    po_report_path,
    read_po_decision_lines,
    read_po_decisions,
)
from orchestrator.methods.bmad_v4.project import BmadV4, BmadV4Project
from orchestrator.methods.bmad_v4.standing import project_checks, story_standing
from orchestrator.methods.bmad_v4.status import (
    Status,
    StoryStatus,
    WorkflowState,
    normalise_status,
    parse_state,
    read_status,
    read_story_status,
    set_status,
)

BMAD_V4 = BmadV4()

__all__ = [
    "BMAD_V4",
    "CONFIG_FILE",
    "MANIFEST_FILE",
    "SAMPLE_FIELDS",
    "BmadConfigError",
    "BmadPaths",
    "BmadV4",
    "BmadV4Project",
    "Gate",
    "StageBaseline",
    "Status",
    "StoryStatus",
    "WorkflowState",
    "add_change_log_row",
    "check_stage_output",
    "default_prompt",
    "find_gate",
    "find_story_file",
    "gate_files",
    "installed_version",
    "newest_gate",
    "normalise_status",
    "nudge_prompt",
    "parse_state",
    "po_report_files",
    "po_report_path",
    "project_checks",
    "prompt_fields",
    "read_gate_file",
    "read_gate_text",
    "read_po_decision_lines",
    "read_po_decisions",
    "read_status",
    "read_story_gates",
    "read_story_status",
    "render_prompt",
    "resolve_gate_path",
    "set_status",
    "slugify",
    "story_name_matches",
    "story_standing",
    "take_baseline",
    "watch_dirs",
]
