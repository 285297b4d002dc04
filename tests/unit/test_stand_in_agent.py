"""The stand-in ``claude``: its command line, sessions, directives, failures and demo personas."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mpg_tui.core import transcripts
from mpg_tui.sandbox.agent import UsageError, filler, parse_args, parse_directives, user_part

if TYPE_CHECKING:
    from tests.unit.conftest import StandIn

REPO = Path(__file__).resolve().parents[2]
STREAM = ["-p", "--output-format", "stream-json", "--verbose"]
JSON = ["-p", "--output-format", "json"]


def claude(
    stand_in: StandIn,
    *args: str,
    prompt: str | None = "hello",
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(stand_in.shim), *args],
        input=prompt,
        capture_output=True,
        text=True,
        cwd=cwd or stand_in.project,
        env={**os.environ, **stand_in.env, **(env or {})},
        timeout=60,
    )


def lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def result_of(stand_in: StandIn, prompt: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = claude(stand_in, *JSON, *args, prompt=prompt, env=env)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


# -- command line --------------------------------------------------------------------------


def test_variadic_tool_flags_swallow_a_trailing_prompt_like_the_real_cli() -> None:
    options = parse_args(["-p", "--allowed-tools", "Read", "Edit", "fix the bug", "--model", "opus"])
    assert options.allowed_tools == ["Read", "Edit", "fix the bug"]
    assert options.prompt_args == []
    assert options.model == "opus"


def test_flag_values_may_be_given_with_equals() -> None:
    options = parse_args(["--print", "--allowedTools=Read", "--output-format=json", "do it"])
    assert options.allowed_tools == ["Read"]
    assert options.output_format == "json"
    assert options.prompt_args == ["do it"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-p", "--bogus"], "error: unknown option '--bogus'"),
        (["-p", "--output-format", "stream-json"], "requires --verbose"),
        (["-p", "--output-format", "yaml"], "Allowed choices are text, json, stream-json"),
        (["-p", "--permission-mode", "yolo"], "Allowed choices are acceptEdits"),
        (["-p", "--model"], "argument missing"),
        (["-p", "--allowed-tools"], "argument missing"),
        (["-p", "--session-id", "not-a-uuid"], "Must be a valid UUID"),
        (["--output-format", "json"], "only works with --print"),
    ],
)
def test_command_lines_the_real_cli_refuses_are_refused(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_args(argv)


def test_skip_permissions_is_refused_for_root_outside_a_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.delenv("IS_SANDBOX", raising=False)
    with pytest.raises(UsageError, match="root/sudo"):
        parse_args(["-p", "--dangerously-skip-permissions"])
    monkeypatch.setenv("IS_SANDBOX", "1")
    assert parse_args(["-p", "--dangerously-skip-permissions"]).skip_permissions


def test_unknown_flag_exits_1_with_the_message_and_no_output(stand_in: StandIn) -> None:
    done = claude(stand_in, "-p", "--frobnicate")
    assert (done.returncode, done.stdout) == (1, "")
    assert "unknown option '--frobnicate'" in done.stderr


def test_no_prompt_is_an_error(stand_in: StandIn) -> None:
    done = claude(stand_in, *JSON, prompt="")
    assert done.returncode == 1
    assert "Input must be provided" in done.stderr


def test_version_answers_without_a_prompt(stand_in: StandIn) -> None:
    done = claude(stand_in, "--version", prompt=None)
    assert done.returncode == 0 and done.stdout.startswith("2.1.0")


def test_prompt_may_be_a_trailing_argument(stand_in: StandIn) -> None:
    done = claude(stand_in, "-p", "from argv", prompt=None)
    assert done.stdout == "[claude] from argv\n"


def test_shim_ignores_modules_in_the_project_directory(stand_in: StandIn) -> None:
    (stand_in.project / "json.py").write_text("raise ImportError('shadowed the stdlib')\n")
    done = claude(stand_in, *JSON, prompt="still works")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"] == "[claude] still works"


# -- output formats ------------------------------------------------------------------------


def test_text_output_is_the_reply(stand_in: StandIn) -> None:
    done = claude(stand_in, "-p", prompt="what is up\nmore text")
    assert (done.returncode, done.stdout) == (0, "[claude] what is up\n")


def test_json_output_is_one_result_line_with_the_cli_fields(stand_in: StandIn) -> None:
    done = claude(stand_in, *JSON, prompt="hi")
    assert len(done.stdout.splitlines()) == 1
    result = json.loads(done.stdout)
    expected = {
        "type",
        "subtype",
        "is_error",
        "duration_ms",
        "duration_api_ms",
        "num_turns",
        "result",
        "stop_reason",
        "session_id",
        "total_cost_usd",
        "usage",
        "modelUsage",
        "permission_denials",
    }
    assert expected <= set(result)
    assert (result["type"], result["subtype"], result["is_error"], result["num_turns"]) == (
        "result",
        "success",
        False,
        1,
    )
    assert {"input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"} <= set(
        result["usage"]
    )


def test_cost_is_deterministic_for_the_same_prompt(stand_in: StandIn) -> None:
    first = result_of(stand_in, "same words")
    second = result_of(stand_in, "same words")
    longer = result_of(stand_in, "same words and a good many more of them, to cost more")
    assert first["total_cost_usd"] == second["total_cost_usd"] > 0
    assert longer["total_cost_usd"] > first["total_cost_usd"]


def test_stream_json_is_init_then_messages_then_the_result(stand_in: StandIn) -> None:
    done = claude(
        stand_in,
        *STREAM,
        "--permission-mode",
        "acceptEdits",
        "--allowed-tools",
        "Read,Grep",
        prompt="look [[tool:Read:src/app.py]]",
    )
    events = lines(done.stdout)
    init, tool, tool_result, text, result = events
    assert (init["type"], init["subtype"]) == ("system", "init")
    assert init["cwd"] == str(stand_in.project)
    assert init["tools"] == ["Read", "Grep"]
    assert init["permissionMode"] == "acceptEdits"
    assert init["session_id"] == result["session_id"]
    [block] = tool["message"]["content"]
    assert block["type"] == "tool_use" and block["name"] == "Read"
    assert block["input"] == {"file_path": str(stand_in.project / "src/app.py")}
    assert tool_result["type"] == "user"
    assert tool_result["message"]["content"][0]["tool_use_id"] == block["id"]
    assert text["message"]["content"] == [{"type": "text", "text": "[claude] look"}]
    assert (result["type"], result["result"], result["num_turns"]) == ("result", "[claude] look", 2)


# -- replies and directives ----------------------------------------------------------------


def test_reply_names_the_role_from_the_appended_system_prompt(stand_in: StandIn) -> None:
    result = result_of(stand_in, "hello team", "--append-system-prompt", "Your role: QA Engineer\n\nBe thorough.")
    assert result["result"] == "[QA Engineer] hello team"


def test_thread_history_is_skipped_and_its_directives_are_inert(stand_in: StandIn) -> None:
    prompt = "<thread-history>\n[bob]: [[error:crash]] earlier\n[pm]: plan\n</thread-history>\n\nthe actual ask"
    assert user_part(prompt) == "the actual ask"
    assert result_of(stand_in, prompt)["result"] == "[claude] the actual ask"


@pytest.mark.parametrize(
    ("prompt", "reply"),
    [
        ("x [[reply:Line one\\nLine two]]", "Line one\nLine two"),
        ("first\n  second [[echo]]", "first\n  second [[echo]]"),
        ("do it [[handoff:engineer:build the thing]]", "[claude] do it\n\nHANDOFF @engineer: build the thing"),
        ("[[reply:ok]] [[handoff:pm:a:b]]", "ok\n\nHANDOFF @pm: a:b"),
        ("see [[wiki link]] here", "[claude] see [[wiki link]] here"),
    ],
)
def test_directives_shape_the_reply(stand_in: StandIn, prompt: str, reply: str) -> None:
    assert result_of(stand_in, prompt)["result"] == reply


def test_echo_full_includes_the_history_block(stand_in: StandIn) -> None:
    prompt = "<thread-history>\n[bob]: hi\n</thread-history>\n\n[[echo:full]]"
    assert result_of(stand_in, prompt)["result"] == prompt


def test_chars_gives_exactly_n_characters_in_short_lines(stand_in: StandIn) -> None:
    reply = result_of(stand_in, "[[chars:5000]]")["result"]
    assert len(reply) == 5000
    assert max(len(line) for line in reply.splitlines()) <= 80
    assert filler(160) == filler(160) and not filler(160).endswith("\n")


def test_sleep_emits_a_tool_use_line_every_fifth_of_a_second(stand_in: StandIn) -> None:
    done = claude(stand_in, *STREAM, prompt="wait [[sleep:0.4]]")
    tools = [
        e for e in lines(done.stdout) if e["type"] == "assistant" and e["message"]["content"][0]["type"] == "tool_use"
    ]
    assert len(tools) == 2
    assert lines(done.stdout)[-1]["result"] == "[claude] wait"


@pytest.mark.parametrize("bad", ["[[chars:many]]", "[[sleep:soon]]", "[[error:meteor]]", "[[handoff:pm]]", "[[reply]]"])
def test_a_bad_directive_fails_loudly(stand_in: StandIn, bad: str) -> None:
    done = claude(stand_in, *JSON, prompt=f"go {bad}")
    assert done.returncode == 2
    assert "bad directive" in done.stderr
    assert done.stdout == ""


def test_directive_grammar_reads_arguments_up_to_the_closing_brackets() -> None:
    found = parse_directives("[[tool:Bash:git log --oneline]] [[error:flood:2]] [[newsession]]")
    assert [(d.name, d.arg) for d in found] == [
        ("tool", "Bash:git log --oneline"),
        ("error", "flood:2"),
        ("newsession", None),
    ]


# -- sessions ------------------------------------------------------------------------------


def test_each_turn_appends_prompt_and_reply_to_the_session_file(stand_in: StandIn) -> None:
    first = result_of(stand_in, "one")
    second = result_of(stand_in, "two", "--resume", first["session_id"])
    assert second["session_id"] == first["session_id"]
    path = stand_in.config_dir / "projects" / str(stand_in.project).replace("/", "-") / f"{first['session_id']}.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["type"], r["message"]["content"]) for r in records] == [
        ("user", "one"),
        ("assistant", [{"type": "text", "text": "[claude] one"}]),
        ("user", "two"),
        ("assistant", [{"type": "text", "text": "[claude] two"}]),
    ]


def test_resume_from_another_directory_finds_no_conversation(stand_in: StandIn, tmp_path: Path) -> None:
    session_id = result_of(stand_in, "one")["session_id"]
    other = tmp_path / "other"
    other.mkdir()
    done = claude(stand_in, *JSON, "--resume", session_id, cwd=other)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip() == f"No conversation found with session ID: {session_id}"


def test_failed_resume_in_stream_json_also_prints_an_error_during_execution_result(
    stand_in: StandIn, tmp_path: Path
) -> None:
    missing = "6e4ab983-17b2-441b-95fe-61b3b89f940e"
    done = claude(stand_in, *STREAM, "--resume", missing)
    assert done.returncode == 1
    assert done.stderr.strip() == f"No conversation found with session ID: {missing}"
    (result,) = lines(done.stdout)  # no init line: the CLI gave up before starting a session
    assert (result["type"], result["subtype"], result["is_error"]) == ("result", "error_during_execution", True)
    assert result["errors"] == [f"No conversation found with session ID: {missing}"]
    assert result["session_id"] == missing and "result" not in result


def test_newsession_answers_with_a_fresh_id_that_keeps_the_history(stand_in: StandIn) -> None:
    first = result_of(stand_in, "remember me")
    second = result_of(stand_in, "[[newsession]]", "--resume", first["session_id"])
    assert second["session_id"] != first["session_id"]
    third = result_of(stand_in, "[[recall]]", "--resume", second["session_id"])
    assert third["result"] == "previous: [[newsession]]"


def test_session_id_flag_names_a_new_session_once(stand_in: StandIn) -> None:
    wanted = "0b9f7b2e-1f7c-4c1e-9d7a-3f1e2d4c5b6a"
    assert result_of(stand_in, "hi", "--session-id", wanted)["session_id"] == wanted
    again = claude(stand_in, *JSON, "--session-id", wanted)
    assert again.returncode == 1 and "already in use" in again.stderr


# -- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("auth", "Not logged in · Please run /login"),
        ("usage", "Claude AI usage limit reached|"),
    ],
)
def test_account_failures_are_is_error_results_with_exit_1(stand_in: StandIn, kind: str, message: str) -> None:
    done = claude(stand_in, *JSON, prompt=f"[[error:{kind}]]")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert (result["is_error"], result["subtype"]) == (True, "success")
    assert result["result"].startswith(message)
    assert "api_error_status" not in result


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "Invalid API key · Fix external API key"),
        (429, "API Error: Request rejected (429) · Number of requests has exceeded your rate limit."),
        (500, "API Error: 500 Internal server error. This is a server-side issue, usually temporary"),
        (529, "API Error: 529 Overloaded. This is a server-side issue, usually temporary"),
    ],
)
def test_api_failures_use_the_wording_and_status_field_of_cli_2_1_330(
    stand_in: StandIn, status: int, message: str
) -> None:
    done = claude(stand_in, *STREAM, prompt=f"[[error:{status}]]")
    assert done.returncode == 1
    _init, synthetic, result = lines(done.stdout)
    # The CLI's own message about the failed call comes first, marked as not claude's words.
    assert synthetic["type"] == "assistant" and synthetic["is_api_error_message"] is True
    assert synthetic["api_error_status"] == status
    assert synthetic["message"]["content"][0]["text"].startswith(message)
    assert (result["type"], result["is_error"], result["subtype"]) == ("result", True, "success")
    assert result["api_error_status"] == status
    assert result["result"].startswith(message)


def test_max_turns_is_a_subtype_without_a_result_field(stand_in: StandIn) -> None:
    done = claude(stand_in, *JSON, prompt="[[error:max_turns]]")
    result = json.loads(done.stdout)
    assert done.returncode == 1
    assert result["subtype"] == "error_max_turns" and "result" not in result


def test_cost_directive_sets_the_reported_cost_exactly(stand_in: StandIn) -> None:
    done = claude(stand_in, *JSON, prompt="[[cost:0.40]] [[reply:ok]] go")
    result = json.loads(done.stdout)
    assert done.returncode == 0
    assert result["total_cost_usd"] == 0.4 and result["result"] == "ok"
    assert [usage["costUSD"] for usage in result["modelUsage"].values()] == [0.4]


def test_a_turn_under_its_max_budget_finishes_normally(stand_in: StandIn) -> None:
    done = claude(stand_in, *JSON, "--max-budget-usd", "0.5", prompt="[[cost:0.40]] [[reply:ok]] go")
    result = json.loads(done.stdout)
    assert (done.returncode, result["subtype"], result["result"]) == (0, "success", "ok")


def test_max_budget_ends_the_turn_like_the_real_cli(stand_in: StandIn) -> None:
    done = claude(stand_in, *STREAM, "--max-budget-usd", "0.3", prompt="[[cost:0.40]] [[reply:partial words]] go")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    result = lines[-1]
    assert done.returncode == 1
    # The text of the over-budget call was printed; the result carries no ``result`` field.
    assert lines[-2]["type"] == "assistant" and lines[-2]["message"]["content"][0]["text"] == "partial words"
    assert (result["subtype"], result["is_error"], result["terminal_reason"]) == (
        "error_max_budget_usd",
        True,
        "budget_exhausted",
    )
    assert "result" not in result
    assert result["errors"] == ["Reached maximum budget ($0.3)"]
    assert result["total_cost_usd"] == 0.4


def test_max_budget_is_checked_after_each_model_call_and_skips_the_tool_asked_for(stand_in: StandIn) -> None:
    # Two model calls of $0.20 each; the first reaches the $0.20 cap, so its tool never runs.
    done = claude(stand_in, *STREAM, "--max-budget-usd", "0.2", prompt="[[cost:0.40]] [[tool:Read:a.py]] go")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert not any(line["type"] == "user" for line in lines)  # no tool_result: the tool did not run
    assert lines[-1]["subtype"] == "error_max_budget_usd"
    assert lines[-1]["total_cost_usd"] == pytest.approx(0.2)


@pytest.mark.parametrize("cap", ["0", "-1", "lots"])
def test_max_budget_must_be_a_positive_number(cap: str) -> None:
    with pytest.raises(UsageError, match="--max-budget-usd"):
        parse_args(["-p", "--max-budget-usd", cap])


def test_crash_is_a_stack_trace_on_stderr_and_exit_2(stand_in: StandIn) -> None:
    done = claude(stand_in, *STREAM, prompt="[[error:crash]]")
    assert (done.returncode, done.stdout) == (2, "")
    assert "TypeError" in done.stderr


def test_garbage_empty_and_partial_exit_0_without_a_result(stand_in: StandIn) -> None:
    garbage = claude(stand_in, *STREAM, prompt="[[error:garbage]]")
    assert garbage.returncode == 0 and garbage.stdout
    with pytest.raises(ValueError):
        lines(garbage.stdout)
    empty = claude(stand_in, *STREAM, prompt="[[error:empty]]")
    assert (empty.returncode, empty.stdout) == (0, "")
    partial = claude(stand_in, *STREAM, prompt="[[error:partial]]")
    assert partial.returncode == 0 and partial.stdout.startswith('{"type"') and "\n" not in partial.stdout
    with pytest.raises(ValueError):
        json.loads(partial.stdout)


def test_flood_prints_megabytes_of_junk_then_a_valid_result(stand_in: StandIn) -> None:
    done = claude(stand_in, *JSON, prompt="[[error:flood:2]]")
    assert done.returncode == 0
    assert len(done.stdout) >= 2 * 1024 * 1024
    last = done.stdout.splitlines()[-1]
    assert json.loads(last)["result"] == "[claude]"


# -- the invocation log --------------------------------------------------------------------


def test_log_records_argv_cwd_prompt_env_names_and_pid(stand_in: StandIn) -> None:
    claude(stand_in, *JSON, "--model", "opus", prompt="logged prompt", env={"SOME_FLAG": "value-not-logged"})
    [entry] = stand_in.invocations()
    assert entry["argv"] == [*JSON, "--model", "opus"]
    assert entry["cwd"] == str(stand_in.project)
    assert entry["prompt"] == "logged prompt"
    assert "SOME_FLAG" in entry["env"] and entry["env"] == sorted(entry["env"])
    assert "value-not-logged" not in stand_in.log_path.read_text()
    assert isinstance(entry["pid"], int)


def test_refused_command_lines_are_logged_without_a_prompt(stand_in: StandIn) -> None:
    claude(stand_in, "-p", "--nope")
    [entry] = stand_in.invocations()
    assert entry["prompt"] is None


# -- demo personas -------------------------------------------------------------------------

DEMO = {"MPG_AGENT_MODE": "demo", "MPG_AGENT_PACE": "0"}


def test_demo_pm_plans_and_hands_off_to_the_engineer(stand_in: StandIn) -> None:
    args = ("--append-system-prompt", "Your role: Product Manager\n\nPlan the work.")
    reply = result_of(stand_in, "add a search box", *args, env=DEMO)["result"]
    assert reply.splitlines()[-1] == "HANDOFF @engineer: add a search box"
    assert result_of(stand_in, "add a search box", *args, env=DEMO)["result"] == reply  # deterministic


def test_demo_pm_plans_again_when_only_the_history_holds_a_hand_back(stand_in: StandIn) -> None:
    prompt = "<thread-history>\n[engineer]: HANDOFF @pm: ready for review\n</thread-history>\n\nnext feature"
    result = result_of(stand_in, prompt, "--append-system-prompt", "Your role: Product Manager", env=DEMO)
    assert result["result"].endswith("HANDOFF @engineer: next feature")


def test_demo_pm_approves_work_handed_back_to_it(stand_in: StandIn) -> None:
    prompt = "Done: add a search box.\n\nHANDOFF @pm: ready for review"
    result = result_of(stand_in, prompt, "--append-system-prompt", "Your role: Product Manager", env=DEMO)
    assert "Approved" in result["result"]
    assert "HANDOFF" not in result["result"]


def test_demo_engineer_shows_tool_progress_and_hands_back(stand_in: StandIn) -> None:
    (stand_in.project / "search.py").write_text("")
    prompt = "Plan...\n\nHANDOFF @engineer: add a search box"
    done = claude(stand_in, *STREAM, "--append-system-prompt", "Your role: Software Engineer", prompt=prompt, env=DEMO)
    events = lines(done.stdout)
    tools = [
        (block["name"], next(iter(block["input"].values())))
        for e in events
        if e["type"] == "assistant"
        for block in e["message"]["content"]
        if block["type"] == "tool_use"
    ]
    assert [name for name, _ in tools] == ["Read", "Grep", "Read", "Edit", "Edit", "Bash"]
    assert tools[0][1] == str(stand_in.project / "search.py")
    assert tools[-1][1].startswith("git ")
    reply = events[-1]["result"]
    assert reply.startswith("Done: add a search box.")
    assert reply.splitlines()[-1] == "HANDOFF @pm: ready for review"


def test_demo_without_a_role_answers_in_one_paragraph(stand_in: StandIn) -> None:
    reply = result_of(stand_in, "how do I rotate logs?", env=DEMO)["result"]
    assert "\n" not in reply and "rotate logs" in reply and "HANDOFF" not in reply


def test_demo_personas_yield_to_reply_directives(stand_in: StandIn) -> None:
    result = result_of(
        stand_in, "[[reply:exactly this]]", "--append-system-prompt", "Your role: Product Manager", env=DEMO
    )
    assert result["result"] == "exactly this"


def test_loading_the_stand_in_imports_nothing_heavy() -> None:
    probe = (
        "import runpy, sys; sys.argv = ['claude', '--version']\n"
        "try:\n    runpy.run_module('mpg_tui.sandbox.agent', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "loaded = {m for m in sys.modules if m.startswith('mpg_tui')} - {'mpg_tui', 'mpg_tui.sandbox'}\n"
        "heavy = {m.split('.')[0] for m in sys.modules} & {'asyncio', 'argparse', 'subprocess', 'discord', 'textual'}\n"
        "print(sorted(heavy | {m for m in loaded if not m.startswith('mpg_tui.sandbox.agent')}))"
    )
    done = subprocess.run([sys.executable, "-P", "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr


def test_the_interactive_mode_shows_the_conversation_and_appends_each_typed_line_as_a_turn(
    stand_in: StandIn,
) -> None:
    first = claude(stand_in, "-p", "--output-format", "json", "[[reply:hello]] begin")
    session_id = json.loads(first.stdout)["session_id"]
    mark = transcripts.mark(stand_in.env, str(stand_in.project), session_id)

    typed = subprocess.run(
        [str(stand_in.shim), "--resume", session_id],
        cwd=stand_in.project,
        env={**os.environ, **stand_in.env},
        input="one more thing\nand another\n\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert typed.returncode == 0, typed.stderr
    assert "> begin\n⏺ hello" in typed.stdout  # the conversation so far
    assert "[claude] one more thing" in typed.stdout and "[claude] and another" in typed.stdout
    work = transcripts.since(mark)
    assert (work.turns, work.session_id) == (2, session_id)


def test_the_interactive_mode_refuses_a_session_made_elsewhere(stand_in: StandIn) -> None:
    done = subprocess.run(
        [str(stand_in.shim), "--resume", "00000000-0000-4000-8000-000000000000"],
        cwd=stand_in.project,
        env={**os.environ, **stand_in.env},
        input="",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1 and "No conversation found" in done.stderr


def test_the_stand_in_takes_the_permission_tool_flags_the_gateway_passes() -> None:
    from mpg_tui.runners.approval_tool import PROMPT_TOOL
    from mpg_tui.sandbox.agent.options import parse_args

    options = parse_args(
        ["--print", "--mcp-config", '{"mcpServers": {}}', "--permission-prompt-tool", PROMPT_TOOL, "--verbose"]
    )
    assert options.mcp_config == ['{"mcpServers": {}}'] and options.permission_prompt_tool == PROMPT_TOOL
