"""Per-session git worktrees: each thread's claude works on its own branch and checkout.

For a project directory that is a git work tree, session ``<key>`` gets
``<project>/.worktrees/<name>`` on branch ``mpg/<name>``, where ``<name>`` is the key with
``:`` turned into ``-`` (MPG's layout) -- or, for a key that would not make a safe path
component and a valid branch name, a cleaned-up form plus a hash of the key. A project
that is not a git work tree is used as a plain directory.

Every git call is an argument list run as an asyncio subprocess with a timeout, in an
environment stripped of the gateway's secrets and of ``GIT_DIR``-style overrides. Calls on
one repository are serialised, since ``git worktree`` and branch updates take repository
locks. Failures raise :class:`WorktreeError`; :meth:`WorktreeManager.workspace` turns them
into a logged fall-back to the plain project directory, so a message is never lost to a
worktree problem.

A session's branch is deleted with its worktree only when it holds nothing the
project's current branch lacks. A branch with commits nobody merged is kept, renamed
to ``mpg/kept/<name>`` (logged), so ``!kill`` and the start-up clean-up never drop work.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mpg_tui.config import SECRET_ENV_NAMES
from mpg_tui.core.workspace import Removal, Workspace, WorkspaceError, Workspaces

log = logging.getLogger(__name__)

WORKTREES_DIR = ".worktrees"
BRANCH_PREFIX = "mpg/"
KEPT_PREFIX = BRANCH_PREFIX + "kept/"
"""Where a removed session's unmerged branch is kept; never cleaned up by us."""
EXCLUDE_PATTERN = f"{WORKTREES_DIR}/"
DEFAULT_GIT_TIMEOUT_S = 30.0

_MAX_NAME = 100
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
# Variables that would point git at another repository than the one we name with -C.
_GIT_LOCATION_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
)


class WorktreeError(WorkspaceError):
    """A git operation on a project's worktrees failed; the message says which and why."""


def is_safe_name(name: str) -> bool:
    """Whether ``name`` is one plain path component that is also a valid ``mpg/<name>`` branch.

    The same rules as ``git check-ref-format --branch`` for our character set: no leading
    ``-`` or ``.``, no ``..``, no trailing ``.`` or ``.lock``; nothing but letters, digits,
    ``_``, ``.`` and ``-``.
    """
    return (
        len(name) <= _MAX_NAME
        and _SAFE_NAME.fullmatch(name) is not None
        and ".." not in name
        and not name.endswith((".", ".lock"))
    )


def worktree_name(key: str) -> str:
    """The directory and branch suffix for session ``key``.

    ``123:pm`` becomes ``123-pm`` as in MPG. A key that would not be safe (``../x``,
    ``a;b``, spaces, newlines, a leading ``-``) is cleaned and suffixed with a hash of the
    original key, so two different crafted keys cannot share a worktree.
    """
    simple = key.replace(":", "-")
    if is_safe_name(simple):
        return simple
    cleaned = _UNSAFE_CHARS.sub("-", simple)
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    cleaned = re.sub(r"-{2,}", "-", cleaned).strip("-.")[:60].rstrip("-.")
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    name = f"{cleaned}-{digest}" if cleaned else f"session-{digest}"
    if not is_safe_name(name):  # e.g. a cleaned name starting with "." or "-" after all
        name = f"session-{digest}"
    return name


def branch_name(key: str) -> str:
    return BRANCH_PREFIX + worktree_name(key)


def git_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment git runs in: no secrets (hooks run too), no repository overrides, no prompts."""
    env = dict(os.environ if base is None else base)
    for name in (*SECRET_ENV_NAMES, *_GIT_LOCATION_VARS):
        env.pop(name, None)
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


@dataclass(frozen=True)
class _Repo:
    prefix: str
    """The project directory's path inside the work tree ("" at the top)."""
    common_dir: Path


@dataclass(frozen=True)
class _GitResult:
    returncode: int
    stdout: str
    stderr: str


class WorktreeManager(Workspaces):
    """Creates, reuses, removes and reconciles the session worktrees of project repositories."""

    def __init__(self, *, git: str = "git", timeout_s: float = DEFAULT_GIT_TIMEOUT_S) -> None:
        self._git_exe = git
        self._timeout_s = timeout_s
        self._env = git_environment()
        self._locks: dict[Path, asyncio.Lock] = {}
        self._repos: dict[Path, _Repo | None] = {}

    @staticmethod
    def path_for(project_dir: Path, key: str) -> Path:
        return _absolute(project_dir) / WORKTREES_DIR / worktree_name(key)

    async def workspace(self, project_dir: Path, key: str) -> Workspace:
        """:meth:`ensure`, falling back to the plain project directory (logged) when git fails."""
        try:
            return await self.ensure(project_dir, key)
        except WorktreeError as exc:
            log.warning("no worktree for session %s, using %s itself: %s", key, project_dir, exc)
            return Workspace(cwd=_absolute(project_dir), worktree_path=None, project_dir=_absolute(project_dir))

    async def ensure(self, project_dir: Path, key: str) -> Workspace:
        """The session's worktree, created (or re-attached to its existing branch) if needed.

        A project that is not a git work tree gives a plain :class:`Workspace`. Raises
        :class:`WorktreeError` when git fails or something that is not our worktree is in
        the way.
        """
        root = _absolute(project_dir)
        async with self._lock(root):
            repo = await self._repo(root)
            if repo is None:
                return Workspace(cwd=root, worktree_path=None, project_dir=root)
            name = worktree_name(key)
            branch = BRANCH_PREFIX + name
            await self._check_branch_name(root, branch)
            path = root / WORKTREES_DIR / name
            if path.parent != root / WORKTREES_DIR:  # cannot happen for a safe name; never trust it blindly
                raise WorktreeError(f"worktree name {name!r} escapes {root / WORKTREES_DIR}")
            registered = await self._worktrees(root)
            present = await asyncio.to_thread(path.is_dir)
            if path in registered:
                if present:
                    return self._workspace(root, path, repo)
                await self._git(root, "worktree", "prune")
            elif not await asyncio.to_thread(_clear_empty_dir, path):
                raise WorktreeError(f"{path} exists and is not a git worktree; remove it or move it away")
            await asyncio.to_thread(_add_exclude, repo.common_dir / "info" / "exclude")
            if await self._branch_exists(root, branch):
                await self._git(root, "worktree", "add", "--quiet", str(path), branch)
            else:
                await self._git(root, "worktree", "add", "--quiet", "-b", branch, str(path))
            log.info("created worktree %s on branch %s", path, branch)
            return self._workspace(root, path, repo)

    async def remove(self, project_dir: Path, key: str) -> Removal:
        """Remove the session's worktree (even with uncommitted changes), and its branch unless
        the branch has commits the project's current branch lacks (then it is kept, renamed)."""
        root = _absolute(project_dir)
        async with self._lock(root):
            if await self._repo(root) is None:
                return Removal(removed=False)
            name = worktree_name(key)
            removed = await self._remove_worktree(root, root / WORKTREES_DIR / name, await self._worktrees(root))
            await self._git(root, "worktree", "prune")
            branch = await self._retire_branch(root, BRANCH_PREFIX + name)
            return Removal(removed=removed or branch.removed, kept_branch=branch.kept_branch)

    async def reconcile(self, project_dir: Path, known_keys: Iterable[str]) -> list[str]:
        """Remove worktrees, stale directories and ``mpg/*`` branches of no known session.

        Returns the names (``<name>`` of ``mpg/<name>``) that were cleaned up.
        """
        root = _absolute(project_dir)
        known = {worktree_name(key) for key in known_keys}
        cleaned: set[str] = set()
        async with self._lock(root):
            if await self._repo(root) is None:
                return []
            base = root / WORKTREES_DIR
            registered = await self._worktrees(root)
            candidates = {path for path in registered if path.parent == base}
            candidates.update(await asyncio.to_thread(_child_dirs, base))
            for path in sorted(candidates):
                if path.name not in known and await self._remove_worktree(root, path, registered):
                    cleaned.add(path.name)
            await self._git(root, "worktree", "prune")
            refs = await self._git(root, "for-each-ref", "--format=%(refname)", "refs/heads/" + BRANCH_PREFIX)
            prefix = "refs/heads/" + BRANCH_PREFIX
            for ref in refs.stdout.splitlines():
                name = ref.removeprefix(prefix)
                if not ref.startswith(prefix) or name in known or ref.startswith("refs/heads/" + KEPT_PREFIX):
                    continue
                if (await self._retire_branch(root, BRANCH_PREFIX + name)).removed:
                    cleaned.add(name)
        if cleaned:
            log.info("removed %d orphaned worktree(s)/branch(es) in %s: %s", len(cleaned), root, sorted(cleaned))
        return sorted(cleaned)

    # -- pieces --------------------------------------------------------------------

    def _lock(self, root: Path) -> asyncio.Lock:
        return self._locks.setdefault(root, asyncio.Lock())

    @staticmethod
    def _workspace(root: Path, path: Path, repo: _Repo) -> Workspace:
        # A project mapped to a sub-directory of a repository works in the same
        # sub-directory of its worktree.
        cwd = path / repo.prefix if repo.prefix else path
        return Workspace(cwd=cwd, worktree_path=path, project_dir=root)

    async def _repo(self, root: Path) -> _Repo | None:
        # Asked for every new session, so answered once per directory (a git process costs
        # milliseconds on the way to a reply). A directory made a repository later gets
        # worktrees after the next start.
        if root not in self._repos:
            self._repos[root] = await self._find_repo(root)
        return self._repos[root]

    async def _find_repo(self, root: Path) -> _Repo | None:
        # No .git here or above: a plain directory, known without starting git (at start-up
        # this is asked for every project, and a git process costs milliseconds of CPU).
        if not await asyncio.to_thread(_has_git_above, root):
            return None
        # A missing directory fails here too (git cannot -C into it): plain-directory answer.
        result = await self._git(
            root,
            "rev-parse",
            "--is-inside-work-tree",
            "--show-prefix",
            "--path-format=absolute",
            "--git-common-dir",
            check=False,
        )
        lines = result.stdout.splitlines()
        if result.returncode != 0 or len(lines) < 3 or lines[0] != "true":
            return None
        return _Repo(prefix=lines[1].strip(), common_dir=Path(lines[2]))

    async def _check_branch_name(self, root: Path, branch: str) -> None:
        result = await self._git(root, "check-ref-format", "--branch", branch, check=False)
        if result.returncode != 0:
            raise WorktreeError(f"{branch!r} is not a valid branch name")

    async def _branch_exists(self, root: Path, branch: str) -> bool:
        result = await self._git(root, "show-ref", "--verify", "--quiet", "refs/heads/" + branch, check=False)
        return result.returncode == 0

    async def _worktrees(self, root: Path) -> set[Path]:
        result = await self._git(root, "worktree", "list", "--porcelain")
        return {
            Path(line.removeprefix("worktree ")) for line in result.stdout.splitlines() if line.startswith("worktree ")
        }

    async def _remove_worktree(self, root: Path, path: Path, registered: set[Path]) -> bool:
        if path in registered:
            # Twice --force: also removes a locked worktree.
            result = await self._git(root, "worktree", "remove", "--force", "--force", str(path), check=False)
            if result.returncode == 0:
                return True
            log.warning("git worktree remove %s failed: %s", path, _last_line(result.stderr))
        return await asyncio.to_thread(_remove_stale_dir, path)

    async def _retire_branch(self, root: Path, branch: str) -> Removal:
        """Delete a session's branch, or keep it under ``mpg/kept/`` if it holds unmerged commits."""
        if not await self._branch_exists(root, branch):
            return Removal(removed=False)
        ahead = await self._git(root, "rev-list", "--count", f"HEAD..refs/heads/{branch}", check=False)
        unmerged = ahead.stdout.strip()
        # Fails on a repository whose current branch has no commit yet: then all of it is unmerged.
        if ahead.returncode != 0 or unmerged != "0":
            return await self._keep_branch(root, branch, unmerged if ahead.returncode == 0 else "")
        result = await self._git(root, "branch", "--quiet", "-D", branch, check=False)
        if result.returncode != 0:
            log.warning("could not delete branch %s in %s: %s", branch, root, _last_line(result.stderr))
            return Removal(removed=False)
        return Removal(removed=True)

    async def _keep_branch(self, root: Path, branch: str, unmerged: str) -> Removal:
        base = KEPT_PREFIX + branch.removeprefix(BRANCH_PREFIX)
        kept, n = base, 1
        while await self._branch_exists(root, kept):
            n += 1
            kept = f"{base}-{n}"
        result = await self._git(root, "branch", "--quiet", "-m", branch, kept, check=False)
        if result.returncode != 0:
            log.warning("left branch %s in %s in place: %s", branch, root, _last_line(result.stderr))
            return Removal(removed=False)
        current = await self._git(root, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        log.warning(
            "kept branch %s as %s in %s: it has %s not in the current branch %s",
            branch,
            kept,
            root,
            f"{unmerged} commit(s)" if unmerged else "commits",
            current.stdout.strip() or "HEAD",
        )
        return Removal(removed=True, kept_branch=kept)

    async def _git(self, root: Path, *args: str, check: bool = True) -> _GitResult:
        argv = [self._git_exe, "-C", str(root), *args]
        what = f"git {args[0]}" + (f" {args[1]}" if len(args) > 1 and not args[1].startswith("-") else "")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env,
            )
        except FileNotFoundError:
            raise WorktreeError(f"{self._git_exe!r} was not found; install git or disable worktrees") from None
        except OSError as exc:
            raise WorktreeError(f"cannot run {self._git_exe!r}: {exc}") from None
        try:
            async with asyncio.timeout(self._timeout_s):
                out, err = await proc.communicate()
        except TimeoutError:
            raise WorktreeError(f"{what} in {root} did not finish within {self._timeout_s:g}s") from None
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        result = _GitResult(proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))
        if check and result.returncode != 0:
            raise WorktreeError(f"{what} in {root} failed: {_last_line(result.stderr) or 'no message'}")
        return result


def _absolute(path: Path) -> Path:
    # Resolved, because git reports real paths and claude keys its sessions by cwd.
    return path.expanduser().resolve()


def _clear_empty_dir(path: Path) -> bool:
    """True when ``path`` is free for a new worktree (absent, or an empty directory now removed)."""
    if not path.exists():
        return True
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        path.rmdir()
        return True
    return False


def _child_dirs(base: Path) -> list[Path]:
    if not base.is_dir():
        return []
    return [child for child in base.iterdir() if child.is_dir() and not child.is_symlink()]


def _remove_stale_dir(path: Path) -> bool:
    """Delete a worktree directory git no longer knows about; anything else stays (and is logged)."""
    if not path.exists():
        return False
    if (path / ".git").is_file() or (path.is_dir() and not path.is_symlink() and not any(path.iterdir())):
        shutil.rmtree(path, ignore_errors=True)
        return not path.exists()
    log.warning("left %s in place: it is not a git worktree", path)
    return False


def _add_exclude(exclude: Path) -> None:
    """Keep ``.worktrees/`` out of ``git status`` without touching any tracked file."""
    try:
        text = exclude.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    patterns = {line.strip().strip("/") for line in text.splitlines()}
    if WORKTREES_DIR in patterns:
        return
    exclude.parent.mkdir(parents=True, exist_ok=True)
    separator = "" if not text or text.endswith("\n") else "\n"
    with exclude.open("a", encoding="utf-8") as handle:
        handle.write(f"{separator}# per-session worktrees of mpg-tui\n{EXCLUDE_PATTERN}\n")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _has_git_above(root: Path) -> bool:
    """Whether ``root`` or a folder above it has a ``.git`` (a repository, worktree or submodule)."""
    return any((folder / ".git").exists() for folder in (root, *root.parents))
