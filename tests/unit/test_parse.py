"""The shared claude output parser, fed literal CLI output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mpg_tui.core.runner import Progress, Usage
from mpg_tui.runners import parse
from mpg_tui.runners.parse import OutputParser, classify_error

SESSION = "3f1c2a9e-8b7d-4c55-9a10-2f4d6e8b0c11"


def result_line(**overrides: Any) -> str:
    result: dict[str, Any] = {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "duration_ms": 1380,
        "duration_api_ms": 1210,
        "num_turns": 3,
        "result": "All done.\nSecond line.",
        "stop_reason": "end_turn",
        "session_id": SESSION,
        "total_cost_usd": 0.0123,
        "usage": {
            "input_tokens": 120,
            "output_tokens": 45,
            "cache_creation_input_tokens": 7,
            "cache_read_input_tokens": 2048,
        },
        "modelUsage": {},
        "permission_denials": [],
    }
    result.update(overrides)
    return json.dumps(result)


def init_line(session_id: str = SESSION) -> str:
    return json.dumps(
        {
            "type": "system",
            "subtype": "init",
            "session_id": session_id,
            "cwd": "/srv/app",
            "tools": ["Read"],
            "model": "claude-sonnet-4-5",
            "permissionMode": "acceptEdits",
        }
    )


def assistant_line(*blocks: dict[str, Any]) -> str:
    return json.dumps({"type": "assistant", "message": {"role": "assistant", "content": list(blocks)}})


def tool_use(name: str, **tool_input: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": "toolu_1", "name": name, "input": tool_input}


def error_result(message: str) -> str:
    return result_line(is_error=True, result=message)


# -- progress ------------------------------------------------------------------------------


def test_init_line_reports_the_session_id() -> None:
    parser = OutputParser()
    progress = parser.feed_line(init_line())
    assert progress == Progress(step="init", text="Claude started (claude-sonnet-4-5)", session_id=SESSION)
    assert parser.session_id == SESSION


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (tool_use("Read", file_path="/srv/app/src/app.py"), "Read src/app.py"),
        (tool_use("Edit", file_path="/elsewhere/x.py", old_string="a", new_string="b"), "Edit /elsewhere/x.py"),
        (tool_use("Grep", pattern="def main", path="/srv/app"), "Grep def main"),
        (tool_use("Glob", pattern="**/*.py"), "Glob **/*.py"),
        (tool_use("Bash", command="git status\ngit diff", description="Show status"), "Bash git status"),
        (
            tool_use("WebFetch", url="https://example.invalid/doc", prompt="summarise"),
            "WebFetch https://example.invalid/doc",
        ),
        (tool_use("TodoWrite", todos=[{"content": "x"}]), "TodoWrite"),
        (tool_use("mcp__thing", widget="gear"), "mcp__thing gear"),
    ],
)
def test_tool_use_becomes_a_short_summary(block: dict[str, Any], expected: str) -> None:
    progress = OutputParser(cwd="/srv/app").feed_line(assistant_line(block))
    assert progress is not None
    assert progress.step == "tool"
    assert progress.tool == block["name"]
    assert progress.text == expected


def test_assistant_text_becomes_its_first_non_empty_line_trimmed() -> None:
    progress = OutputParser().feed_line(assistant_line({"type": "text", "text": "\n   Looking at the code.  \nMore."}))
    assert progress == Progress(step="text", text="Looking at the code.")


def test_a_line_with_several_blocks_reports_the_last_one() -> None:
    line = assistant_line({"type": "text", "text": "Let me read it."}, tool_use("Read", file_path="a.py"))
    progress = OutputParser().feed_line(line)
    assert progress is not None and progress.step == "tool"


def test_tool_results_and_unknown_json_lines_report_nothing() -> None:
    parser = OutputParser()
    tool_result = {"type": "user", "message": {"content": [{"type": "tool_result", "content": "ok"}]}}
    assert parser.feed_line(json.dumps(tool_result)) is None
    assert parser.feed_line('{"type": "stream_event", "event": {}}') is None
    assert parser.feed_line("[1, 2, 3]") is None


def test_feed_returns_every_progress_of_the_complete_lines_in_order() -> None:
    parser = OutputParser(cwd="/srv/app")
    text = "\n".join(
        [
            init_line(),
            assistant_line(tool_use("Read", file_path="/srv/app/README.md")),
            assistant_line({"type": "text", "text": "Done."}),
        ]
    )
    progress = parser.feed(text + "\n")
    assert [(p.step, p.text) for p in progress] == [
        ("init", "Claude started (claude-sonnet-4-5)"),
        ("tool", "Read README.md"),
        ("text", "Done."),
    ]


# -- results -------------------------------------------------------------------------------


def test_stream_json_run_gives_the_result_and_its_metrics() -> None:
    parser = OutputParser()
    parser.feed(init_line() + "\n" + assistant_line({"type": "text", "text": "hi"}) + "\n" + result_line() + "\n")
    result = parser.finish(0, "")
    assert result.ok
    assert result.text == "All done.\nSecond line."
    assert result.session_id == SESSION
    assert result.cost_usd == pytest.approx(0.0123)
    assert result.usage == Usage(120, 45, 7, 2048)
    assert (result.duration_ms, result.num_turns, result.exit_code) == (1380, 3, 0)
    assert result.error is None and result.error_kind is None


def test_single_json_object_output_is_read_the_same_way() -> None:
    parser = OutputParser()
    assert parser.feed_line(result_line()) is None
    result = parser.finish(0, "")
    assert result.ok and result.text == "All done.\nSecond line." and result.session_id == SESSION


def test_json_array_output_of_verbose_json_mode_is_understood() -> None:
    array = "[" + ",".join([init_line("other-id"), result_line()]) + "]"
    parser = OutputParser()
    progress = parser.feed(array + "\n")
    assert [p.step for p in progress] == ["init"]
    result = parser.finish(0, "")
    assert result.ok and result.session_id == SESSION


def test_result_line_split_across_reads_is_reassembled() -> None:
    parser = OutputParser()
    text = init_line() + "\n" + result_line(result="x" * 5000) + "\n"
    for start in range(0, len(text), 7):
        parser.feed(text[start : start + 7])
    result = parser.finish(0, "")
    assert result.ok and result.text == "x" * 5000


def test_last_line_without_newline_is_parsed_at_finish() -> None:
    parser = OutputParser()
    parser.feed(result_line())
    assert not parser.has_result
    assert parser.finish(0, "").ok


def test_garbage_lines_around_the_result_are_ignored() -> None:
    parser = OutputParser()
    parser.feed("Welcome!\n{not json\n\x1b[31mred\x1b[0m\n" + result_line() + "\ntrailing noise\n")
    assert parser.finish(0, "").ok


def test_cost_falls_back_to_the_older_cost_usd_field() -> None:
    line = json.loads(result_line())
    del line["total_cost_usd"]
    line["cost_usd"] = 0.5
    parser = OutputParser()
    parser.feed_line(json.dumps(line))
    assert parser.finish(0, "").cost_usd == 0.5


def test_missing_or_malformed_metrics_become_zero() -> None:
    parser = OutputParser()
    parser.feed_line('{"type": "result", "subtype": "success", "is_error": false, "result": "ok", "usage": "?"}')
    result = parser.finish(0, "")
    assert result.ok and result.usage == Usage() and result.cost_usd == 0.0 and result.session_id is None


# -- failures ------------------------------------------------------------------------------


def test_garbage_only_is_a_crash_quoting_the_tail_of_the_output() -> None:
    parser = OutputParser()
    parser.feed("Welcome to Claude Code!\nnot json at all\n")
    result = parser.finish(0, "")
    assert result.error_kind == "crash"
    assert result.error is not None
    assert result.error.startswith("claude printed no result.")
    assert "not json at all" in result.error


def test_half_a_result_line_is_a_crash_not_a_result() -> None:
    parser = OutputParser()
    parser.feed(result_line()[:80])
    result = parser.finish(0, "")
    assert not result.ok and result.error_kind == "crash"


def test_empty_output_with_exit_zero_is_empty() -> None:
    result = OutputParser().finish(0, "")
    assert result.error_kind == "empty"
    assert result.error == "Claude finished without saying anything."


def test_non_zero_exit_without_result_is_a_crash_with_code_and_stderr_tail() -> None:
    stderr = "line\n" * 2000 + "TypeError: Cannot read properties of undefined\n"
    result = OutputParser().finish(2, stderr)
    assert result.error_kind == "crash"
    assert result.exit_code == 2
    assert result.error is not None and result.error.startswith("Claude exited with code 2 without a result.")
    assert result.stderr_tail.endswith("TypeError: Cannot read properties of undefined")
    assert len(result.stderr_tail) <= parse.TAIL_CHARS


def test_death_by_signal_is_named() -> None:
    result = OutputParser().finish(-9, "")
    assert result.error_kind == "crash"
    assert result.error == "Claude was killed by SIGKILL without a result."


def test_no_conversation_found_is_session_not_found() -> None:
    result = OutputParser().finish(1, "No conversation found with session ID: 1234-abcd\n")
    assert result.error_kind == "session_not_found"
    assert result.error is not None and "1234-abcd" in result.error


def test_max_turns_subtype_without_result_is_max_turns() -> None:
    line = json.loads(result_line(subtype="error_max_turns"))
    del line["result"]
    parser = OutputParser()
    parser.feed_line(json.dumps(line))
    result = parser.finish(1, "")
    assert result.error_kind == "max_turns"
    assert result.error == "Claude hit the --max-turns limit before finishing."
    assert result.session_id == SESSION and result.cost_usd == pytest.approx(0.0123)


def test_budget_exhausted_result_is_max_budget_with_the_cost_and_the_cap() -> None:
    # What 2.1.330 prints when --max-budget-usd ends a turn: no ``result``, the cap in ``errors``.
    line = json.loads(result_line(subtype="error_max_budget_usd", is_error=True))
    del line["result"]
    line.update(terminal_reason="budget_exhausted", errors=["Reached maximum budget ($0.0003)"])
    parser = OutputParser()
    parser.feed_line(json.dumps(line))
    result = parser.finish(1, "")
    assert result.error_kind == "max_budget" and not result.ok
    assert result.error == (
        "Claude stopped this turn at its spending cap after $0.01 (Reached maximum budget ($0.0003))."
    )
    assert result.text == ""
    assert result.session_id == SESSION and result.cost_usd == pytest.approx(0.0123)


def test_timeout_names_the_limit_and_keeps_the_session_id() -> None:
    parser = OutputParser()
    parser.feed(init_line() + "\n")
    result = parser.finish(-15, "", timed_out=True, timeout_s=1800)
    assert result.error_kind == "timeout"
    assert result.error == "Claude did not finish within 30 min; the run was stopped."
    assert result.session_id == SESSION


def test_short_timeouts_are_said_in_seconds() -> None:
    result = OutputParser().finish(None, "", timed_out=True, timeout_s=1.5)
    assert result.error == "Claude did not finish within 1.5 s; the run was stopped."


def test_cancelled_wins_over_whatever_was_printed() -> None:
    parser = OutputParser()
    parser.feed(result_line() + "\n")
    result = parser.finish(-15, "", cancelled=True)
    assert result.error_kind == "cancelled" and not result.ok


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("Not logged in · Please run /login", "auth"),
        ('API Error: 401 {"type":"error","error":{"type":"authentication_error"}}', "auth"),
        ("Invalid API key · Please run /login", "auth"),
        ('API Error: 429 {"type":"error","error":{"type":"rate_limit_error"}}', "rate_limit"),
        ('API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', "overloaded"),
        ("Overloaded", "overloaded"),
        ('API Error: 500 {"type":"error","error":{"type":"api_error"}}', "overloaded"),
        ("Claude AI usage limit reached|1767225600", "usage_limit"),
        ("5-hour limit reached ∙ resets 3pm", "usage_limit"),
        ('API Error: 400 {"type":"error","error":{"type":"invalid_request_error"}}', "api"),
        ("Something odd happened", "api"),
        # Claude Code 2.1.330's own wording, here without the api_error_status field it also sends.
        ("Invalid API key · Fix external API key", "auth"),
        ("API Error: Request rejected (429) · Number of requests has exceeded your rate limit.", "rate_limit"),
        ("API Error: 500 Internal server error. This is a server-side issue, usually temporary.", "overloaded"),
    ],
)
def test_is_error_results_are_classified(message: str, kind: str) -> None:
    parser = OutputParser()
    parser.feed_line(error_result(message))
    result = parser.finish(1, "")
    assert not result.ok
    assert result.error_kind == kind
    assert result.error
    if kind != "api":
        assert '{"type"' not in result.error  # a sentence, not the raw API payload


@pytest.mark.parametrize(
    ("status", "kind"), [(401, "auth"), (429, "rate_limit"), (500, "overloaded"), (529, "overloaded"), (400, "api")]
)
def test_the_results_api_error_status_decides_the_kind_whatever_the_wording(status: int, kind: str) -> None:
    parser = OutputParser()
    parser.feed_line(result_line(is_error=True, result="Request rejected · something new", api_error_status=status))
    result = parser.finish(1, "")
    assert result.error_kind == kind


def test_a_failed_resume_in_stream_json_mode_is_session_not_found() -> None:
    """2.1.330 prints a result line with ``errors`` (and says it on stderr too)."""
    line = json.loads(result_line(subtype="error_during_execution", is_error=True, num_turns=0, total_cost_usd=0))
    del line["result"]
    line["errors"] = [f"No conversation found with session ID: {SESSION}"]
    for stderr in (f"No conversation found with session ID: {SESSION}\n", ""):
        parser = OutputParser()
        parser.feed(json.dumps(line) + "\n")
        result = parser.finish(1, stderr)
        assert result.error_kind == "session_not_found"
        assert result.error is not None and SESSION in result.error


def test_a_resume_id_claude_rejects_outright_is_session_not_found() -> None:
    stderr = (
        "Error: --resume requires a valid session ID or session title when used with --print. "
        'Usage: claude -p --resume <session-id|title>. Provided value "abc" is not a UUID\n'
    )
    result = OutputParser().finish(1, stderr)
    assert result.error_kind == "session_not_found"


def test_an_error_result_without_text_is_explained_by_its_errors() -> None:
    line = json.loads(result_line(subtype="error_during_execution", is_error=True))
    del line["result"]
    line["errors"] = ["", "The tool runner crashed"]
    parser = OutputParser()
    parser.feed_line(json.dumps(line))
    result = parser.finish(1, "")
    assert (result.error_kind, result.error) == ("api", "Claude reported an error: The tool runner crashed")


def test_the_clis_synthetic_api_error_message_is_no_progress() -> None:
    line = json.loads(assistant_line({"type": "text", "text": "Invalid API key · Fix external API key"}))
    line.update(is_api_error_message=True, error="authentication_failed", api_error_status=401)
    assert OutputParser().feed_line(json.dumps(line)) is None


def test_not_logged_in_gets_the_operator_instruction() -> None:
    kind, sentence = classify_error("Not logged in · Please run /login")
    assert kind == "auth"
    assert sentence == "Claude is not logged in on the gateway host — run `claude` there and /login."


def test_usage_limit_reset_epoch_is_shown_as_a_time() -> None:
    kind, sentence = classify_error("Claude AI usage limit reached|1767225600")
    assert kind == "usage_limit"
    assert "2026-01-01 00:00 UTC" in sentence
    assert "|" not in sentence


# -- bounded memory ------------------------------------------------------------------------


def test_ten_megabytes_of_junk_then_a_result_is_parsed_with_a_bounded_tail() -> None:
    parser = OutputParser()
    junk = ("junk " + "x" * 1018 + "\n") * 1024  # 1 MB
    for _ in range(10):
        parser.feed(junk)
    parser.feed(result_line() + "\n")
    assert parser.finish(0, "").ok

    no_result = OutputParser()
    for _ in range(10):
        no_result.feed(junk)
    error = no_result.finish(0, "").error
    assert error is not None and len(error) < parse.TAIL_CHARS + 400


def test_an_overlong_line_is_dropped_and_later_lines_still_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse, "MAX_LINE_CHARS", 1000)
    parser = OutputParser()
    for _ in range(50):
        parser.feed("y" * 100)  # 5000 chars of one line, never a newline until now
    parser.feed("\n" + result_line() + "\n")
    assert parser.finish(0, "").ok

    dropped = OutputParser()
    dropped.feed("z" * 5000)
    error = dropped.finish(0, "").error
    assert error is not None and "was dropped" in error and "zzz" not in error
