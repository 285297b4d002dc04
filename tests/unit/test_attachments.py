from pathlib import Path

import pytest

from mpg_tui.config import Defaults
from mpg_tui.core.attachments import (
    ATTACHMENTS_DIR,
    AttachmentLimits,
    SavedAttachments,
    attachment_prompt,
    cleanup_attachments,
    mime_allowed,
    plan_attachments,
    safe_filename,
    save_attachments,
    session_folder,
    sweep_attachments,
)
from mpg_tui.core.ports import Attachment, ChatError

MB = 1024 * 1024
LIMITS = AttachmentLimits()


def att(filename: str, size: int = 10, content_type: str | None = "text/plain") -> Attachment:
    return Attachment(url=f"https://cdn.example/{filename}", filename=filename, size=size, content_type=content_type)


class FakeChat:
    """Writes a file's URL as its content; fails for the URLs listed in ``broken``."""

    def __init__(self, broken: tuple[str, ...] = (), oversize: bool = False) -> None:
        self.broken = broken
        self.oversize = oversize
        self.downloaded: list[Path] = []

    async def download(self, attachment: Attachment, dest: Path) -> None:
        if attachment.url in self.broken:
            dest.write_bytes(b"partial")
            raise ChatError("404 Not Found", status=404)
        dest.write_bytes(b"x" * (LIMITS.max_bytes + 1) if self.oversize else attachment.url.encode())
        self.downloaded.append(dest)


SESSION = "111:pm"
FOLDER = "111-pm"


async def save(chat: FakeChat, files: list[Attachment], base_dir: Path, session: str = SESSION) -> SavedAttachments:
    return await save_attachments(chat, files, LIMITS, base_dir, "7", session)  # type: ignore[arg-type]  # download only


def test_limits_come_from_config_defaults() -> None:
    limits = AttachmentLimits.from_defaults(
        Defaults(max_attachment_size_mb=2.5, allowed_mime_types=["image/png"], max_attachments_per_message=1)
    )
    assert limits == AttachmentLimits(max_size_mb=2.5, allowed_mime_types=("image/png",), max_per_message=1)
    assert AttachmentLimits.from_defaults(Defaults()) == LIMITS
    assert limits.max_bytes == int(2.5 * MB)


@pytest.mark.parametrize(
    ("content_type", "allowed"),
    [
        ("image/png", True),
        ("IMAGE/JPEG", True),
        ("text/plain; charset=utf-8", True),
        ("application/pdf", True),
        ("application/json", True),
        ("application/zip", False),
        ("imagex/png", False),
        ("", False),
        (None, False),
    ],
)
def test_mime_types_match_wildcards_exactly_and_case_insensitively(content_type: str | None, allowed: bool) -> None:
    assert mime_allowed(content_type, LIMITS.allowed_mime_types) is allowed


def test_star_allows_every_type() -> None:
    assert mime_allowed("application/zip", ["*/*"])


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("../../.env", "env"),
        ("..\\..\\secret.txt", "secret.txt"),
        (".bashrc", "bashrc"),
        ("--help.txt", "help.txt"),
        ("my file (1).png", "my_file__1_.png"),
        ("résumé.txt", "résumé.txt"),
        ("a\x00b.txt", "a_b.txt"),
        ("...", "fallback"),
        ("", "fallback"),
        ("/", "fallback"),
    ],
)
def test_file_names_are_sanitised(raw: str, safe: str) -> None:
    assert safe_filename(raw, "fallback") == safe


def test_over_long_names_are_cut_keeping_the_extension() -> None:
    name = safe_filename("x" * 300 + ".json", "f")
    assert len(name) == 100
    assert name.endswith(".json")


def test_plan_puts_files_under_the_message_folder_with_unique_names(tmp_path: Path) -> None:
    plan = plan_attachments(
        [att("a.txt"), att("A.txt"), att("a.txt"), att("../a.txt")], LIMITS, tmp_path, "42", SESSION
    )
    assert plan.directory == tmp_path / ATTACHMENTS_DIR / FOLDER / "42"
    assert [p.path.name for p in plan.accepted] == ["a.txt", "A-2.txt", "a-3.txt", "a-4.txt"]
    assert all(p.path.parent == plan.directory for p in plan.accepted)


def test_plan_rejects_with_reasons_in_order(tmp_path: Path) -> None:
    limits = AttachmentLimits(max_size_mb=1, max_per_message=3)
    files = [
        att("ok.txt"),
        att("big.png", size=MB + 1, content_type="image/png"),
        att("tool.exe", content_type="application/x-msdownload"),
        att("late.txt"),
    ]
    plan = plan_attachments(files, limits, tmp_path, "42", SESSION)
    assert [p.attachment.filename for p in plan.accepted] == ["ok.txt"]
    assert [(r.name, r.reason, r.text) for r in plan.rejected] == [
        ("big.png", "too_big", "⚠️ Skipped `big.png` — exceeds 1MB limit."),
        ("tool.exe", "type_not_allowed", "⚠️ Skipped `tool.exe` — type `application/x-msdownload` not allowed."),
        ("late.txt", "too_many", "⚠️ Skipped `late.txt` — only 3 attachments per message are accepted."),
    ]


def test_file_exactly_at_the_size_limit_is_accepted(tmp_path: Path) -> None:
    plan = plan_attachments([att("edge.txt", size=10 * MB)], LIMITS, tmp_path, "1", SESSION)
    assert len(plan.accepted) == 1


def test_missing_type_is_guessed_from_the_name(tmp_path: Path) -> None:
    plan = plan_attachments(
        [att("notes.md", content_type=None), att("blob", content_type=None)], LIMITS, tmp_path, "1", SESSION
    )
    assert [p.path.name for p in plan.accepted] == ["notes.md"]
    assert plan.rejected[0].detail == "type `unknown` not allowed"


def test_no_attachments_allowed(tmp_path: Path) -> None:
    plan = plan_attachments([att("a.txt")], AttachmentLimits(max_per_message=0), tmp_path, "1", SESSION)
    assert plan.rejected[0].text == "⚠️ Skipped `a.txt` — attachments are not accepted here."


@pytest.mark.parametrize("message_id", ["../x", "", "a/b", "." * 3])
def test_odd_message_ids_are_refused(tmp_path: Path, message_id: str) -> None:
    with pytest.raises(ValueError, match="message id"):
        plan_attachments([att("a.txt")], LIMITS, tmp_path, message_id, SESSION)


async def test_save_downloads_accepted_files_and_lists_them_for_the_prompt(tmp_path: Path) -> None:
    chat = FakeChat()
    saved = await save(chat, [att("a.txt"), att("b.exe", content_type="application/zip")], tmp_path)
    target = (tmp_path / ATTACHMENTS_DIR / FOLDER / "7" / "a.txt").resolve()
    assert saved.paths == [target]
    assert target.read_text() == "https://cdn.example/a.txt"
    assert saved.prompt_suffix == f"\n\n[Attached files — use the Read tool to view these:\n  {target}]"
    assert saved.notice == "⚠️ Skipped `b.exe` — type `application/zip` not allowed."
    assert (tmp_path / ATTACHMENTS_DIR / ".gitignore").read_text() == "*\n"


async def test_failed_download_is_reported_and_leaves_no_partial_file(tmp_path: Path) -> None:
    chat = FakeChat(broken=("https://cdn.example/b.txt",))
    saved = await save(chat, [att("a.txt"), att("b.txt")], tmp_path)
    assert [p.name for p in saved.paths] == ["a.txt"]
    assert saved.notice == "⚠️ Skipped `b.txt` — download failed."
    assert not (tmp_path / ATTACHMENTS_DIR / FOLDER / "7" / "b.txt").exists()


async def test_download_larger_than_announced_is_removed(tmp_path: Path) -> None:
    saved = await save(FakeChat(oversize=True), [att("a.txt", size=1)], tmp_path)
    assert saved.paths == []
    assert saved.rejected[0].reason == "too_big"
    assert not (tmp_path / ATTACHMENTS_DIR / FOLDER / "7" / "a.txt").exists()


async def test_nothing_acceptable_touches_no_disk(tmp_path: Path) -> None:
    saved = await save(FakeChat(), [att("x.zip", content_type="application/zip")], tmp_path)
    assert saved.paths == [] and saved.prompt_suffix == ""
    assert not (tmp_path / ATTACHMENTS_DIR).exists()


async def test_symlinked_attachment_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    (project / ATTACHMENTS_DIR).symlink_to(outside, target_is_directory=True)
    chat = FakeChat()
    saved = await save(chat, [att("a.txt")], project)
    assert saved.paths == [] and saved.rejected[0].reason == "unsafe_directory"
    assert chat.downloaded == [] and list(outside.iterdir()) == []


def test_prompt_lists_every_path() -> None:
    assert attachment_prompt([]) == ""
    assert attachment_prompt([Path("/p/a"), Path("/p/b")]) == (
        "\n\n[Attached files — use the Read tool to view these:\n  /p/a\n  /p/b]"
    )


async def test_cleanup_removes_only_that_sessions_attachments(tmp_path: Path) -> None:
    await save(FakeChat(), [att("a.txt")], tmp_path)
    await save(FakeChat(), [att("b.txt")], tmp_path, session="222")
    assert cleanup_attachments(tmp_path, SESSION)
    assert sorted(p.name for p in (tmp_path / ATTACHMENTS_DIR).iterdir()) == [".gitignore", "222"]
    assert not cleanup_attachments(tmp_path, SESSION)
    assert cleanup_attachments(tmp_path, "222")
    assert not (tmp_path / ATTACHMENTS_DIR).exists()  # nothing left but our .gitignore


async def test_sweep_removes_folders_of_forgotten_sessions_only(tmp_path: Path) -> None:
    for session in (SESSION, "222", "333"):
        await save(FakeChat(), [att("a.txt")], tmp_path, session=session)
    assert sweep_attachments(tmp_path, [SESSION, "333:engineer"]) == ["222", "333"]
    assert sorted(p.name for p in (tmp_path / ATTACHMENTS_DIR).iterdir()) == [".gitignore", FOLDER]
    assert sweep_attachments(tmp_path / "missing", []) == []


def test_sweep_and_cleanup_never_follow_a_link_out_of_the_project(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    project = tmp_path / "project"
    (project / ATTACHMENTS_DIR).mkdir(parents=True)
    (project / ATTACHMENTS_DIR / FOLDER).symlink_to(outside, target_is_directory=True)
    assert cleanup_attachments(project, SESSION)
    (project / ATTACHMENTS_DIR).mkdir(exist_ok=True)
    (project / ATTACHMENTS_DIR / "999").symlink_to(outside, target_is_directory=True)
    assert sweep_attachments(project, []) == ["999"]
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / ATTACHMENTS_DIR).symlink_to(outside, target_is_directory=True)
    assert not cleanup_attachments(linked, SESSION)
    assert sweep_attachments(linked, []) == [ATTACHMENTS_DIR]
    assert (outside / "keep.txt").read_text() == "keep"


@pytest.mark.parametrize("key", ["../x", "a/b", "..", ".hidden", "x" * 200, "1:é"])
def test_odd_session_keys_get_a_folder_that_is_one_plain_name(key: str) -> None:
    folder = session_folder(key)
    assert "/" not in folder and not folder.startswith(".") and len(folder) <= 64
    assert folder != session_folder(key + "!")
