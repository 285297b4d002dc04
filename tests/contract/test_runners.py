"""Our runners drive the real claude CLI correctly: replies, resume, prompts, tools, errors.

Each test runs through the direct runner and through tmux unless it is about something
only one of them does; the CLI's requests are checked where they land, at the Messages
API stand-in.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mpg_tui.core.runner import Runner
from mpg_tui.runners.command import build_argv
from tests.contract.conftest import ClaudeWorld, ProgressLog, RunnerFactory, RunnerKind
from tests.contract.messages_api import ApiError, Text, ToolUse

pytestmark = pytest.mark.contract


def tool_result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content)


async def test_a_reply_carries_session_cost_and_tokens_and_the_next_turn_resumes_it(
    world: ClaudeWorld, runner: Runner
) -> None:
    world.api.script(
        Text("Noted: heliotrope.", input_tokens=21, output_tokens=8),
        Text("It was heliotrope.", input_tokens=21, output_tokens=8),
    )
    progress = ProgressLog()

    first = await runner.run(world.request("Remember the word heliotrope."), progress)

    assert first.ok, first.error
    assert first.text == "Noted: heliotrope."
    assert first.session_id is not None and uuid.UUID(first.session_id)
    assert first.cost_usd > 0
    assert (first.usage.input_tokens, first.usage.output_tokens) == (21, 8)
    assert first.num_turns == 1 and first.exit_code == 0
    [init] = progress.of("init")
    assert init.session_id == first.session_id

    second = await runner.run(world.request("Which word?", session_id=first.session_id), ProgressLog())

    assert second.ok, second.error
    assert second.text == "It was heliotrope."
    assert second.session_id == first.session_id
    resumed = world.api.requests[-1]
    assert resumed.user_prompts() == ["Remember the word heliotrope.", "Which word?"]
    assert resumed.assistant_texts() == ["Noted: heliotrope."]
    # The same tokens cost the same: a resumed turn is not charged for the turns before it.
    assert second.cost_usd == pytest.approx(first.cost_usd)


HOSTILE_PROMPT = (
    "--dangerously-skip-permissions -p --resume \"double\" 'single' $(touch pwned1) `touch pwned2`\n"
    "second line; touch pwned3 && echo $HOME \\ \\\\ %s %n #{pane_pid} {braces}\n"
    "\ttabbed, and unicode: héliotrope — ✓"
)
LONG_PROMPT = "-" + "".join(f"line {n:05d}: the quick brown fox jumps over the lazy dog\n" for n in range(900))[:51_199]


@pytest.mark.parametrize("prompt", [HOSTILE_PROMPT, LONG_PROMPT], ids=["flags-and-quotes", "50-kb"])
async def test_a_prompt_reaches_the_model_verbatim(world: ClaudeWorld, runner: Runner, prompt: str) -> None:
    result = await runner.run(world.request(prompt), ProgressLog())

    assert result.ok, result.error
    [request] = world.api.requests
    assert request.prompt == prompt
    assert list(world.tmp_path.rglob("pwned*")) == []


async def test_default_tool_flags_are_accepted_and_enforced_in_the_order_we_build_them(
    world: ClaudeWorld, runner: Runner
) -> None:
    """MPG's default allowlist: Read and ``git`` run, other shell commands need an approval none can give.

    The same round trip shows that stream-json progress from the real CLI becomes tool steps.
    """
    (world.project / "notes.txt").write_text("the notes say hello\n", encoding="utf-8")
    # Not `touch`: in acceptEdits mode the CLI approves plain file commands in the project by itself.
    shell = "python3 -c \"open('bash-ran', 'w')\""
    world.api.script(
        ToolUse("Bash", {"command": shell, "description": "Create a file"}),
        ToolUse("Bash", {"command": "git --version"}),
        ToolUse("Read", {"file_path": str(world.project / "notes.txt")}),
        Text("I read the notes."),
    )
    request = world.request("Look at the notes.")
    argv = build_argv(request)
    assert argv[argv.index("--allowed-tools") :] == [
        "--allowed-tools",
        *["Read", "Edit", "Write", "Glob", "Grep", "Bash(git:*)", "TodoWrite"],
    ]
    progress = ProgressLog()

    result = await runner.run(request, progress)

    assert result.ok, result.error
    assert result.text == "I read the notes."
    assert result.num_turns == 4
    assert not (world.project / "bash-ran").exists()
    denied, git, read = world.api.requests[-1].tool_results()
    assert denied.get("is_error") is True
    assert "requires approval" in tool_result_text(denied)
    assert git.get("is_error") is not True
    assert tool_result_text(git).startswith("git version")
    assert read.get("is_error") is not True
    assert "the notes say hello" in tool_result_text(read)
    assert [(p.tool, p.text) for p in progress.of("tool")] == [
        ("Bash", f"Bash {shell}"),
        ("Bash", "Bash git --version"),
        ("Read", "Read notes.txt"),
    ]
    assert progress.of("text")[-1].text == "I read the notes."
    offered = set(world.api.requests[0].tool_names)
    # Glob and Grep are only offered once allowed; Bash and Write are offered by default.
    assert {"Read", "Edit", "Glob", "Grep", "Bash", "Write"} <= offered


async def test_disallowed_tools_are_not_offered_to_the_model(world: ClaudeWorld, runner: Runner) -> None:
    args = world.project_view(allowedTools=[], disallowedTools=["Bash", "Write"]).claude_args()
    assert args[-3:] == ["--disallowed-tools", "Bash", "Write"]

    result = await runner.run(world.request("Hello.", args=args), ProgressLog())

    assert result.ok, result.error
    offered = set(world.api.requests[0].tool_names)
    assert {"Read", "Edit"} <= offered
    assert not offered & {"Bash", "Write"}


async def test_exhausting_max_turns_is_max_turns(world: ClaudeWorld, runner: Runner) -> None:
    (world.project / "notes.txt").write_text("again\n", encoding="utf-8")
    world.api.fallback = ToolUse("Read", {"file_path": str(world.project / "notes.txt")})
    args = [*world.project_view().claude_args(), "--max-turns", "1"]

    result = await runner.run(world.request("Keep reading.", args=args), ProgressLog())

    assert not result.ok
    assert result.error_kind == "max_turns"
    assert result.error == "Claude hit the --max-turns limit before finishing."
    assert result.session_id is not None and result.cost_usd > 0


@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [
        (
            401,
            "auth",
            "Claude's credentials were rejected (API error 401) — run `claude` on the gateway host and /login again.",
        ),
        (429, "rate_limit", "The Claude API is rate limiting this account (429); try again in a minute."),
        (500, "overloaded", "The Claude API failed with a server error (500); try again shortly."),
        (529, "overloaded", "The Claude API is overloaded (529); try again shortly."),
    ],
    ids=["401", "429", "500", "529"],
)
async def test_api_errors_become_their_error_kind_and_a_readable_sentence(
    world: ClaudeWorld, runner: Runner, status: int, kind: str, error: str
) -> None:
    world.api.fallback = ApiError.for_status(status)

    result = await runner.run(world.request("Hello."), ProgressLog())

    assert not result.ok
    assert (result.error_kind, result.error) == (kind, error)
    assert result.exit_code == 1
    assert len(world.api.requests) == 1  # CLAUDE_CODE_MAX_RETRIES=0 is honoured: no retry loop


async def test_a_missing_api_key_is_not_logged_in(world: ClaudeWorld, runner: Runner) -> None:
    result = await runner.run(world.request("Hello.", env={"ANTHROPIC_API_KEY": ""}), ProgressLog())

    assert not result.ok
    assert result.error_kind == "auth"
    assert result.error == "Claude is not logged in on the gateway host — run `claude` there and /login."
    assert world.api.requests == []


@pytest.mark.parametrize(
    ("kind", "stream"),
    [("direct", True), ("direct", False), ("tmux", True)],
    ids=["direct-stream-json", "direct-json", "tmux-stream-json"],
)
async def test_resuming_a_session_claude_does_not_have_is_session_not_found(
    world: ClaudeWorld, make_runner: RunnerFactory, kind: RunnerKind, stream: bool
) -> None:
    """Both shapes: with json, only stderr says so; with stream-json, a result line does too."""
    missing = str(uuid.uuid4())
    runner = make_runner(kind, stream=stream)

    result = await runner.run(world.request("Hello again.", session_id=missing), ProgressLog())

    assert not result.ok
    assert result.error_kind == "session_not_found"
    assert result.error is not None and missing in result.error
    assert world.api.requests == []


async def test_a_session_resumes_from_another_directory(world: ClaudeWorld, make_runner: RunnerFactory) -> None:
    """Claude Code 2.1 finds a session whatever the working directory (older versions did not)."""
    runner = make_runner("direct")
    elsewhere = world.tmp_path / "elsewhere"
    elsewhere.mkdir()
    world.api.script(Text("First."), Text("Second."))
    first = await runner.run(world.request("Started here."), ProgressLog())
    assert first.ok, first.error

    second = await runner.run(world.request("Now there.", session_id=first.session_id, cwd=elsewhere), ProgressLog())

    assert second.ok, second.error
    assert second.session_id == first.session_id
    assert world.api.requests[-1].user_prompts() == ["Started here.", "Now there."]
