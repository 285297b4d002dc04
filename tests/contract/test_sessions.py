"""The session manager with the real claude CLI: agent system prompts, resume, expired sessions."""

from __future__ import annotations

import json
import uuid

import pytest

from mpg_tui.core.events import RunFinished, RunProgress, RunStarted
from mpg_tui.core.runner import Runner
from mpg_tui.core.sessions_file import StoredSession
from mpg_tui.core.turn_runner import EXPIRED_NOTICE
from tests.contract.conftest import CHANNEL, THREAD, ClaudeWorld, MakeCore
from tests.contract.messages_api import Text, ToolUse

pytestmark = pytest.mark.contract


async def test_an_agents_system_prompt_reaches_the_model_and_its_next_turn_resumes_the_session(
    world: ClaudeWorld, runner: Runner, make_core: MakeCore
) -> None:
    core = make_core(runner, agents=["engineer"])
    engineer = core.view.agent("engineer")
    assert engineer is not None
    key = f"{THREAD}:engineer"
    (world.project / "app.py").write_text("print('hi')\n", encoding="utf-8")
    world.api.script(
        ToolUse("Read", {"file_path": str(world.project / "app.py")}),
        Text("The app prints hi."),
        Text("Built."),
    )

    first = await core.manager.submit(key, core.view, THREAD, "What does the app do?", agent=engineer)

    assert first.result.ok, first.result.error
    assert first.result.text == "The app prints hi."
    assert first.notices == []
    system = world.api.requests[0].system_text
    assert engineer.system_prompt in system
    assert system.index(engineer.system_prompt) > 0  # appended to claude's own prompt, not replacing it
    session_id = first.result.session_id
    assert session_id is not None and first.session.session_id == session_id
    assert [e.tool for e in core.of(RunProgress) if e.step == "tool"] == ["Read"]

    second = await core.manager.submit(key, core.view, THREAD, "Now build it.", agent=engineer)

    assert second.result.ok, second.result.error
    assert second.notices == []
    assert second.result.session_id == session_id
    resumed = world.api.requests[-1]
    assert resumed.user_prompts() == ["What does the app do?", "Now build it."]
    assert engineer.system_prompt in resumed.system_text
    assert [e.session_id for e in core.of(RunStarted)] == [None, session_id]
    finished = core.of(RunFinished)
    assert [e.ok for e in finished] == [True, True]
    assert all(e.cost_usd > 0 and e.input_tokens > 0 for e in finished)
    await core.store.flush()
    saved = json.loads((world.tmp_path / "sessions.json").read_text(encoding="utf-8"))
    assert [item["sessionId"] for item in saved if item["projectKey"] == key] == [session_id]


async def test_a_stored_session_claude_cannot_resume_is_retried_fresh_with_the_expired_notice(
    world: ClaudeWorld, runner: Runner, make_core: MakeCore
) -> None:
    """What a thread sees when claude lost its session (another machine, cleaned up, other config)."""
    stale = str(uuid.uuid4())
    stored = StoredSession(
        key=THREAD, session_id=stale, cwd=str(world.project), last_activity_ms=0, channel_id=CHANNEL, thread_id=THREAD
    )
    core = make_core(runner, stored=(stored,))
    world.api.script(Text("Hello, fresh start."))

    outcome = await core.manager.submit(THREAD, core.view, THREAD, "Are you there?")

    assert outcome.result.ok, outcome.result.error
    assert outcome.notices == [EXPIRED_NOTICE]
    assert outcome.result.text == "Hello, fresh start."
    assert outcome.result.session_id not in (None, stale)
    assert outcome.session.session_id == outcome.result.session_id
    # The failed resume never reached the API; the fresh run starts a new conversation.
    [request] = world.api.requests
    assert request.user_prompts() == ["Are you there?"]
