"""Worktrees, commits and merges against real git repositories (no tmux, no agent)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.agents.clis import SESSION_FILES
from orchestrator.agents.codework import keep_both, resolve_conflicts
from orchestrator.errors import GitError, IsolationError
from orchestrator.git import (
    INTEGRATION,
    Worktrees,
    begin_resolve,
    bring_home,
    check_repository,
    commit,
    default_branch,
    merge_story,
    unresolved,
)
from orchestrator.git.checks import ignore_pattern
from tests.helpers import git, git_repo, tree_snapshot, write

INSTALL = (".bmad-*", ".claude", "AGENTS.md")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed project (its path holds a space and shell syntax: nothing may interpret it),
    with a BMad-like install that git ignores or does not track, as a real install leaves it."""
    root = tmp_path / "my project $(touch pwned)"
    write(root / "src" / "app.txt", "".join(f"line {n}\n" for n in range(1, 11)))
    write(root / ".gitignore", "# BMAD (local only)\n.bmad-core/\n")
    git_repo(root)
    write(root / ".bmad-core" / "core-config.yaml", "devStoryLocation: docs/stories\n")
    write(root / ".claude" / "commands" / "BMad" / "agents" / "dev.md", "# dev\n")
    os.symlink("agents/dev.md", root / ".claude" / "commands" / "BMad" / "dev-link.md")
    write(root / "AGENTS.md", "# agents\n")
    write(root / "notes.txt", "the user's own untracked file\n")
    return root


def trees(repo: Path, **options: object) -> Worktrees:
    state = repo / ".bmad-orchestrator"
    return Worktrees(repo, state, branch="bmad/epic", install=INSTALL, **options)  # type: ignore[arg-type]


def test_a_story_worktree_starts_from_the_integration_branch_and_the_users_tree_is_untouched(
    repo: Path,
) -> None:
    before = tree_snapshot(repo)
    head = git(repo, "rev-parse", "HEAD")
    t = trees(repo)
    workspace = t.story("1.1")
    assert workspace.root == repo / ".bmad-orchestrator" / "worktrees" / "1.1"
    assert git(workspace.root, "branch", "--show-current").strip() == "bmad/epic--1.1"
    assert git(repo, "rev-parse", "bmad/epic") == head
    assert (workspace.root / "src" / "app.txt").read_text().startswith("line 1\n")
    assert (repo / "pwned").exists() is False and (Path.cwd() / "pwned").exists() is False
    assert tree_snapshot(repo) == before
    assert git(repo, "branch", "--show-current").strip() == "main"
    assert git(repo, "status", "--porcelain") == "?? .claude/\n?? AGENTS.md\n?? notes.txt\n"
    assert t.story("1.1") == workspace  # a second call reuses it


def test_the_install_is_copied_into_each_worktree_and_never_committed(repo: Path) -> None:
    t = trees(repo)
    workspace = t.story("1.1")
    root = workspace.root
    assert (
        root / ".bmad-core" / "core-config.yaml"
    ).read_text() == "devStoryLocation: docs/stories\n"
    assert (root / ".claude" / "commands" / "BMad" / "agents" / "dev.md").is_file()
    link = root / ".claude" / "commands" / "BMad" / "dev-link.md"
    assert link.is_symlink() and os.readlink(link) == "agents/dev.md"  # copied as a link
    assert (root / "AGENTS.md").is_file()
    assert not (root / "notes.txt").exists()  # the user's other untracked files stay home
    write(root / "src" / "new.txt", "work\n")
    made = commit(t, workspace, "bmad(1.1): dev implemented")
    assert made is not None
    assert git(root, "show", "--name-only", "--format=", made).split() == ["src/new.txt"]
    # An agent's own `git add -A` in its session skips the copies too.
    env = {**os.environ, **t.session_env()}
    subprocess.run(["git", "add", "-A"], cwd=root, env=env, check=True)
    staged = subprocess.run(
        ["git", "status", "--porcelain"], cwd=root, env=env, capture_output=True, text=True
    )
    assert staged.stdout == ""


def test_a_clis_session_file_in_a_worktree_is_never_committed(repo: Path) -> None:
    t = trees(repo, session_files=SESSION_FILES)
    workspace = t.story("1.1")
    hook = workspace.root / ".github" / "hooks" / "bmad-orchestrator-bmad-dev-1-1.json"
    write(hook, "{}\n")  # Copilot's hook file, there while its session runs
    write(workspace.root / ".github" / "hooks" / "theirs.json", "{}\n")  # the user's own
    env = {**os.environ, **t.session_env()}
    subprocess.run(["git", "add", "-A"], cwd=workspace.root, env=env, check=True)
    staged = subprocess.run(
        ["git", "status", "--porcelain"], cwd=workspace.root, env=env, capture_output=True,
        text=True,
    ).stdout  # fmt: skip
    assert staged.split() == ["A", ".github/hooks/theirs.json"]


def test_the_state_dir_is_kept_out_of_git_once(tmp_path: Path) -> None:
    root = tmp_path / "project"
    write(root / "README.md", "x\n")
    git_repo(root)
    trees(root).prepare()
    trees(root).prepare()
    exclude = (root / ".git" / "info" / "exclude").read_text()
    assert exclude.count("/.bmad-orchestrator/\n") == 1
    assert git(root, "status", "--porcelain") == ""


def test_merges_are_no_ff_and_name_the_story(repo: Path) -> None:
    t = trees(repo)
    workspace = t.story("1.1")
    write(workspace.root / "src" / "one.txt", "one\n")
    commit(t, workspace, "bmad(1.1): dev implemented")
    result = merge_story(t, workspace, "bmad: merge story 1.1")
    assert result.merged and result.commit is not None
    assert git(repo, "log", "-1", "--format=%s", "bmad/epic") == "bmad: merge story 1.1\n"
    assert len(git(repo, "log", "-1", "--format=%P", "bmad/epic").split()) == 2  # no fast-forward
    assert t.merged("1.1")
    t.remove(workspace, delete_branch=True)
    assert not workspace.root.exists()
    assert git(repo, "branch", "--list", "bmad/epic--1.1") == ""
    assert (t.prepare().root / "src" / "one.txt").read_text() == "one\n"


def test_a_conflict_is_aborted_cleanly_then_resolved_in_the_story_worktree(repo: Path) -> None:
    t = trees(repo)
    first, second = t.story("1.1"), t.story("1.2")
    for workspace in (first, second):
        with (workspace.root / "src" / "app.txt").open("a") as handle:
            handle.write(f"story {workspace.name}\n")
        commit(t, workspace, f"bmad({workspace.name}): dev implemented")
    assert merge_story(t, first, "bmad: merge story 1.1").merged
    tip = git(repo, "rev-parse", "bmad/epic")
    result = merge_story(t, second, "bmad: merge story 1.2")
    assert not result.merged and result.conflicts == ("src/app.txt",)
    integration = t.prepare()
    assert git(repo, "rev-parse", "bmad/epic") == tip  # no half merge
    assert t.git(integration).run("status", "--porcelain") == ""
    assert not (repo / ".git" / "worktrees" / INTEGRATION / "MERGE_HEAD").exists()

    files = begin_resolve(t, second, "bmad(1.2): merge bmad/epic")
    assert files == ["src/app.txt"]
    assert begin_resolve(t, second, "again") == ["src/app.txt"]  # idempotent
    assert commit(t, second, "must not land") is None  # markers are never committed
    text = (second.root / "src" / "app.txt").read_text()
    git(second.root, "add", "src/app.txt")  # staged with its markers: still unresolved
    assert unresolved(t, second, files) == ["src/app.txt"]
    (second.root / "src" / "app.txt").write_text(keep_both(text))
    assert unresolved(t, second, files) == []
    assert commit(t, second, "bmad(1.2): dev implemented") is not None
    assert merge_story(t, second, "bmad: merge story 1.2").merged
    final = (t.prepare().root / "src" / "app.txt").read_text()
    assert final.endswith("line 10\nstory 1.2\nstory 1.1\n")  # the story's side first


def test_the_simulated_dev_resolves_by_keeping_both_sides(repo: Path) -> None:
    t = trees(repo)
    first, second = t.story("1.1"), t.story("1.2")
    for workspace in (first, second):
        write(workspace.root / "src" / "app.txt", f"only {workspace.name}\n")
        commit(t, workspace, "edit")
    merge_story(t, first, "m")
    begin_resolve(t, second, "m")
    assert resolve_conflicts(second.project) == ["src/app.txt"]
    text = (second.root / "src" / "app.txt").read_text()
    assert "only 1.1\n" in text and "only 1.2\n" in text and "<<<" not in text


def test_cleanup_removes_merged_work_and_keeps_unmerged_branches_and_their_worktrees(
    repo: Path,
) -> None:
    t = trees(repo)
    merged, unmerged, dirty = t.story("1.1"), t.story("1.2"), t.story("1.3")
    for workspace in (merged, unmerged, dirty):
        write(workspace.root / f"{workspace.name}.txt", "x\n")
        commit(t, workspace, "work")
    merge_story(t, merged, "m")
    write(dirty.root / "uncommitted.txt", "not yet\n")
    said = trees(repo).cleanup()
    assert any("merged branch bmad/epic--1.1" in line for line in said)
    assert any("branch bmad/epic--1.2: it is not merged" in line for line in said)
    assert any("1.3: it has uncommitted changes" in line for line in said)
    assert any(f"{INTEGRATION} (branch bmad/epic kept)" in line for line in said)
    branches = git(repo, "branch", "--list", "bmad/*", "--format=%(refname:short)").split()
    assert branches == ["bmad/epic", "bmad/epic--1.2", "bmad/epic--1.3"]
    assert not merged.root.exists() and unmerged.root.exists() and dirty.root.exists()
    assert (dirty.root / "uncommitted.txt").read_text() == "not yet\n"
    git(repo, "worktree", "remove", "--force", str(unmerged.root))  # the user drops the folder
    again = trees(repo).story("1.2")  # a later run checks the kept branch out again
    assert (again.root / "1.2.txt").exists()


def test_setup_runs_once_per_new_worktree_without_a_shell(repo: Path, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    script = (
        "import os, sys; "
        "open(os.path.join(sys.argv[1], os.path.basename(os.getcwd())), 'a').write('x')"
    )
    t = trees(repo, setup=[[sys.executable, "-c", script, str(marks)]])
    t.story("1.1")
    t.story("1.1")
    assert (marks / "1.1").read_text() == "x"
    failing = trees(repo, setup=[[sys.executable, "-c", "raise SystemExit(3)"]])
    with pytest.raises(GitError, match="exited 3"):
        failing.story("1.2")
    missing = trees(repo, setup=[["no-such-program-here"]])
    with pytest.raises(GitError, match="not on PATH"):
        missing.story("1.3")


def test_refusals_say_why_and_how_to_go_on(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(IsolationError, match="not in one: run `git init"):
        check_repository(plain, new_run=True)
    unborn = tmp_path / "unborn"
    unborn.mkdir()
    git(unborn, "init", "-q")
    with pytest.raises(IsolationError, match="no commit yet"):
        check_repository(unborn, new_run=True)
    root = tmp_path / "repo"
    write(root / "a.txt", "a\n")
    write(root / "epic.yaml", "stories: ['1.1']\n")
    git_repo(root)
    write(root / "untracked.txt", "fine\n")
    write(root / "epic.yaml", "stories: ['1.1', '1.2']\n")  # editing the epic itself is fine
    assert check_repository(root, new_run=True, epic=root / "epic.yaml") == root
    write(root / "a.txt", "changed\n")
    with pytest.raises(IsolationError, match=r"uncommitted changes to tracked files \(a.txt\)"):
        check_repository(root, new_run=True, epic=root / "epic.yaml")
    git(root, "add", "a.txt")  # staged counts too
    with pytest.raises(IsolationError, match="git stash"):
        check_repository(root, new_run=True)
    assert check_repository(root, new_run=False) == root  # a resume goes on
    write(root / ".gitignore", "ignored/\n")
    write(root / "ignored" / "x.txt", "x\n")
    with pytest.raises(IsolationError, match="tracks nothing"):
        check_repository(root / "ignored", new_run=False)


def test_a_branch_checked_out_by_the_user_is_never_taken(repo: Path) -> None:
    git(repo, "branch", "bmad/epic")
    git(repo, "switch", "-q", "bmad/epic")
    with pytest.raises(IsolationError, match="is checked out in"):
        trees(repo).prepare()


def test_bring_home_merges_only_into_a_clean_checkout(repo: Path) -> None:
    t = trees(repo)
    workspace = t.story("1.1")
    write(workspace.root / "one.txt", "one\n")
    commit(t, workspace, "work")
    merge_story(t, workspace, "m")
    git(repo, "branch", "release")  # checked out nowhere: merged in a moment's worktree
    assert bring_home(t, "release").startswith("merged bmad/epic into release")
    assert git(repo, "show", "release:one.txt") == "one\n"
    assert [p.name for p in t.folder.iterdir()] == ["1.1", INTEGRATION]
    write(repo / "src" / "app.txt", "the user's edit\n")
    assert "has uncommitted changes" in bring_home(t, "main")
    assert not (repo / "one.txt").exists()
    git(repo, "checkout", "-q", "--", "src/app.txt")
    assert bring_home(t, "main").startswith("merged bmad/epic into main")
    assert (repo / "one.txt").read_text() == "one\n"
    assert "already holds everything" in bring_home(t, "main")


def test_names_and_patterns() -> None:
    assert default_branch("epic") == "bmad/epic"
    assert default_branch("My Epic (v2)") == "bmad/My-Epic-v2"
    assert default_branch("..") == "bmad/epic"
    assert ignore_pattern("a*b/[x]") == "/a\\*b/\\[x]"


def test_a_project_in_a_subfolder_gets_its_untracked_install_and_commits_skip_it(
    tmp_path: Path,
) -> None:
    root = tmp_path / "monorepo"
    write(root / "app" / "src" / "main.txt", "x\n")
    write(root / "other" / "lib.txt", "y\n")
    git_repo(root)
    project = root / "app"
    write(project / ".bmad-core" / "core-config.yaml", "devStoryLocation: docs/stories\n")
    write(project / ".bmad-infrastructure-devops" / "config.yaml", "x\n")  # an expansion pack
    t = Worktrees(project, project / ".bmad-orchestrator", branch="bmad/e", install=INSTALL)
    workspace = t.story("1.1")
    assert workspace.project == workspace.root / "app"
    assert (workspace.project / ".bmad-core" / "core-config.yaml").is_file()
    assert (workspace.project / ".bmad-infrastructure-devops" / "config.yaml").is_file()
    assert (workspace.root / "other" / "lib.txt").is_file()  # the whole repository is there
    write(workspace.project / "src" / "new.txt", "work\n")
    made = commit(t, workspace, "work")
    assert made is not None
    assert git(workspace.root, "show", "--name-only", "--format=", made).split() == [
        "app/src/new.txt"
    ]
    assert "/app/.bmad-*\n" in t.excludes_file.read_text()
