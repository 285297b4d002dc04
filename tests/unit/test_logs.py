"""Logging: JSON lines, MPG's level names, redaction everywhere, rotation, reading back."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mpg_tui.logs import (
    SecretRedactor,
    level_name,
    level_number,
    log_files,
    parse_line,
    read_entries,
    reset_logging,
    setup_logging,
)

TOKEN = "MTA.bot-token.SECRETVALUE"
DASH = "dashboard-secret-42"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    discord_level = logging.getLogger("discord").level
    yield
    reset_logging()
    root.setLevel(level)
    root.handlers[:] = handlers
    logging.getLogger("discord").setLevel(discord_level)
    logging.captureWarnings(False)


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_records_are_json_lines_with_mpg_level_names(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "mpg-tui.log"
    setup_logging("debug", log_file, stderr=False)
    log = logging.getLogger("mpg_tui.test")
    log.debug("d")
    log.info("hello %s", "world", extra={"project": "web", "key": "1:pm"})
    log.warning("w")
    log.error("e")
    log.critical("c")
    entries = lines_of(log_file)
    assert [e["level"] for e in entries] == ["debug", "info", "warn", "error", "error"]
    second = entries[1]
    assert (second["logger"], second["msg"], second["project"], second["key"]) == (
        "mpg_tui.test",
        "hello world",
        "web",
        "1:pm",
    )
    assert second["ts"].endswith("Z") and "T" in second["ts"]


def test_the_level_filters_what_is_written(tmp_path: Path) -> None:
    setup_logging("warn", tmp_path / "x.log", stderr=False)
    logging.getLogger("mpg_tui.test").info("quiet")
    logging.getLogger("mpg_tui.test").warning("loud")
    assert [e["msg"] for e in lines_of(tmp_path / "x.log")] == ["loud"]


def test_discord_debug_chatter_stays_out_even_at_debug(tmp_path: Path) -> None:
    setup_logging("debug", tmp_path / "x.log", stderr=False)
    logging.getLogger("discord.gateway").debug("payload")
    logging.getLogger("discord.client").info("logged in")
    assert [e["msg"] for e in lines_of(tmp_path / "x.log")] == ["logged in"]


def test_readable_lines_go_to_stderr(tmp_path: Path) -> None:
    stream = io.StringIO()
    setup_logging("info", None, stream=stream)
    logging.getLogger("mpg_tui.core").warning("queue full", extra={"project": "web"})
    line = stream.getvalue().strip()
    assert line.endswith("warn  mpg_tui.core: queue full  project=web")


def test_exceptions_are_kept_in_the_json_line(tmp_path: Path) -> None:
    setup_logging("info", tmp_path / "x.log", stderr=False)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("mpg_tui.test").exception("failed")
    (entry,) = lines_of(tmp_path / "x.log")
    assert entry["msg"] == "failed"
    assert "ValueError: boom" in entry["exc"] and "Traceback" in entry["exc"]


# --- redaction ------------------------------------------------------------------------


def test_secrets_are_redacted_from_message_args_extras_and_tracebacks(tmp_path: Path) -> None:
    stream = io.StringIO()
    setup_logging("debug", tmp_path / "x.log", stream=stream, secrets=[TOKEN, DASH, None])
    log = logging.getLogger("mpg_tui.test")
    log.info(f"token in the message: {TOKEN}")
    log.info("token in the args: %s and %r", TOKEN, {"auth": DASH})
    log.info("token in an extra", extra={"header": f"Bot {TOKEN}", "data": {"t": DASH}})
    try:
        raise RuntimeError(f"login failed for {TOKEN}")
    except RuntimeError:
        log.exception("traceback")
    log.info("stack", stack_info=True, extra={"note": DASH})
    written = (tmp_path / "x.log").read_text(encoding="utf-8") + stream.getvalue()
    assert TOKEN not in written and DASH not in written
    entries = lines_of(tmp_path / "x.log")
    assert entries[0]["msg"] == "token in the message: ***"
    assert entries[1]["msg"] == "token in the args: *** and {'auth': '***'}"
    assert entries[2]["header"] == "Bot ***"
    assert "RuntimeError: login failed for ***" in entries[3]["exc"]


def test_a_secret_learnt_later_is_redacted_from_then_on(tmp_path: Path) -> None:
    redactor = setup_logging("info", tmp_path / "x.log", stderr=False)
    log = logging.getLogger("mpg_tui.test")
    redactor.add(TOKEN)
    log.info("now %s", TOKEN)
    assert lines_of(tmp_path / "x.log")[0]["msg"] == "now ***"


def test_redaction_reaches_other_handlers_after_ours(tmp_path: Path) -> None:
    setup_logging("info", tmp_path / "x.log", stderr=False, secrets=[TOKEN])
    seen = io.StringIO()
    foreign = logging.StreamHandler(seen)
    logging.getLogger().addHandler(foreign)
    try:
        logging.getLogger("mpg_tui.test").info("value %s", TOKEN)
    finally:
        logging.getLogger().removeHandler(foreign)
    assert seen.getvalue().strip() == "value ***"


def test_tiny_secrets_are_not_redacted_everywhere() -> None:
    redactor = SecretRedactor(["ab", "", "abcd"])
    assert redactor.redact("ab abcd") == "ab ***"


def test_a_secret_containing_another_is_redacted_whole() -> None:
    redactor = SecretRedactor(["secret", "secret-longer"])
    assert redactor.redact("x secret-longer y secret") == "x *** y ***"


def test_a_bad_format_string_does_not_raise_out_of_the_filter(tmp_path: Path) -> None:
    logging.getLogger().handlers.clear()  # pytest's own capture handler would trip over it first
    setup_logging("info", tmp_path / "x.log", stderr=False, secrets=[TOKEN])
    logging.getLogger("mpg_tui.test").info("two %s %s", TOKEN)
    (entry,) = lines_of(tmp_path / "x.log")
    assert "unformattable arguments" in entry["msg"] and TOKEN not in entry["msg"]


# --- handlers -------------------------------------------------------------------------


def test_setting_up_twice_does_not_duplicate_lines(tmp_path: Path) -> None:
    setup_logging("info", tmp_path / "x.log", stderr=False)
    setup_logging("info", tmp_path / "x.log", stderr=False)
    logging.getLogger("mpg_tui.test").info("once")
    assert len(lines_of(tmp_path / "x.log")) == 1


def test_reset_removes_only_our_handlers(tmp_path: Path) -> None:
    foreign = logging.NullHandler()
    logging.getLogger().addHandler(foreign)
    setup_logging("info", tmp_path / "x.log", stream=io.StringIO())
    reset_logging()
    assert foreign in logging.getLogger().handlers
    assert not any(getattr(h, "_mpg_tui_handler", False) for h in logging.getLogger().handlers)
    logging.getLogger().removeHandler(foreign)


def test_the_log_file_rotates_by_size(tmp_path: Path) -> None:
    log_file = tmp_path / "x.log"
    setup_logging("info", log_file, stderr=False, max_bytes=2000)
    for i in range(100):
        logging.getLogger("mpg_tui.test").info("line %03d %s", i, "x" * 40)
    files = log_files(log_file)
    assert files[-1] == log_file and len(files) == 4  # three backups and the current file
    assert all(p.stat().st_size <= 2000 for p in files)
    messages = [e.msg for e in read_entries(log_file)]
    assert messages == sorted(messages)  # oldest first across the backups
    assert messages[-1].startswith("line 099")


# --- levels and reading back ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "number"),
    [("debug", 10), ("info", 20), ("warn", 30), ("WARNING", 30), ("error", 40), ("critical", 40), (25, 25)],
)
def test_level_names_are_mpgs_and_pythons(name: str | int, number: int) -> None:
    assert level_number(name) == number


def test_an_unknown_level_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'; expected one of debug, info, warn, error"):
        level_number("loud")


def test_level_name_maps_numbers_back() -> None:
    assert [level_name(n) for n in (5, 10, 20, 30, 40, 50)] == ["debug", "debug", "info", "warn", "error", "error"]


def test_parse_line_reads_our_format_and_mpgs() -> None:
    ours = parse_line('{"ts": "2024-05-01T10:00:00.000Z", "level": "warn", "logger": "a", "msg": "m", "project": "p"}')
    assert ours is not None
    assert (ours.level, ours.logger, ours.msg, ours.extra) == ("warn", "a", "m", {"project": "p"})
    mpg = parse_line('{"timestamp": "2024-05-01T10:00:00.000Z", "level": "error", "message": "x", "session": "s"}')
    assert mpg is not None and (mpg.msg, mpg.level, mpg.extra) == ("x", "error", {"session": "s"})


@pytest.mark.parametrize(
    "line", ["", "not json", "[1]", '{"ts": "t", "level": "loud", "msg": "m"}', '{"level": "info", "msg": "m"}']
)
def test_parse_line_rejects_what_is_not_a_log_entry(line: str) -> None:
    assert parse_line(line) is None
