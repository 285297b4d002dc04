"""Files attached to a chat message: which are accepted, where they go, what claude is told.

A message's attachments are checked in order against ``maxAttachmentsPerMessage`` (the
first ones are kept), ``maxAttachmentSizeMb`` and ``allowedMimeTypes`` (``image/*``
style wildcards; a missing type is guessed from the file name). Accepted files are
downloaded into the session's directory under ``.mpg-attachments/<session>/<message id>/``
with sanitised, unique names, and the prompt gets a list of their paths. Every refused
file is reported to the user with its reason; a failed download is refused, never fatal.

Sessions without a worktree share the project directory, so each session's files live
in a folder of their own: :func:`cleanup_attachments` removes one session's when it is
killed or expires, and :func:`sweep_attachments` removes, at start-up, the folders of
sessions nobody remembers any more.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import re
import shutil
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Literal

from mpg_tui.config import DEFAULT_MIME_TYPES, Defaults
from mpg_tui.core.ports import Attachment, ChatError, ChatPort

log = logging.getLogger(__name__)

ATTACHMENTS_DIR = ".mpg-attachments"
GITIGNORE = ".gitignore"
MAX_NAME_CHARS = 100
_MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SESSION_FOLDER = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")

RejectReason = Literal["too_many", "too_big", "type_not_allowed", "download_failed", "unsafe_directory"]


@dataclass(frozen=True)
class AttachmentLimits:
    max_size_mb: float = 10
    allowed_mime_types: tuple[str, ...] = tuple(DEFAULT_MIME_TYPES)
    max_per_message: int = 5

    @classmethod
    def from_defaults(cls, defaults: Defaults) -> AttachmentLimits:
        return cls(
            max_size_mb=defaults.max_attachment_size_mb,
            allowed_mime_types=tuple(defaults.allowed_mime_types),
            max_per_message=defaults.max_attachments_per_message,
        )

    @property
    def max_bytes(self) -> int:
        return int(self.max_size_mb * 1024 * 1024)


@dataclass(frozen=True)
class Rejected:
    attachment: Attachment
    name: str
    """The sanitised file name, as shown to the user."""
    reason: RejectReason
    detail: str

    @property
    def text(self) -> str:
        return f"⚠️ Skipped `{self.name}` — {self.detail}."


@dataclass(frozen=True)
class PlannedFile:
    attachment: Attachment
    path: Path


@dataclass(frozen=True)
class AttachmentPlan:
    directory: Path
    accepted: list[PlannedFile]
    rejected: list[Rejected]


@dataclass(frozen=True)
class SavedAttachments:
    paths: list[Path]
    rejected: list[Rejected]

    @property
    def prompt_suffix(self) -> str:
        return attachment_prompt(self.paths)

    @property
    def notice(self) -> str | None:
        """What to tell the user about refused files, or None when every file was saved."""
        return "\n".join(r.text for r in self.rejected) or None


def mime_allowed(content_type: str | None, patterns: Sequence[str]) -> bool:
    """Whether ``content_type`` (parameters ignored) matches one of ``patterns``."""
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    for pattern in (p.strip().lower() for p in patterns):
        if pattern in ("*", "*/*") or mime == pattern:
            return True
        if pattern.endswith("/*") and mime.startswith(pattern[:-1]):
            return True
    return False


def content_type_of(attachment: Attachment) -> str | None:
    """The declared type, or one guessed from the file name when the chat gave none."""
    if attachment.content_type:
        return attachment.content_type
    guessed, _ = mimetypes.guess_type(attachment.filename, strict=False)
    return guessed


def safe_filename(raw: str, fallback: str) -> str:
    """A name that stays inside its directory: no path parts, no leading dots or dashes."""
    base = unicodedata.normalize("NFKC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in base).lstrip(".-")
    if not cleaned.strip("_"):
        return fallback
    if len(cleaned) > MAX_NAME_CHARS:
        suffix = PurePath(cleaned).suffix
        suffix = suffix if len(suffix) <= 16 else ""
        cleaned = cleaned[: MAX_NAME_CHARS - len(suffix)] + suffix
    return cleaned


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    path = PurePath(name)
    while candidate.lower() in taken:
        n += 1
        candidate = f"{path.stem}-{n}{path.suffix}"
    taken.add(candidate.lower())
    return candidate


def session_folder(session_key: str) -> str:
    """The folder of session ``session_key``'s attachments: ``123:pm`` -> ``123-pm``.

    A key that would not be one plain path component gets a hash of itself instead.
    """
    simple = session_key.replace(":", "-")
    if _SESSION_FOLDER.fullmatch(simple) and ".." not in simple:
        return simple
    return "session-" + hashlib.sha256(session_key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def attachment_directory(base_dir: Path, message_id: str, session_key: str) -> Path:
    if not _MESSAGE_ID.fullmatch(message_id):
        raise ValueError(f"unexpected message id {message_id!r}")
    return base_dir / ATTACHMENTS_DIR / session_folder(session_key) / message_id


def plan_attachments(
    attachments: Sequence[Attachment], limits: AttachmentLimits, base_dir: Path, message_id: str, session_key: str
) -> AttachmentPlan:
    """Decide, without touching the disk, which attachments to save and where."""
    directory = attachment_directory(base_dir, message_id, session_key)
    accepted: list[PlannedFile] = []
    rejected: list[Rejected] = []
    taken: set[str] = set()
    for index, attachment in enumerate(attachments, start=1):
        name = _unique(safe_filename(attachment.filename, f"attachment-{index}"), taken)
        if index > limits.max_per_message:
            detail = (
                f"only {limits.max_per_message} attachments per message are accepted"
                if limits.max_per_message
                else "attachments are not accepted here"
            )
            rejected.append(Rejected(attachment, name, "too_many", detail))
        elif attachment.size > limits.max_bytes:
            rejected.append(Rejected(attachment, name, "too_big", f"exceeds {limits.max_size_mb:g}MB limit"))
        elif not mime_allowed(content_type_of(attachment), limits.allowed_mime_types):
            shown = content_type_of(attachment) or "unknown"
            rejected.append(Rejected(attachment, name, "type_not_allowed", f"type `{shown}` not allowed"))
        else:
            accepted.append(PlannedFile(attachment, directory / name))
    return AttachmentPlan(directory, accepted, rejected)


async def save_attachments(
    chat: ChatPort,
    attachments: Sequence[Attachment],
    limits: AttachmentLimits,
    base_dir: Path,
    message_id: str,
    session_key: str,
) -> SavedAttachments:
    """Download the acceptable attachments of a message to session ``session_key`` into ``base_dir``."""
    plan = plan_attachments(attachments, limits, base_dir, message_id, session_key)
    if not plan.accepted:
        return SavedAttachments([], plan.rejected)
    rejected = list(plan.rejected)
    root = base_dir / ATTACHMENTS_DIR
    if not all(_plain_inside(folder, base_dir) for folder in (root, plan.directory.parent, plan.directory)):
        # The project (which claude edits) could point the folder anywhere with a symlink.
        log.warning("refusing attachments: %s is not a plain directory inside %s", plan.directory, base_dir)
        unsafe = "attachment folder is unsafe"
        rejected += [Rejected(p.attachment, p.path.name, "unsafe_directory", unsafe) for p in plan.accepted]
        return SavedAttachments([], rejected)
    plan.directory.mkdir(parents=True, exist_ok=True)
    ignore = root / GITIGNORE
    if not ignore.exists():
        # Keep downloads out of commits made in the project or its worktrees.
        ignore.write_text("*\n", encoding="utf-8")
    saved: list[Path] = []
    for planned in plan.accepted:
        try:
            if planned.path.is_symlink():
                planned.path.unlink()
            await chat.download(planned.attachment, planned.path)
            size = planned.path.stat().st_size
        except (ChatError, OSError) as exc:
            planned.path.unlink(missing_ok=True)
            log.warning("download of %s failed: %s", planned.attachment.filename, exc)
            rejected.append(Rejected(planned.attachment, planned.path.name, "download_failed", "download failed"))
            continue
        if size > limits.max_bytes:
            planned.path.unlink(missing_ok=True)
            detail = f"exceeds {limits.max_size_mb:g}MB limit"
            rejected.append(Rejected(planned.attachment, planned.path.name, "too_big", detail))
            continue
        saved.append(planned.path.resolve())
    return SavedAttachments(saved, rejected)


def attachment_prompt(paths: Sequence[Path]) -> str:
    """The text appended to the prompt so claude knows where the files are."""
    if not paths:
        return ""
    listing = "\n  ".join(str(p) for p in paths)
    return f"\n\n[Attached files — use the Read tool to view these:\n  {listing}]"


def cleanup_attachments(base_dir: Path, session_key: str) -> bool:
    """Remove session ``session_key``'s attachments from ``base_dir``; True when there were some.

    Blocking; never follows a symlink out of ``base_dir`` (claude edits that directory).
    """
    root = base_dir / ATTACHMENTS_DIR
    if root.is_symlink() or not root.is_dir():
        return False
    removed = _remove(root / session_folder(session_key))
    _remove_if_spent(root)
    return removed


def sweep_attachments(base_dir: Path, known_keys: Collection[str]) -> list[str]:
    """Remove the attachment folders in ``base_dir`` of sessions not in ``known_keys``.

    For start-up, after sessions were killed or expired while no gateway ran (or by a
    gateway that did not clean up). Returns the folder names removed; blocking.
    """
    root = base_dir / ATTACHMENTS_DIR
    if root.is_symlink():
        root.unlink()  # never ours: we refuse to save through a link
        return [ATTACHMENTS_DIR]
    if not root.is_dir():
        return []
    known = {session_folder(key) for key in known_keys}
    removed = sorted(
        child.name for child in root.iterdir() if child.name != GITIGNORE and child.name not in known and _remove(child)
    )
    _remove_if_spent(root)
    if removed:
        log.info("removed attachments of %d forgotten session(s) in %s", len(removed), base_dir)
    return removed


def _remove(path: Path) -> bool:
    if path.is_symlink() or path.is_file():
        path.unlink()
        return True
    if not path.is_dir():
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def _remove_if_spent(root: Path) -> None:
    """Drop the attachments folder once only our ``.gitignore`` is left in it."""
    if {child.name for child in root.iterdir()} <= {GITIGNORE}:
        shutil.rmtree(root, ignore_errors=True)


def _plain_inside(path: Path, base: Path) -> bool:
    """``path`` is not a symlink and, once resolved, lies inside ``base``."""
    return not path.is_symlink() and path.resolve().is_relative_to(base.resolve())
