"""The headless gateway end to end: ``mpg-tui --no-ui`` as a real process on the sandbox.

One sandbox and one gateway process serve the whole module; every test works in its
own channel (or its own thread), so the tests do not see each other's messages. The
stand-in ``claude`` is first on the gateway's ``PATH`` and logs every invocation, which
is how a test knows whether claude ran, with which session and which prompt. Tests
await what the bot does through the sandbox's action log; none sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from mpg_tui.core.embeds import PALETTE, agent_color
from mpg_tui.sandbox.agent import filler
from mpg_tui.sandbox.discord import Action, SandboxFile, SandboxServer, SandboxSpec
from tests.e2e.gateway_process import (
    WAIT_S,
    Chat,
    GatewayProcess,
    Posted,
    Profile,
    open_thread,
    process_alive,
    run_cli,
    running_gateway,
    write_profile,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

TOKEN = "e2e-bot-token-1f0c9a7d3b5e"  # only valid on the loopback sandbox
EYES = "👀"
AGENTS = ["pm", "engineer"]

# Projects whose tests follow a claude session from process to process (``--resume``) run one
# process per turn ("warm": false); "warm" and "stopping" are about the live process.
MAPPED: dict[str, dict[str, object]] = {
    "basics": {},
    "resume": {"warm": False},
    "warm": {},
    "stopping": {},
    "chunks": {},
    "lobby": {},
    "commands": {"agents": AGENTS},
    "agents": {"agents": AGENTS, "warm": False},
    "loop": {"agents": AGENTS},
    "guarded": {"allowedRoles": ["developer"]},
    "limited": {"rateLimitPerUser": 1},
    "reconnect": {},
    "slow": {"warm": False},
    "nothreads": {},
    "uploads": {},
    "pushing": {"passEnv": ["GITHUB_TOKEN"]},
}
UNMAPPED = "unmapped"


# -- the world ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> SandboxSpec:
    return SandboxSpec.default(
        [*MAPPED, UNMAPPED],
        roles=("developer",),
        users={"alice": ["developer"], "bob": []},
        token=TOKEN,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox(spec: SandboxSpec) -> AsyncIterator[SandboxServer]:
    async with SandboxServer(spec) as server:
        yield server


@pytest.fixture(scope="module")
def profile(sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Profile:
    profile = write_profile(
        tmp_path_factory.mktemp("headless"),
        api_base=sandbox.api_base,
        token=sandbox.token,
        projects={sandbox.spec.channel(name).id: (name, options) for name, options in MAPPED.items()},
        defaults={"maxTurnsPerAgent": 2, "stuckNotifyMs": 1000, "maxAttachmentSizeMb": 0.01},
    )
    profile.env.update(GITHUB_TOKEN="ghp-e2e-only", OTHER_SERVICE_TOKEN="never-passed")
    return profile


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(profile: Profile) -> AsyncIterator[GatewayProcess]:
    async with running_gateway(profile) as process:
        yield process


@pytest.fixture
def chat(sandbox: SandboxServer, gateway: GatewayProcess) -> Chat:
    """Depends on ``gateway``: nothing can be asked before the bot is connected."""
    return Chat(sandbox)


def embed_of(action: Action) -> dict[str, object]:
    (embed,) = action.embeds
    return embed


def author_of(action: Action) -> str:
    author = embed_of(action).get("author")
    assert isinstance(author, dict)
    return str(author["name"])


def is_notice(action: Action) -> bool:
    """The gateway's status lines: the live status, "Still working", "queued", warnings."""
    return action.content.startswith(("⚙️", "⏳", "⚠️"))


# -- a message, a thread, a reply ---------------------------------------------------------


async def test_message_gets_a_reaction_a_thread_named_after_it_and_the_reply_in_that_thread(chat: Chat) -> None:
    channel = chat.channel("basics")
    posted = await chat.post(channel, "[[reply:hello from claude]] how do the basics work?")

    reaction = await chat.wait(lambda a: a.kind == "reaction" and a.message_id == posted.id, posted.seq)
    thread_id = await chat.thread_for(posted)
    reply = await chat.sent(thread_id, "hello from claude", posted.seq)

    assert reaction.channel_id == channel and reaction.payload["emoji"] == EYES
    created = next(a for a in chat.actions_in(channel, posted.seq) if a.kind == "thread_created")
    assert created.payload["name"] == posted.content
    assert reaction.seq < created.seq < reply.seq
    assert [a for a in chat.actions_in(channel, posted.seq) if a.kind == "message_sent"] == []


async def test_second_message_in_a_thread_resumes_the_first_claude_session(chat: Chat, profile: Profile) -> None:
    channel = chat.channel("resume")
    first = await chat.post(channel, "[[reply:noted]] remember the word heliotrope")
    thread_id = await chat.thread_for(first)
    await chat.sent(thread_id, "noted", first.seq)

    second = await chat.post(thread_id, "[[recall]] what did I ask first?")
    await chat.sent(thread_id, f"previous: {first.content}", second.seq)

    (session_id,) = profile.claude_sessions("resume")
    runs = profile.agent_log.in_dir(profile.projects["resume"])
    assert [run.resumed for run in runs] == [None, session_id]
    assert [run.prompt for run in runs] == [first.content, second.content]


async def test_a_follow_up_goes_to_the_same_warm_claude_process(
    chat: Chat, profile: Profile, gateway: GatewayProcess
) -> None:
    channel = chat.channel("warm")
    first = await chat.post(channel, "[[reply:noted]] remember the word heliotrope")
    thread_id = await chat.thread_for(first)
    await chat.sent(thread_id, "noted", first.seq)

    second = await chat.post(thread_id, "[[recall]] what did I ask first?")
    try:
        await chat.sent(thread_id, f"previous: {first.content}", second.seq)
    except TimeoutError:
        raise AssertionError(
            [(a.kind, a.content[:300]) for a in chat.actions_in(thread_id, first.seq)],
            gateway.returncode,
            gateway.stderr.text()[-3000:],
        ) from None

    runs = profile.agent_log.in_dir(profile.projects["warm"])
    assert [run.prompt for run in runs] == [first.content, second.content]
    assert len({run.pid for run in runs}) == 1, "both turns in one claude process"
    assert "--input-format" in runs[0].argv and runs[0].resumed is None


async def test_stop_ends_the_turn_and_the_thread_goes_on(chat: Chat) -> None:
    channel = chat.channel("stopping")
    first = await chat.post(channel, "[[sleep:60]] a very long job")
    thread_id = await chat.thread_for(first)

    # The status line says claude is at work (the typing indicator starts before the turn does).
    await chat.wait(lambda a: a.kind == "message_sent" and a.channel_id == thread_id, first.seq)
    stop = await chat.post(thread_id, "!stop")
    await chat.wait(
        lambda a: a.kind == "message_sent" and a.channel_id == thread_id and a.content.startswith("Stopping the turn"),
        stop.seq,
    )
    await chat.wait(
        lambda a: a.kind == "message_sent" and a.channel_id == thread_id and a.content.startswith("⏹️ Stopped"),
        stop.seq,
    )
    after = await chat.post(thread_id, "[[recall]] are you with me after the stop?")
    await chat.sent(thread_id, f"previous: {first.content}", after.seq)


async def test_a_5000_character_reply_arrives_as_three_messages_split_on_lines(chat: Chat) -> None:
    posted = await chat.post(chat.channel("chunks"), "[[chars:5000]] a long answer please")
    thread_id = await chat.thread_for(posted)
    text = filler(5000)
    last_line = text.rsplit("\n", 1)[1]
    await chat.wait(
        lambda a: a.kind == "message_sent" and a.channel_id == thread_id and a.content.endswith(last_line),
        posted.seq,
    )

    chunks = [
        a.content for a in chat.actions_in(thread_id, posted.seq) if a.kind == "message_sent" and not is_notice(a)
    ]
    assert len(chunks) == 3
    assert all(len(chunk) <= 2000 for chunk in chunks)
    # Rejoined at the newlines they were cut at, the chunks are the reply: no line was split.
    assert "\n".join(chunks) == text


# -- ! commands ---------------------------------------------------------------------------


async def test_help_lists_every_command_without_running_claude(chat: Chat, profile: Profile) -> None:
    channel = chat.channel("commands")
    posted = await chat.post(channel, "!help")
    reply = await chat.sent_starting(channel, "**Gateway commands**", posted.seq)

    for command in ("!sessions", "!session", "!restart", "!kill", "!ask", "!agents", "!help"):
        assert f"`{command}" in reply.content
    assert profile.agent_log.mentioning("!help") == []
    assert not [a for a in chat.actions_in(channel, posted.seq) if a.kind == "thread_created"]


async def test_agents_lists_the_project_agents_with_their_roles(chat: Chat) -> None:
    channel = chat.channel("commands")
    posted = await chat.post(channel, "!agents")
    reply = await chat.sent_starting(channel, "**commands agents**", posted.seq)

    assert "`@pm` — Product Manager" in reply.content
    assert "`@engineer` — Software Engineer" in reply.content


async def test_sessions_lists_and_session_shows_the_thread_session(chat: Chat, profile: Profile) -> None:
    channel = chat.channel("commands")
    first, thread_id = await open_thread(chat, channel, "session ready", "open a session to inspect")
    session_id = profile.claude_session_started_by("commands", first.content)

    listing = await chat.post(channel, "!sessions")
    sessions = await chat.sent_starting(channel, "**Active sessions", listing.seq)
    inspect = await chat.post(thread_id, "!session")
    details = await chat.sent_starting(thread_id, "**commands**", inspect.seq)

    assert f"`{thread_id}` **commands**" in sessions.content
    assert f"Session ID: `{session_id}`" in details.content
    assert f"claude --resume {session_id}" in details.content
    assert profile.agent_log.mentioning("!session") == []


async def test_restart_makes_the_next_message_start_a_fresh_session(chat: Chat, profile: Profile) -> None:
    first, thread_id = await open_thread(chat, chat.channel("commands"), "before restart", "a session to restart")
    old_session = profile.claude_session_started_by("commands", first.content)

    restart = await chat.post(thread_id, "!restart")
    await chat.sent(
        thread_id,
        f"Session `{thread_id}` (**commands**) restarted — next message will start fresh context.",
        restart.seq,
    )
    after = await chat.post(thread_id, "[[recall]] anything from before?")
    await chat.sent(thread_id, "previous: (none)", after.seq)

    (run,) = profile.agent_log.asked(after.content)
    assert run.resumed is None
    # The message opened a claude session of its own rather than continuing the old one.
    assert profile.claude_session_started_by("commands", after.content) != old_session


async def test_kill_ends_the_session_in_memory_and_on_disk(chat: Chat, profile: Profile) -> None:
    _, thread_id = await open_thread(chat, chat.channel("commands"), "about to die", "a session to kill")

    kill = await chat.post(thread_id, "!kill")
    await chat.sent(thread_id, f"Session `{thread_id}` (**commands**) killed.", kill.seq)
    # The gateway flushes the store before it answers !kill.
    assert thread_id not in profile.stored_sessions()
    inspect = await chat.post(thread_id, "!session")
    await chat.sent(thread_id, "This thread — no active session.", inspect.seq)

    after = await chat.post(thread_id, "[[recall]] still there?")
    await chat.sent(thread_id, "previous: (none)", after.seq)
    (run,) = profile.agent_log.asked(after.content)
    assert run.resumed is None


async def test_kill_during_a_run_stops_claude_and_tells_the_thread(chat: Chat, profile: Profile) -> None:
    posted = await chat.post(chat.channel("commands"), "[[sleep:60]] a job to be killed")
    thread_id = await chat.thread_for(posted)
    await chat.sent_starting(thread_id, "⚙️ Claude is working", posted.seq)
    (run,) = profile.agent_log.asked("a job to be killed")

    kill = await chat.post(thread_id, "!kill")
    await chat.sent(thread_id, f"Session `{thread_id}` (**commands**) killed.", kill.seq)
    error = await chat.sent_starting(thread_id, "**Error**: ", posted.seq)

    assert not process_alive(run.pid)
    assert error.content == "**Error**: Session was killed."
    assert thread_id not in profile.stored_sessions()


# -- agents -------------------------------------------------------------------------------


async def test_at_mention_sends_the_message_to_that_agent_as_an_embed_in_its_colour(
    chat: Chat, profile: Profile
) -> None:
    posted = await chat.post(chat.channel("agents"), "@engineer [[reply:on it]] fix the login form")
    thread_id = await chat.thread_for(posted)
    reply = await chat.sent(thread_id, "on it", posted.seq)

    assert author_of(reply) == "Software Engineer · @engineer"
    assert embed_of(reply)["color"] == agent_color("engineer")
    assert reply.content == ""
    (run,) = profile.agent_log.asked("fix the login form")
    assert run.system_prompt.startswith("Your role: Software Engineer\n\n")
    assert run.prompt == "[[reply:on it]] fix the login form"  # the leading mention is stripped


async def test_ask_sends_the_message_to_the_named_agent(chat: Chat, profile: Profile) -> None:
    posted = await chat.post(chat.channel("agents"), "!ask pm [[reply:asked]] what is the scope?")
    thread_id = await chat.thread_for(posted)
    reply = await chat.sent(thread_id, "asked", posted.seq)

    assert author_of(reply) == "Product Manager · @pm"
    (run,) = profile.agent_log.asked("what is the scope?")
    assert run.system_prompt.startswith("Your role: Product Manager\n\n")
    assert run.prompt == "[[reply:asked]] what is the scope?"


async def test_ask_with_an_unknown_agent_answers_with_the_agent_list(chat: Chat, profile: Profile) -> None:
    channel = chat.channel("agents")
    posted = await chat.post(channel, "!ask nobody hello there")
    reply = await chat.sent_starting(channel, "Unknown agent `nobody`. Available agents:", posted.seq)

    assert "- `pm` — Product Manager" in reply.content and "- `engineer` — Software Engineer" in reply.content
    assert profile.agent_log.mentioning("hello there") == []


async def test_agent_shorthand_and_sticky_agent_route_follow_ups(chat: Chat, profile: Profile) -> None:
    posted = await chat.post(chat.channel("agents"), "!engineer [[reply:built]] build the sticky thing")
    thread_id = await chat.thread_for(posted)
    built = await chat.sent(thread_id, "built", posted.seq)

    follow_up = await chat.post(thread_id, "[[reply:still the engineer]] and the tests?")
    sticky = await chat.sent(thread_id, "still the engineer", follow_up.seq)
    switch = await chat.post(thread_id, "!pm [[reply:reviewed]] review it")
    reviewed = await chat.sent(thread_id, "reviewed", switch.seq)

    assert [author_of(a) for a in (built, sticky, reviewed)] == [
        "Software Engineer · @engineer",
        "Software Engineer · @engineer",
        "Product Manager · @pm",
    ]
    engineer_session = profile.claude_session_started_by("agents", "[[reply:built]] build the sticky thing")
    (sticky_run,) = profile.agent_log.asked("and the tests?")
    assert sticky_run.resumed == engineer_session
    assert sticky_run.system_prompt.startswith("Your role: Software Engineer")
    # An agent in a thread is given the thread so far.
    assert sticky_run.prompt is not None and sticky_run.prompt.startswith("<thread-history>\n")
    (pm_run,) = profile.agent_log.asked("review it")
    assert pm_run.resumed is None  # the pm has its own session in this thread


async def test_follow_up_sent_while_an_agent_works_waits_for_that_agent(chat: Chat, profile: Profile) -> None:
    posted = await chat.post(chat.channel("agents"), "@pm [[sleep:1]] [[reply:planned]] plan the rollout")
    thread_id = await chat.thread_for(posted)
    await chat.sent_starting(thread_id, "⚙️ @pm is working", posted.seq)

    follow_up = await chat.post(thread_id, "[[reply:rollback covered]] and the rollback?")
    queued = await chat.sent(thread_id, "⏳ queued #1", follow_up.seq)
    planned = await chat.sent(thread_id, "planned", posted.seq)
    covered = await chat.sent(thread_id, "rollback covered", follow_up.seq)

    assert queued.seq < planned.seq < covered.seq
    assert author_of(covered) == "Product Manager · @pm"
    (run,) = profile.agent_log.asked("and the rollback?")
    assert run.resumed == profile.claude_session_started_by("agents", "[[sleep:1]] [[reply:planned]] plan the rollout")


async def test_handoff_chain_posts_each_agent_with_its_role_and_colour(chat: Chat, profile: Profile) -> None:
    posted = await chat.post(chat.channel("agents"), "@pm [[handoff:engineer:build the toggle]] plan a dark mode")
    thread_id = await chat.thread_for(posted)
    plan = await chat.sent(
        thread_id, "[Product Manager] plan a dark mode\n\nHANDOFF @engineer: build the toggle", posted.seq
    )
    announce = await chat.sent(thread_id, "Handing off to @engineer...", posted.seq)
    done = await chat.wait(
        lambda a: a.channel_id == thread_id and a.kind == "message_sent" and a.text.startswith("[Software Engineer]"),
        posted.seq,
    )

    assert plan.seq < announce.seq < done.seq
    assert (author_of(plan), author_of(done)) == ("Product Manager · @pm", "Software Engineer · @engineer")
    assert (embed_of(plan)["color"], embed_of(done)["color"]) == (agent_color("pm"), agent_color("engineer"))
    assert {agent_color("pm"), agent_color("engineer")} <= set(PALETTE)
    (engineer_run,) = profile.agent_log.asked("HANDOFF @engineer: build the toggle")
    assert engineer_run.system_prompt.startswith("Your role: Software Engineer")
    # The engineer answered without a handoff: the chain ended there.
    assert len(profile.agent_log.asked("plan a dark mode")) == 2


async def test_turn_limit_stops_agents_that_hand_off_forever(chat: Chat, profile: Profile) -> None:
    # Each agent echoes its prompt, which hands off to the other agent: an endless ping-pong.
    ping_pong = "[[echo]]\nHANDOFF @pm: ping\nHANDOFF @engineer: pong"
    posted = await chat.post(chat.channel("loop"), f"@pm {ping_pong}")
    thread_id = await chat.thread_for(posted)
    limit = await chat.sent(thread_id, "⚠️ Agent turn limit reached (2) — send a message to reset.", posted.seq)

    runs = profile.agent_log.in_dir(profile.projects["loop"])
    roles = [run.system_prompt.split("\n", 1)[0] for run in runs]
    assert roles == ["Your role: Product Manager", "Your role: Software Engineer", "Your role: Product Manager"]
    handoffs = [a for a in chat.actions_in(thread_id, posted.seq) if a.text.startswith("Handing off to @")]
    assert [a.text for a in handoffs] == ["Handing off to @engineer...", "Handing off to @pm..."]
    assert max(a.seq for a in chat.actions_in(thread_id)) == limit.seq  # nothing after the limit


# -- who may ask --------------------------------------------------------------------------


async def test_member_without_an_allowed_role_is_refused_and_claude_never_starts(chat: Chat, profile: Profile) -> None:
    channel = chat.channel("guarded")
    refused = await chat.post(channel, "[[reply:should not run]] bob asks for guarded work", user="bob")
    await chat.sent(channel, "You don't have permission to use this project. Required role: developer", refused.seq)
    # A member with the role gets through, which also proves bob's message was dealt with.
    await open_thread(chat, channel, "welcome alice", "alice asks for guarded work")

    assert profile.agent_log.mentioning("bob asks for guarded work") == []
    assert not [a for a in chat.actions_in(channel) if a.message_id == refused.id]
    assert len(profile.agent_log.asked("alice asks for guarded work")) == 1


async def test_rate_limited_message_is_refused_and_claude_never_starts(chat: Chat, profile: Profile) -> None:
    channel = chat.channel("limited")
    await open_thread(chat, channel, "first is fine", "alice's first message this minute")
    second = await chat.post(channel, "[[reply:too soon]] alice's second message this minute")
    refusal = await chat.sent_starting(channel, "You're sending messages too quickly. Please wait", second.seq)
    # The limit is per user: bob still gets through, after alice's refused message was handled.
    await open_thread(chat, channel, "bob is fine", "bob's first message this minute", user="bob")

    assert refusal.content.endswith("s before trying again.")
    assert profile.agent_log.mentioning("alice's second message") == []
    assert not [a for a in chat.actions_in(channel) if a.message_id == second.id]


async def test_unmapped_channel_gets_nothing(chat: Chat, profile: Profile) -> None:
    unmapped = chat.channel(UNMAPPED)
    await chat.post(unmapped, "[[reply:nobody home]] anyone in the unmapped channel?")
    # The bot handles messages in the order they arrive: once a later message in a mapped
    # channel is answered, the unmapped one has been seen and ignored.
    lobby = chat.channel("lobby")
    barrier = await chat.post(lobby, "!agents")
    await chat.sent_starting(lobby, "**lobby**", barrier.seq)

    assert chat.actions_in(unmapped) == []
    assert profile.agent_log.mentioning("anyone in the unmapped channel?") == []


# -- connection trouble -------------------------------------------------------------------


async def test_message_posted_while_disconnected_is_answered_after_resume(
    chat: Chat, sandbox: SandboxServer, gateway: GatewayProcess
) -> None:
    resumes = gateway.stderr.count("Discord session resumed")
    assert sandbox.drop_connections() >= 1
    assert sandbox.connected == 0
    posted = await chat.post(chat.channel("reconnect"), "[[reply:back again]] posted while the bot was away")

    thread_id = await chat.thread_for(posted)
    await chat.sent(thread_id, "back again", posted.seq)
    await gateway.stderr.wait_for_count("Discord session resumed", resumes + 1, WAIT_S)
    assert len([a for a in sandbox.actions if a.kind == "thread_created" and a.message_id == posted.id]) == 1


async def test_message_posted_as_the_server_asks_for_a_reconnect_is_answered(
    chat: Chat, sandbox: SandboxServer, gateway: GatewayProcess
) -> None:
    resumes = gateway.stderr.count("Discord session resumed")
    assert sandbox.send_reconnect() >= 1
    posted = await chat.post(chat.channel("reconnect"), "[[reply:reconnected]] posted during a reconnect")

    thread_id = await chat.thread_for(posted)
    await chat.sent(thread_id, "reconnected", posted.seq)
    await gateway.stderr.wait_for_count("Discord session resumed", resumes + 1, WAIT_S)
    assert len([a for a in sandbox.actions if a.kind == "thread_created" and a.message_id == posted.id]) == 1


# -- a long run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SlowRun:
    """A 3.5 s run, with a second message posted in its thread while it works."""

    thread_id: str
    first: Posted
    second: Posted
    first_reply: Action
    second_reply: Action

    def between(self, chat: Chat) -> list[Action]:
        """The bot's actions in the thread from the first message to the first reply."""
        return [a for a in chat.actions_in(self.thread_id, self.first.seq) if a.seq <= self.first_reply.seq]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def slow_run(sandbox: SandboxServer, gateway: GatewayProcess) -> SlowRun:
    chat = Chat(sandbox)
    first = await chat.post(chat.channel("slow"), "[[sleep:3.5]] [[reply:slow done]] take your time")
    thread_id = await chat.thread_for(first)
    # The live status line shows claude is at work; the follow-up must wait behind it.
    await chat.sent_starting(thread_id, "⚙️ Claude is working", first.seq)
    second = await chat.post(thread_id, "[[reply:second done]] and one more thing")
    first_reply = await chat.sent(thread_id, "slow done", first.seq)
    second_reply = await chat.sent(thread_id, "second done", second.seq)
    return SlowRun(thread_id, first, second, first_reply, second_reply)


async def test_typing_indicator_is_sent_while_claude_runs(chat: Chat, slow_run: SlowRun) -> None:
    assert any(a.kind == "typing" for a in slow_run.between(chat))


async def test_status_message_is_posted_edited_and_deleted_before_the_reply(chat: Chat, slow_run: SlowRun) -> None:
    actions = slow_run.between(chat)
    posted = next(a for a in actions if a.kind == "message_sent" and a.content.startswith("⚙️ Claude is working — "))
    edits = [a for a in actions if a.kind == "message_edited" and a.message_id == posted.message_id]
    deleted = [a for a in actions if a.kind == "message_deleted" and a.message_id == posted.message_id]

    assert edits, "the status line was never updated"
    assert all(a.content.startswith("⚙️ Claude is working — ") for a in edits)
    assert len(deleted) == 1 and deleted[0].seq > edits[-1].seq


async def test_long_run_gets_still_working_notes(chat: Chat, slow_run: SlowRun) -> None:
    notes = [a for a in slow_run.between(chat) if a.kind == "message_sent" and a.content.startswith("⏳ Still working")]
    assert notes and notes[0].content == "⏳ Still working… (0m elapsed)"


async def test_message_behind_a_long_run_is_queued_and_runs_after_it(
    chat: Chat, slow_run: SlowRun, profile: Profile
) -> None:
    queued = await chat.sent(slow_run.thread_id, "⏳ queued #1", slow_run.second.seq)

    assert queued.seq < slow_run.first_reply.seq < slow_run.second_reply.seq
    _, second_run = profile.agent_log.in_dir(profile.projects["slow"])
    assert second_run.resumed == profile.claude_session_started_by("slow", slow_run.first.content)


async def test_messages_refused_with_a_rate_limit_are_retried_and_delivered_once(
    chat: Chat, sandbox: SandboxServer
) -> None:
    # The next two messages the bot posts (its status line and its reply) are refused once
    # each with 429; discord.py waits and sends them again.
    sandbox.inject("POST", "/channels/*/messages", 429, count=2, retry_after=0.2)
    posted = await chat.post(chat.channel("lobby"), "[[reply:delivered after a 429]] answer despite the rate limit")
    thread_id = await chat.thread_for(posted)

    await chat.sent(thread_id, "delivered after a 429", posted.seq)
    assert sandbox.faults.pending == []
    assert [a.text for a in chat.actions_in(thread_id)].count("delivered after a 429") == 1


# -- Discord refusing, attachments ---------------------------------------------------------


async def test_reply_goes_to_the_channel_when_a_thread_cannot_be_created(chat: Chat, sandbox: SandboxServer) -> None:
    channel = chat.channel("nothreads")
    sandbox.refuse_threads(channel)
    posted = await chat.post(channel, "[[reply:answered in the channel]] no threads here")

    await chat.sent(channel, "answered in the channel", posted.seq)
    assert not [a for a in sandbox.actions if a.kind == "thread_created" and a.channel_id == channel]


async def test_attachments_within_limits_are_downloaded_listed_in_the_prompt_and_removed_by_kill(
    chat: Chat, profile: Profile
) -> None:
    files = (
        SandboxFile("notes.txt", b"remember the milk\n", "text/plain"),
        SandboxFile("huge.log", b"x" * 20_000, "text/plain"),
        SandboxFile("tool.zip", b"PK\x03\x04 not really a zip", "application/zip"),
    )
    posted = await chat.post(chat.channel("uploads"), "[[reply:files read]] read my files", attachments=files)
    thread_id = await chat.thread_for(posted)
    notice = await chat.sent_starting(thread_id, "⚠️ Skipped", posted.seq)
    await chat.sent(thread_id, "files read", posted.seq)

    assert notice.content.splitlines() == [
        "⚠️ Skipped `huge.log` — exceeds 0.01MB limit.",
        "⚠️ Skipped `tool.zip` — type `application/zip` not allowed.",
    ]
    saved = profile.projects["uploads"] / ".mpg-attachments" / thread_id / posted.id
    assert sorted(p.name for p in saved.iterdir()) == ["notes.txt"]
    assert (saved / "notes.txt").read_bytes() == b"remember the milk\n"
    (run,) = profile.agent_log.asked("read my files")
    assert run.prompt is not None
    assert "[Attached files — use the Read tool to view these:" in run.prompt
    assert str((saved / "notes.txt").resolve()) in run.prompt
    assert "huge.log" not in run.prompt and "tool.zip" not in run.prompt

    kill = await chat.post(thread_id, "!kill")
    await chat.sent(thread_id, f"Session `{thread_id}` (**uploads**) killed.", kill.seq)
    assert not (profile.projects["uploads"] / ".mpg-attachments").exists()


# -- the process --------------------------------------------------------------------------


async def test_a_second_instance_of_the_same_profile_is_refused(profile: Profile, gateway: GatewayProcess) -> None:
    code, _, stderr = await run_cli(profile, "--no-ui", "--config", str(profile.config_path))

    assert code == 1
    assert "already running for this profile" in stderr and f"PID {gateway.pid}" in stderr
    assert gateway.returncode is None


async def test_the_bot_token_is_never_logged_nor_given_to_claude(
    chat: Chat, profile: Profile, gateway: GatewayProcess
) -> None:
    # Make sure the gateway has done some logging of its own by now.
    await open_thread(chat, chat.channel("lobby"), "token check", "something to log about")
    log_text = profile.log_file.read_text(encoding="utf-8")

    assert "Gateway connected as" in log_text and "Gateway connected as" in gateway.stderr.text
    assert TOKEN not in log_text
    assert TOKEN not in gateway.stderr.text and TOKEN not in gateway.stdout.text
    runs = profile.agent_log.invocations()
    assert runs and all("DISCORD_BOT_TOKEN" not in run.env_names for run in runs)
    others = [run for run in runs if run.cwd != str(profile.projects["pushing"])]
    assert all("GITHUB_TOKEN" not in run.env_names for run in others)  # passEnv of one project only


async def test_pass_env_gives_the_named_variables_to_claude_and_no_other_secret(chat: Chat, profile: Profile) -> None:
    await open_thread(chat, chat.channel("pushing"), "pushed", "push the branch")
    (run,) = profile.agent_log.asked("push the branch")
    assert "GITHUB_TOKEN" in run.env_names
    assert "OTHER_SERVICE_TOKEN" not in run.env_names and "DISCORD_BOT_TOKEN" not in run.env_names
