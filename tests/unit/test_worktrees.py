import logging
import subprocess
from pathlib import Path

import pytest

from mpg_tui.core.workspace import Removal
from mpg_tui.worktrees import (
    WORKTREES_DIR,
    WorktreeError,
    WorktreeManager,
    branch_name,
    git_environment,
    is_safe_name,
    worktree_name,
)

CRAFTED_KEYS = [
    "../../etc",
    "..",
    ".",
    "",
    "a/../../b",
    "x; rm -rf /",
    "name with spaces",
    "line\nbreak",
    "-rf",
    "--force",
    "123:../../escape",
    "123:-pm",
    "foo.lock",
    "trailing.",
    "@{upstream}",
    "a~1^2:3?*[",
    "back\\slash",
    "tab\there",
    "ünïcödé",
    "x" * 300,
    ".hidden",
]


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True, env=git_environment()
    )
    return result.stdout


def branches(repo: Path) -> list[str]:
    return sorted(git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/mpg/").split())


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "README.md").write_text("hello\n")
    git(root, "add", "README.md")
    git(root, "-c", "user.name=Test", "-c", "user.email=test@example.invalid", "commit", "--quiet", "-m", "init")
    return root.resolve()


@pytest.fixture
def manager() -> WorktreeManager:
    return WorktreeManager(timeout_s=30)


def test_plain_keys_use_mpg_layout() -> None:
    assert worktree_name("123456") == "123456"
    assert worktree_name("123456:engineer") == "123456-engineer"
    assert branch_name("123456:engineer") == "mpg/123456-engineer"


@pytest.mark.parametrize("key", CRAFTED_KEYS)
def test_crafted_keys_become_one_safe_component_and_a_valid_branch(key: str) -> None:
    name = worktree_name(key)
    assert is_safe_name(name)
    assert "/" not in name and "\\" not in name and not name.startswith(("-", "."))
    check = subprocess.run(["git", "check-ref-format", "--branch", branch_name(key)], capture_output=True)
    assert check.returncode == 0, branch_name(key)


def test_different_crafted_keys_do_not_share_a_worktree() -> None:
    names = {worktree_name(key) for key in CRAFTED_KEYS}
    assert len(names) == len(CRAFTED_KEYS)
    assert worktree_name("a;b") != worktree_name("a b")


async def test_creates_worktree_on_its_branch(repo: Path, manager: WorktreeManager) -> None:
    workspace = await manager.ensure(repo, "111:engineer")
    expected = repo / WORKTREES_DIR / "111-engineer"
    assert workspace.worktree_path == expected and workspace.cwd == expected
    assert workspace.project_dir == repo
    assert (expected / "README.md").read_text() == "hello\n"
    assert git(expected, "rev-parse", "--abbrev-ref", "HEAD").strip() == "mpg/111-engineer"


async def test_worktrees_do_not_show_as_untracked_in_the_users_repo(repo: Path, manager: WorktreeManager) -> None:
    await manager.ensure(repo, "111")
    await manager.ensure(repo, "222")
    assert git(repo, "status", "--porcelain") == ""
    exclude = (repo / ".git" / "info" / "exclude").read_text()
    assert exclude.count(".worktrees/") == 1


async def test_existing_worktree_is_reused(repo: Path, manager: WorktreeManager) -> None:
    first = await manager.ensure(repo, "111")
    assert first.worktree_path is not None
    (first.worktree_path / "work.txt").write_text("in progress")
    second = await manager.ensure(repo, "111")
    assert second == first
    assert (first.worktree_path / "work.txt").read_text() == "in progress"


async def test_existing_branch_is_reattached(repo: Path, manager: WorktreeManager) -> None:
    first = await manager.ensure(repo, "111")
    assert first.worktree_path is not None
    (first.worktree_path / "new.txt").write_text("x")
    git(first.worktree_path, "add", "new.txt")
    git(first.worktree_path, "-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "work")
    git(repo, "worktree", "remove", "--force", str(first.worktree_path))  # the directory is gone, the branch stays
    again = await manager.ensure(repo, "111")
    assert again.worktree_path is not None
    assert (again.worktree_path / "new.txt").read_text() == "x"


async def test_remove_deletes_worktree_and_branch(repo: Path, manager: WorktreeManager) -> None:
    workspace = await manager.ensure(repo, "111:pm")
    assert workspace.worktree_path is not None
    (workspace.worktree_path / "dirty.txt").write_text("uncommitted")
    assert await manager.remove(repo, "111:pm") == Removal(removed=True)
    assert not workspace.worktree_path.exists()
    assert branches(repo) == []
    assert "111-pm" not in git(repo, "worktree", "list", "--porcelain")


async def test_reconcile_removes_only_orphans(repo: Path, manager: WorktreeManager) -> None:
    await manager.ensure(repo, "known")
    await manager.ensure(repo, "orphan:qa")
    git(repo, "branch", "mpg/branch-only")
    stale = repo / WORKTREES_DIR / "stale"
    stale.mkdir()
    (stale / ".git").write_text("gitdir: /nowhere\n")  # a worktree git has forgotten
    foreign = repo / WORKTREES_DIR / "not-ours"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")

    removed = await manager.reconcile(repo, ["known"])

    assert removed == ["branch-only", "orphan-qa", "stale"]
    assert branches(repo) == ["mpg/known"]
    assert (repo / WORKTREES_DIR / "known").is_dir()
    assert not (repo / WORKTREES_DIR / "orphan-qa").exists()
    assert not stale.exists()
    assert (foreign / "notes.txt").read_text() == "keep me"


def commit(worktree: Path, name: str) -> str:
    (worktree / name).write_text(name)
    git(worktree, "add", name)
    git(worktree, "-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", f"add {name}")
    return git(worktree, "rev-parse", "HEAD").strip()


async def test_remove_keeps_a_branch_with_unmerged_commits_under_kept(repo: Path, manager: WorktreeManager) -> None:
    workspace = await manager.ensure(repo, "111:pm")
    assert workspace.worktree_path is not None
    work = commit(workspace.worktree_path, "feature.txt")

    assert await manager.remove(repo, "111:pm") == Removal(removed=True, kept_branch="mpg/kept/111-pm")

    assert not workspace.worktree_path.exists()
    assert branches(repo) == ["mpg/kept/111-pm"]
    assert git(repo, "rev-parse", "mpg/kept/111-pm").strip() == work
    # The same session made again, and killed again with new work: both are kept.
    again = await manager.ensure(repo, "111:pm")
    assert again.worktree_path is not None
    commit(again.worktree_path, "more.txt")
    assert (await manager.remove(repo, "111:pm")).kept_branch == "mpg/kept/111-pm-2"


async def test_remove_deletes_a_branch_whose_commits_were_merged(repo: Path, manager: WorktreeManager) -> None:
    workspace = await manager.ensure(repo, "111")
    assert workspace.worktree_path is not None
    commit(workspace.worktree_path, "feature.txt")
    git(repo, "merge", "--quiet", "--ff-only", "mpg/111")
    assert await manager.remove(repo, "111") == Removal(removed=True)
    assert branches(repo) == []


async def test_reconcile_keeps_unmerged_orphans_and_never_touches_kept_branches(
    repo: Path, manager: WorktreeManager, caplog: pytest.LogCaptureFixture
) -> None:
    orphan = await manager.ensure(repo, "orphan")
    assert orphan.worktree_path is not None
    commit(orphan.worktree_path, "unmerged.txt")
    git(repo, "branch", "mpg/kept/earlier")

    with caplog.at_level(logging.WARNING, logger="mpg_tui.worktrees"):
        assert await manager.reconcile(repo, []) == ["orphan"]
        assert await manager.reconcile(repo, []) == []

    assert branches(repo) == ["mpg/kept/earlier", "mpg/kept/orphan"]
    assert not orphan.worktree_path.exists()
    assert "kept branch mpg/orphan as mpg/kept/orphan" in caplog.text
    assert "1 commit(s) not in the current branch main" in caplog.text


@pytest.mark.parametrize("key", ["../../outside", "x; touch pwned", "-rf", "a\nb", ".."])
async def test_crafted_keys_stay_inside_worktrees_dir(repo: Path, manager: WorktreeManager, key: str) -> None:
    workspace = await manager.ensure(repo, key)
    assert workspace.worktree_path is not None
    assert workspace.worktree_path.parent == repo / WORKTREES_DIR
    assert workspace.worktree_path.is_dir()
    assert sorted(p.name for p in repo.parent.iterdir()) == ["project"]
    assert (await manager.remove(repo, key)).removed
    assert branches(repo) == []


async def test_non_git_directory_is_used_plainly(tmp_path: Path, manager: WorktreeManager) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    workspace = await manager.ensure(plain, "111")
    assert workspace.worktree_path is None and workspace.cwd == plain.resolve()
    assert not (plain / WORKTREES_DIR).exists()
    assert await manager.reconcile(plain, []) == []
    assert await manager.remove(plain, "111") == Removal(removed=False)


async def test_sub_directory_project_works_in_the_same_sub_directory(repo: Path, manager: WorktreeManager) -> None:
    sub = repo / "services" / "api"
    sub.mkdir(parents=True)
    (sub / "main.py").write_text("print()\n")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@example.invalid", "commit", "-qm", "api")
    workspace = await manager.ensure(sub, "111")
    assert workspace.worktree_path == sub / WORKTREES_DIR / "111"
    assert workspace.cwd == workspace.worktree_path / "services" / "api"
    assert (workspace.cwd / "main.py").is_file()


async def test_something_else_in_the_way_is_a_clear_error(repo: Path, manager: WorktreeManager) -> None:
    blocker = repo / WORKTREES_DIR / "111"
    blocker.mkdir(parents=True)
    (blocker / "precious.txt").write_text("mine")
    with pytest.raises(WorktreeError, match="exists and is not a git worktree"):
        await manager.ensure(repo, "111")
    fallback = await manager.workspace(repo, "111")
    assert fallback.worktree_path is None and fallback.cwd == repo
    assert (blocker / "precious.txt").read_text() == "mine"


async def test_git_failure_falls_back_to_the_project_directory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    project = tmp_path / "p"
    (project / ".git").mkdir(parents=True)  # looks like a repository, so git is asked
    manager = WorktreeManager(git=str(tmp_path / "no-such-git"))
    with pytest.raises(WorktreeError, match="was not found"):
        await manager.ensure(project, "111")
    workspace = await manager.workspace(project, "111")
    assert workspace.cwd == project.resolve() and workspace.worktree_path is None
    assert "no worktree for session 111" in caplog.text


async def test_repository_without_commits_falls_back(tmp_path: Path, manager: WorktreeManager) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "--quiet")
    workspace = await manager.workspace(empty, "111")
    assert workspace.worktree_path is None and workspace.cwd == empty.resolve()


def test_git_environment_drops_secrets_and_repository_overrides() -> None:
    env = git_environment({"DISCORD_BOT_TOKEN": "t", "GIT_DIR": "/elsewhere", "PATH": "/bin"})
    assert "DISCORD_BOT_TOKEN" not in env and "GIT_DIR" not in env
    assert env["PATH"] == "/bin" and env["GIT_TERMINAL_PROMPT"] == "0"


async def test_whether_a_project_is_a_repository_is_asked_once_per_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = WorktreeManager()
    asked: list[Path] = []
    real = manager._find_repo

    async def counting(root: Path) -> object:
        asked.append(root)
        return await real(root)

    monkeypatch.setattr(manager, "_find_repo", counting)
    for key in ("111", "222", "333:pm"):
        workspace = await manager.ensure(tmp_path, key)
        assert workspace.worktree_path is None  # a plain directory
    assert asked == [tmp_path.absolute()]


async def test_a_plain_directory_is_known_without_starting_git(tmp_path: Path) -> None:
    manager = WorktreeManager(git=str(tmp_path / "no-such-git"))  # any git process would fail loudly
    workspace = await manager.ensure(tmp_path, "111")
    assert workspace.worktree_path is None and workspace.cwd == tmp_path.absolute()
    assert await manager.reconcile(tmp_path, []) == []
