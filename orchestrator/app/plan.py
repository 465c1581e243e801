"""`--dry-run`: what a run would do, stage by stage, without starting anything."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.app.config import EpicConfig
from orchestrator.methods import StageRequest, StartAt, get_method
from orchestrator.stages import STAGES
from orchestrator.tmux.names import session_name


def plan(
    config: EpicConfig,
    selected: Sequence[str],
    *,
    parallel: int,
    simulate: bool = False,
    start_at: StartAt | None = None,
) -> str:
    """The plan as text: each story's start, and per stage its session, agent and prompt."""
    from orchestrator.app.isolation import choose_isolation

    method = get_method(config.method)
    project = method.open(config.project)
    context = config.story_context("dry-run", simulate=simulate)
    isolation, note = choose_isolation(config, parallel)
    if isolation == "worktree":
        where = f"isolation: worktree (each story on {config.branch}--<story>, merged into "
        where += f"{config.branch}; worktrees in {config.state_dir / 'worktrees'})"
    else:
        where = "isolation: shared (every story works in the project folder)"
    lines = [
        f"epic: {config.source}",
        f"project: {config.project}",
        f"method: {config.method}",
        f"checkpointer: {config.model_dump(mode='json')['checkpointer']}",
        f"state dir: {config.state_dir}",
        f"tmux socket: {config.tmux.socket}   parallel: {parallel}",
        where,
        *([note] if note else []),
        *project.describe(),
        "",
    ]
    for story in config.stories:
        if story.id not in selected:
            continue
        standing = project.standing(story.id, start_at=start_at)
        deps = f" after {', '.join(story.depends_on)}" if story.depends_on else ""
        start = standing.start
        if start is None:
            lines.append(f"story {story.id}{deps}: not started: {standing.reason}")
            continue
        lines.append(f"story {story.id}{deps}: starts at {start}")
        if start == "done":
            continue
        story_file = project.story_file(story.id)
        stages = [s for s in STAGES[STAGES.index(start) :] if s in method.stages]
        for stage in stages:
            request = StageRequest(stage, story.id, story_file)
            prompt = project.prompt(request, context.stage(stage).prompt)
            profile = context.profile(stage)
            name = session_name(config.tmux.session_prefix, stage, story.id)
            lines.append(f"  {stage}: session {name}")
            lines.append(f"    agent: {' '.join(profile.command)} ({profile.name})")
            lines.append(f"    timeout: {context.timeout(stage):g}s")
            lines.append("    prompt: " + prompt.replace("\n", "\n            "))
    return "\n".join(lines)
