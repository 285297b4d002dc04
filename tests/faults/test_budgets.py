"""Spending limits through the running gateway, with the stand-in claude reporting exact costs.

A thread stops at ``maxThreadCostUsd`` and says so; ``!continue`` is refused to a member
without the right and lifts the pause for the requester; a handoff chain stops at the
project's daily budget in the middle; a limit holds across a restart of the gateway.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from mpg_tui.core.budget_notices import PAUSE_PREFIX
from mpg_tui.sandbox.discord import SandboxServer
from tests.faults.conftest import Channels, StartWorld, in_process_gateway, profile_for, sandbox_spec

THREAD_LIMITED: Channels = {"shop": {"maxThreadCostUsd": 1.0}}


def caps(world_log: list[list[str]]) -> list[str | None]:
    """The ``--max-budget-usd`` each stand-in run was given, in order."""
    return [argv[argv.index("--max-budget-usd") + 1] if "--max-budget-usd" in argv else None for argv in world_log]


async def test_a_thread_warns_at_80_percent_then_stops_at_its_limit_and_keeps_later_messages(
    start_world: StartWorld,
) -> None:
    world = await start_world(THREAD_LIMITED)
    posted, thread_id = await world.ask("shop", "[[cost:0.85]] [[reply:first]] go")
    await world.chat.sent(thread_id, "first", posted.seq)
    warning = await world.chat.sent_starting(thread_id, "⚠️ Budget:", posted.seq)
    assert warning.text == (
        "⚠️ Budget: this thread has spent $0.85 of its $1.00 limit (maxThreadCostUsd), 85%. It pauses at the limit."
    )

    again = await world.chat.post(thread_id, "[[cost:0.50]] [[reply:second]] more")
    notice = await world.chat.sent_starting(thread_id, PAUSE_PREFIX + "Paused:", again.seq)
    assert notice.text.startswith(
        "⏸️ Paused: this thread has spent $1.35 against its $1.00 limit (maxThreadCostUsd). "
        "Nothing more runs in this thread until it is continued.\n"
        "To go on: `!continue` allows another $1.00, `!continue <dollars>` that much more"
    )
    # claude itself ended the second turn: it ran with what was left of the thread's budget.
    runs = world.profile.agent_log.invocations()
    assert caps([run.argv for run in runs]) == ["1", "0.15"]
    assert "second" not in world.bot_messages(thread_id, again.seq)

    later = await world.chat.post(thread_id, "[[reply:third]] and this?")
    kept = await world.chat.sent_starting(thread_id, PAUSE_PREFIX + "This thread is paused", later.seq)
    assert "your message is kept (2 waiting)" in kept.text
    assert len(world.profile.agent_log.invocations()) == 2  # nothing ran
    paused = world.runtime.gateway.budgets().paused
    assert [(p.thread_id, p.limit, p.held) for p in paused] == [(thread_id, "thread", 2)]


async def test_continue_is_refused_to_others_and_the_requester_resumes_the_kept_work(start_world: StartWorld) -> None:
    world = await start_world(THREAD_LIMITED)
    posted, thread_id = await world.ask("shop", "[[cost:1.20]] [[reply:never]] spend it all")
    await world.chat.sent_starting(thread_id, PAUSE_PREFIX + "Paused:", posted.seq)
    later = await world.chat.post(thread_id, "[[cost:0.10]] [[reply:after the pause]] next")
    await world.chat.sent_starting(thread_id, PAUSE_PREFIX + "This thread is paused", later.seq)

    refused = await world.chat.post(thread_id, "!continue", user="bob")
    reply = await world.chat.sent_starting(thread_id, "You can't continue this thread", refused.seq)
    assert "only the member who asked for this work" in reply.text
    assert world.runtime.gateway.budgets().paused  # still paused

    allowed = await world.chat.post(thread_id, "!continue 2")
    continued = await world.chat.sent_starting(thread_id, "▶️ Continued by", allowed.seq)
    assert continued.text.endswith("the thread limit is now $3.20. Running the 2 kept items now.")
    await world.chat.sent(thread_id, "after the pause", allowed.seq)
    assert "never" in world.bot_messages(thread_id, allowed.seq)  # the cut turn ran again
    assert world.runtime.gateway.budgets().paused == []
    # Settled in the journal: a restarted gateway does not take them for prompts.
    settled = [world.runtime.gateway.journal.entry(m.id) for m in (refused, allowed)]
    assert [e.state if e else None for e in settled] == ["answered", "answered"]


async def test_a_handoff_chain_stops_at_the_daily_budget_in_the_middle_and_other_threads_wait(
    start_world: StartWorld,
) -> None:
    world = await start_world({"shop": {"agents": ["pm", "engineer"], "dailyBudgetUsd": 1.0}})
    handoff = r"HANDOFF @engineer: \[\[cost:0.50\]\] \[\[handoff:pm:review\]\] build it"
    posted, thread_id = await world.ask("shop", f"@pm [[cost:0.70]] [[reply:{handoff}]] plan")
    await world.chat.sent(thread_id, "Handing off to @engineer...", posted.seq)
    notice = await world.chat.sent_starting(thread_id, PAUSE_PREFIX + "Paused:", posted.seq)
    assert notice.text.startswith(
        "⏸️ Paused: project **shop** has spent $1.20 against today's $1.00 budget (dailyBudgetUsd). "
        "Nothing more runs in this project today until it is continued."
    )
    assert "The daily budget starts afresh at midnight." in notice.text
    chain = next(c for c in world.runtime.gateway.chains() if c.thread_id == thread_id)
    assert chain.state == "budget"
    assert [(hop.agent, hop.state) for hop in chain.hops] == [("pm", "done"), ("engineer", "failed")]
    # The engineer's turn ran with what was left of the day, and the pm never got its review.
    runs = world.profile.agent_log.invocations()
    assert caps([run.argv for run in runs]) == ["1", "0.3"]

    other, other_thread = await world.ask("shop", "[[reply:elsewhere]] another task")
    await world.chat.sent_starting(other_thread, PAUSE_PREFIX + "Paused: project **shop**", other.seq)
    assert len(world.profile.agent_log.invocations()) == 2

    spend = world.runtime.gateway.budgets().projects
    assert [(p.spent_usd, p.budget_usd) for p in spend] == [(1.2, 1.0)]


async def test_a_thread_limit_holds_across_a_restart(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        sandbox = await stack.enter_async_context(SandboxServer(sandbox_spec(THREAD_LIMITED)))
        profile = profile_for(sandbox, tmp_path / "world", THREAD_LIMITED, {})
        async with in_process_gateway(sandbox, profile) as world:
            posted, thread_id = await world.ask("shop", "[[cost:1.50]] [[reply:spent]] go")
            await world.chat.sent_starting(thread_id, PAUSE_PREFIX + "Paused:", posted.seq)

        async with in_process_gateway(sandbox, profile) as world:
            later = await world.chat.post(thread_id, "[[reply:after restart]] still?")
            kept = await world.chat.sent_starting(thread_id, PAUSE_PREFIX, later.seq)
            assert kept.text.startswith("⏸️ This thread is paused at its $1.00 limit (maxThreadCostUsd)")
            assert len(profile.agent_log.invocations()) == 1
            assert world.runtime.budget.thread_spent(thread_id) == 1.5


async def test_continuing_a_day_paused_chain_reruns_the_cut_turn_and_the_other_threads_kept_work(
    start_world: StartWorld,
) -> None:
    world = await start_world({"shop": {"agents": ["pm", "engineer"], "dailyBudgetUsd": 1.0}})
    handoff = r"HANDOFF @engineer: \[\[cost:0.50\]\] \[\[reply:built\]\] build it"
    posted, thread_id = await world.ask("shop", f"@pm [[cost:0.70]] [[reply:{handoff}]] plan")
    await world.chat.sent_starting(thread_id, PAUSE_PREFIX + "Paused:", posted.seq)
    other, other_thread = await world.ask("shop", "[[reply:elsewhere]] another task")
    await world.chat.sent_starting(other_thread, PAUSE_PREFIX + "Paused:", other.seq)

    go = await world.chat.post(thread_id, "!continue")
    continued = await world.chat.sent_starting(thread_id, "▶️ Continued by", go.seq)
    assert "the daily budget is now $2.20" in continued.text
    await world.chat.sent(thread_id, "built", go.seq)  # the engineer's cut turn, run again
    await world.chat.sent(other_thread, "elsewhere", go.seq)
    chain = next(c for c in world.runtime.gateway.chains() if c.thread_id == thread_id)
    assert [hop.agent for hop in chain.hops] == ["pm", "engineer", "engineer"]
    assert world.runtime.gateway.budgets().paused == []


async def test_a_turn_over_max_turn_cost_is_ended_by_claude_and_the_thread_goes_on(start_world: StartWorld) -> None:
    world = await start_world({"shop": {"maxTurnCostUsd": 0.25}})
    posted, thread_id = await world.ask("shop", "[[cost:0.40]] [[reply:too dear]] go")
    notice = await world.chat.sent_starting(thread_id, PAUSE_PREFIX, posted.seq)
    assert notice.text.startswith("⏸️ This turn stopped at its $0.25 limit (maxTurnCostUsd) after spending $0.40")
    again = await world.chat.post(thread_id, "[[cost:0.10]] [[reply:cheap]] next")
    await world.chat.sent(thread_id, "cheap", again.seq)
    assert caps([run.argv for run in world.profile.agent_log.invocations()]) == ["0.25", "0.25"]
